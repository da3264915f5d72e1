"""Everything that changes tenancy and access state: one function per use case."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from cxplatform.cache import WindowHit, get_many_and_hit
from tenants.context import all_tenants, tenant_context
from tenants.models import (
    ApiKey,
    ApiKeyScope,
    AuditLogEntry,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
)
from tenants.permissions import can_assign_role

API_KEY_PREFIX = "cx_"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- Audit ----------------------------------------------------------------------------------


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    api_key: ApiKey | None = None,
    target: str = "",
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditLogEntry:
    """Append an entry to the current tenant's audit log."""
    return AuditLogEntry.objects.create(
        action=action, actor=actor, api_key=api_key, target=target[:200], data=data or {}, ip=ip
    )


# --- Tenants ----------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "business"
    slug, n = base, 1
    while Tenant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def tenant_create(*, name: str, owner: User, timezone_name: str = "UTC", currency: str = "USD") -> Tenant:
    """Create a business with `owner` as its first member (role owner)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A business name is required."})
    tenant = Tenant.objects.create(name=name, slug=_unique_slug(name), timezone=timezone_name, currency=currency)
    with tenant_context(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
        audit_record(action="tenant.created", actor=owner, target=tenant.name)
    return tenant


def tenant_update(*, tenant: Tenant, actor: User, name: str, timezone_name: str, currency: str) -> Tenant:
    """Change the current tenant's name, time zone and currency."""
    tenant.name, tenant.timezone, tenant.currency = name.strip(), timezone_name, currency
    tenant.full_clean()
    tenant.save(update_fields=["name", "timezone", "currency"])
    api_key_forget(prefixes=ApiKey.objects.values_list("prefix", flat=True))  # they carry the tenant
    audit_record(
        action="tenant.updated", actor=actor, target=tenant.name, data={"timezone": timezone_name, "currency": currency}
    )
    return tenant


# --- API keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # the whole key, shown once and never stored


def api_key_create(*, name: str, scope: str, created_by: User | None) -> IssuedApiKey:
    """Issue a key for the current tenant. Returns the only copy of its secret."""
    if scope not in ApiKeyScope.values:
        raise ValidationError({"scope": f"Scope must be one of: {', '.join(ApiKeyScope.values)}."})
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name, e.g. the system that will use it."})
    for _ in range(5):
        prefix = secrets.token_hex(4)
        secret = f"{API_KEY_PREFIX}{prefix}{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name[:80], prefix=prefix, key_hash=_sha256(secret), scope=scope, created_by=created_by
                )
        except IntegrityError:  # prefix collision across tenants: draw again
            continue
        audit_record(action="api_key.created", actor=created_by, target=f"{key.name} ({prefix})", data={"scope": scope})
        return IssuedApiKey(api_key=key, secret=secret)
    raise RuntimeError("Could not draw a unique API key prefix.")


def api_key_revoke(*, api_key: ApiKey, actor: User | None) -> ApiKey:
    """Revoke a key of the current tenant; requests with it get 401 from now on."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        api_key_forget(prefixes=[api_key.prefix])
        audit_record(action="api_key.revoked", actor=actor, target=f"{api_key.name} ({api_key.prefix})")
    return api_key


# With a cache every process shares (Redis), keys stay cached this long; a revocation reaches every
# process at once through the key's generation token. A per-process cache (no Redis) cannot hear of
# revocations made by other processes, so there a key is trusted for one second at most.
API_KEY_CACHE_SECONDS = 30
API_KEY_LOCAL_CACHE_SECONDS = 1
API_KEY_TOUCH_SECONDS = 60


def _api_key_cache_keys(prefix: str) -> tuple[str, str]:
    """The cache keys of a key's cached row, and of its generation token."""
    return f"cx:apikey:{prefix}", f"cx:apikey-gen:{prefix}"


def _api_key_cache_seconds() -> int:
    per_process = isinstance(caches["default"], LocMemCache | DummyCache)
    return API_KEY_LOCAL_CACHE_SECONDS if per_process else API_KEY_CACHE_SECONDS


def api_key_forget(*, prefixes: Iterable[str]) -> None:
    """Invalidate cached keys in every process that shares the cache: now, and again after commit.

    A new generation token makes every cached copy stale, including one that a concurrent request
    read from the database just before the change and writes to the cache just after it."""
    gen_keys = [_api_key_cache_keys(p)[1] for p in prefixes]
    if not gen_keys:
        return

    def bump() -> None:
        # Outlives every entry cached under the old token, so an expired token cannot match one.
        cache.set_many({k: secrets.token_hex(8) for k in gen_keys}, 2 * API_KEY_CACHE_SECONDS + 60)

    bump()
    transaction.on_commit(bump)


def _api_key_load(prefix: str) -> ApiKey | None:
    with all_tenants():
        return ApiKey.all_tenants.select_related("tenant").filter(prefix=prefix).first()


def api_key_prefix(raw_key: str) -> str | None:
    """The prefix that identifies `raw_key`, or None when it cannot be one of our keys."""
    if not raw_key.startswith(API_KEY_PREFIX) or len(raw_key) < len(API_KEY_PREFIX) + 20:
        return None
    return raw_key[len(API_KEY_PREFIX) : len(API_KEY_PREFIX) + 8]


def api_key_authenticate(*, raw_key: str, hit: WindowHit | None = None) -> ApiKey | None:
    """The active key matching `raw_key`, with its tenant loaded, or None. Crosses tenants by design.

    Keys are cached (one cache round trip per request instead of database queries); a cached copy
    counts only while its generation token is the current one (see api_key_forget). With Redis,
    `hit` (the key's rate counter) is counted in the same round trip, and undone if the key is refused."""
    prefix = api_key_prefix(raw_key)
    if prefix is None:
        return None
    entry_key, gen_key = _api_key_cache_keys(prefix)
    cached = get_many_and_hit([entry_key, gen_key], hit) if hit is not None else None
    if cached is None:
        cached = cache.get_many([entry_key, gen_key])
    gen = cached.get(gen_key, "")
    entry = cached.get(entry_key)
    key: ApiKey | None = entry[1] if entry is not None and entry[0] == gen else None
    if key is None:
        key = _api_key_load(prefix)  # read after the token: a change committed later bumps it again
        if key is not None:
            cache.set(entry_key, (gen, key), _api_key_cache_seconds())
    if key is None or not hmac.compare_digest(key.key_hash, _sha256(raw_key)) or key.revoked_at is not None:
        if hit is not None and hit.count is not None:  # a wrong secret must not use up the real key's rate
            with contextlib.suppress(ValueError):  # the counter expired meanwhile
                cache.decr(hit.key)
            hit.count = None
        return None
    key.cache_gen = gen
    return key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key, so a busy key does not write on every request.

    The copy in hand may have been revoked meanwhile: it goes back to the cache under the generation
    it was read with, so after a revocation it is stale on arrival and never served."""
    now = timezone.now()
    last = api_key.last_used_at
    if last is not None and (now - last).total_seconds() <= API_KEY_TOUCH_SECONDS:
        return
    api_key.last_used_at = now
    if cache.add(f"cx:apikey-used:{api_key.prefix}", 1, API_KEY_TOUCH_SECONDS):  # one writer per minute
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        entry_key = _api_key_cache_keys(api_key.prefix)[0]
        cache.set(entry_key, (api_key.cache_gen, api_key), _api_key_cache_seconds())


# --- Team and invitations ---------------------------------------------------------------------


def _check_can_assign(actor_membership: Membership, role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of: {', '.join(Role.values)}."})
    if not can_assign_role(actor_membership.role, role):
        raise PermissionDenied("Only an owner can grant or change the owner role.")


def invitation_create(*, actor_membership: Membership, email: str, role: str) -> Invitation:
    """Invite `email` to the current tenant with `role` and email them a link that expires."""
    _check_can_assign(actor_membership, role)
    email = email.strip().lower()
    if Membership.objects.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of this team."})
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Invitation.objects.filter(email=email, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())
        invitation = Invitation.objects.create(
            email=email,
            role=role,
            token_hash=_sha256(token),
            invited_by=actor_membership.user,
            expires_at=timezone.now() + settings.INVITATION_TTL,
        )
        audit_record(action="invitation.created", actor=actor_membership.user, target=email, data={"role": role})
    link = settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[token])
    tenant = actor_membership.tenant
    transaction.on_commit(
        lambda: send_mail(
            subject=f"You're invited to {tenant.name} on CX Platform",
            message=(
                f"{actor_membership.user} invited you to join {tenant.name} as {invitation.get_role_display()}.\n\n"
                f"Accept the invitation: {link}\n\nThe link expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
            ),
            from_email=None,
            recipient_list=[email],
        )
    )
    return invitation


def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(action="invitation.revoked", actor=actor, target=invitation.email)


def invitation_lookup(*, token: str) -> Invitation | None:
    """The pending invitation for `token`, or None when unknown, used, revoked or expired."""
    with all_tenants():
        invitation = Invitation.all_tenants.select_related("tenant").filter(token_hash=_sha256(token)).first()
    if invitation is None or not invitation.is_pending:
        return None
    return invitation


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Make `user` a member with the invited role. The signed-in email must match the invitation."""
    if user.email.lower() != invitation.email.lower():
        raise PermissionDenied(f"This invitation is for {invitation.email}; you are signed in as {user.email}.")
    with tenant_context(invitation.tenant), transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not locked.is_pending:
            raise ValidationError("This invitation has already been used or has expired.")
        membership, _ = Membership.objects.get_or_create(user=user, defaults={"role": locked.role})
        locked.accepted_at = timezone.now()
        locked.save(update_fields=["accepted_at"])
        audit_record(action="invitation.accepted", actor=user, target=user.email, data={"role": membership.role})
    return membership


def _owners_left_after(membership: Membership) -> int:
    return Membership.objects.filter(role=Role.OWNER).exclude(pk=membership.pk).count()


def membership_change_role(*, actor_membership: Membership, membership: Membership, role: str) -> Membership:
    """Change a member's role; the last owner cannot be demoted."""
    _check_can_assign(actor_membership, role)
    if membership.role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise PermissionDenied("Only an owner can change another owner's role.")
    if membership.role == Role.OWNER and role != Role.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError("A business needs at least one owner.")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        action="member.role_changed",
        actor=actor_membership.user,
        target=membership.user.email,
        data={"from": old, "to": role},
    )
    return membership


def membership_remove(*, actor_membership: Membership, membership: Membership) -> None:
    """Remove a member; the last owner cannot be removed, and only owners remove owners."""
    if membership.role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise PermissionDenied("Only an owner can remove an owner.")
    if membership.role == Role.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError("A business needs at least one owner.")
    email = membership.user.email
    membership.delete()
    audit_record(action="member.removed", actor=actor_membership.user, target=email)
