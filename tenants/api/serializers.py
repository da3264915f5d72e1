from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from tenants.models import AuditLogEntry, Job, Membership, Tenant


class TenantSerializer(serializers.ModelSerializer[Tenant]):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "timezone", "currency", "created"]


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "created"]


_datetime = serializers.DateTimeField(read_only=True)  # DRF's format and time zone, in one field for all


def _iso(value: datetime | None, zone: tzinfo) -> str | None:
    """What `_datetime` writes for `value` in the current time zone `zone` (looked up once per object):
    ISO 8601, with Z for UTC. DRF's field looks the zone and its settings up for every value."""
    if value is None:
        return None
    if value.tzinfo is None or api_settings.DATETIME_FORMAT != ISO_8601:  # naive, or another format: DRF's rules
        return _datetime.to_representation(value)  # type: ignore[no-any-return]
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class JobSerializer(serializers.ModelSerializer[Job]):
    """Output only (jobs are started by services, never written through it). Writes the fields out
    directly: DRF builds the thirteen fields of a model serializer anew for every request, which
    cost more than the job list itself. The output is DRF's own, as tests compare it with the
    generic `Serializer.to_representation`; the fields still describe the schema."""

    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    _zone: tzinfo | None = None

    def to_representation(self, instance: Job) -> dict[str, Any]:
        # One serializer writes one response (a list's child writes each of its items): the zone is
        # looked up once for all of them.
        zone = self._zone = self._zone or timezone.get_current_timezone()
        creator = instance.created_by
        return {
            "id": instance.pk,
            "kind": str(instance.kind),
            "status": str(instance.status),
            "progress": int(instance.progress),
            "message": str(instance.message),
            "error": str(instance.error),
            "params": instance.params,
            "result": instance.result,
            "attempts": int(instance.attempts),
            "created_by": None if creator is None else str(creator.email),
            "created": _iso(instance.created, zone),
            "started_at": _iso(instance.started_at, zone),
            "finished_at": _iso(instance.finished_at, zone),
        }

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "progress", "message", "error", "params", "result", "attempts",
            "created_by", "created", "started_at", "finished_at",
        ]  # fmt: skip


class AuditLogEntrySerializer(serializers.ModelSerializer[AuditLogEntry]):
    actor = serializers.EmailField(source="actor.email", read_only=True, default=None)
    api_key = serializers.CharField(source="api_key.prefix", read_only=True, default=None)

    class Meta:
        model = AuditLogEntry
        fields = ["id", "created", "action", "actor", "api_key", "target", "data", "ip"]
