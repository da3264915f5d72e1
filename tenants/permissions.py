"""What each role may do. Pages and endpoints declare a permission; this table decides."""

from __future__ import annotations

from tenants.models import Role

_ALL = frozenset(Role)
_MANAGERS = frozenset({Role.OWNER, Role.ADMIN})

PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.view": _ALL,
    "data.write": _MANAGERS,
    "conversations.work": frozenset({Role.OWNER, Role.ADMIN, Role.AGENT}),
    "team.manage": _MANAGERS,
    "apikeys.manage": _MANAGERS,
    "settings.manage": _MANAGERS,
    "jobs.run": _MANAGERS,
    "audit.view": _MANAGERS,
}


def role_has(role: str | None, permission: str) -> bool:
    """True when `role` grants `permission`; an unknown permission is a programming error."""
    if permission not in PERMISSIONS:
        raise KeyError(f"Unknown permission {permission!r}")
    return role is not None and role in PERMISSIONS[permission]


def can_assign_role(actor_role: str, role: str) -> bool:
    """Admins manage everyone but owners; only owners make owners."""
    if actor_role == Role.OWNER:
        return True
    return actor_role == Role.ADMIN and role != Role.OWNER
