"""Serializers of the rule segments API. They describe shape; services validate definitions."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from personalization.models import RuleSegment, SegmentKind, SegmentMember

DEFINITION_HELP = (
    'Nested groups {"all": [...]}, {"any": [...]}, {"not": {...}} of conditions such as '
    '{"field": "revenue", "op": "gte", "value": 100}. GET /api/v1/rule-segments/fields/ lists every field, '
    "operator and choice."
)


class RuleSegmentSerializer(serializers.ModelSerializer[RuleSegment]):
    definition = serializers.JSONField(help_text=DEFINITION_HELP)
    kind = serializers.ChoiceField(choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = RuleSegment
        fields = [
            "id", "name", "description", "kind", "definition", "member_count", "last_refreshed_at", "last_error",
            "created_by", "created", "updated",
        ]  # fmt: skip
        read_only_fields = ["id", "member_count", "last_refreshed_at", "last_error", "created", "updated"]
        # uniqueness (case-insensitive) is checked by the service
        extra_kwargs: dict[str, Any] = {"name": {"validators": []}}


class DefinitionSerializer(serializers.Serializer[Any]):
    definition = serializers.JSONField(help_text=DEFINITION_HELP)


class CountSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="customers matching the definition right now")


class RefreshResultSerializer(serializers.Serializer[Any]):
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    members = serializers.IntegerField()


class SegmentMemberSerializer(serializers.ModelSerializer[SegmentMember]):
    customer_id = serializers.IntegerField(source="customer.id", read_only=True)
    external_id = serializers.CharField(source="customer.external_id", read_only=True)
    email = serializers.CharField(source="customer.email", read_only=True)
    name = serializers.CharField(source="customer.name", read_only=True)

    class Meta:
        model = SegmentMember
        fields = ["customer_id", "external_id", "email", "name", "added_at"]
