from __future__ import annotations

from typing import Any

from rest_framework import serializers

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


class JobSerializer(serializers.ModelSerializer[Job]):
    """Output only (jobs are started by services, never written through it). Writes the fields out
    directly: DRF builds the thirteen fields of a model serializer anew for every request, which
    cost more than the job list itself. The output is DRF's own, as tests compare it with the
    generic `Serializer.to_representation`; the fields still describe the schema."""

    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    def to_representation(self, instance: Job) -> dict[str, Any]:
        def when(value: Any) -> Any:
            return None if value is None else _datetime.to_representation(value)

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
            "created": when(instance.created),
            "started_at": when(instance.started_at),
            "finished_at": when(instance.finished_at),
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
