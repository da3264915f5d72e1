from __future__ import annotations

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


class JobSerializer(serializers.ModelSerializer[Job]):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

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
