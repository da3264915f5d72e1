"""Serializers of the journeys API. They validate shape; services hold the rules."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from journeys.engine.events import MAX_BATCH
from journeys.models import ConsentSource, Customer, Event, EventType, Feedback, Order, OrderLine, Product

CONSENT_READ_ONLY = [
    "consent_personalization_at", "consent_personalization_source", "consent_marketing_at", "consent_marketing_source",
]  # fmt: skip


class CustomerSerializer(serializers.ModelSerializer[Customer]):
    consent_source = serializers.ChoiceField(
        choices=ConsentSource.choices, write_only=True, required=False, help_text="Where a consent change came from."
    )

    class Meta:
        model = Customer
        fields = [
            "id", "external_id", "email", "name", "phone", "attributes",
            "consent_personalization", "consent_personalization_at", "consent_personalization_source",
            "consent_marketing", "consent_marketing_at", "consent_marketing_source", "consent_source",
            "first_seen", "last_seen", "created", "updated",
        ]  # fmt: skip
        read_only_fields = ["id", *CONSENT_READ_ONLY, "first_seen", "last_seen", "created", "updated"]
        extra_kwargs = {
            "consent_personalization": {"required": False, "default": None},
            "consent_marketing": {"required": False, "default": None},
        }

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        for name in ("consent_personalization", "consent_marketing"):
            fields[name] = serializers.BooleanField(required=False, allow_null=True)
        return fields

    def validate_attributes(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class ProductSerializer(serializers.ModelSerializer[Product]):
    currency = serializers.CharField(max_length=3, min_length=3, required=False)

    class Meta:
        model = Product
        fields = [
            "id", "sku", "name", "description", "category", "price", "currency", "image_url", "active", "in_stock",
            "created", "updated",
        ]  # fmt: skip
        read_only_fields = ["id", "created", "updated"]
        extra_kwargs = {"price": {"min_value": 0}}


class OrderLineSerializer(serializers.ModelSerializer[OrderLine]):
    sku = serializers.CharField(source="product.sku", max_length=64)
    product_name = serializers.CharField(source="product.name", read_only=True)
    quantity = serializers.IntegerField(min_value=1)
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)

    class Meta:
        model = OrderLine
        fields = ["sku", "product_name", "quantity", "unit_price"]


class OrderSerializer(serializers.ModelSerializer[Order]):
    customer = serializers.SlugRelatedField(slug_field="external_id", queryset=Customer.objects.all())
    lines = OrderLineSerializer(many=True)
    total = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, help_text="Defaults to the sum of the lines."
    )
    currency = serializers.CharField(max_length=3, min_length=3, required=False)
    counts_as_revenue = serializers.BooleanField(read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "external_id", "customer", "placed_at", "status", "total", "currency", "channel", "lines",
            "counts_as_revenue", "created", "updated",
        ]  # fmt: skip
        read_only_fields = ["id", "created", "updated"]

    def validate_lines(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not value:
            raise serializers.ValidationError("An order needs at least one line.")
        return value


class EventSerializer(serializers.ModelSerializer[Event]):
    customer = serializers.CharField(source="customer.external_id", read_only=True, default=None)

    class Meta:
        model = Event
        fields = [
            "id", "idempotency_key", "customer", "anonymous_id", "type", "name", "properties", "url", "channel",
            "occurred_at", "received_at",
        ]  # fmt: skip


class EventInSerializer(serializers.Serializer[Any]):
    """One item of a batch (documentation only: items are validated in bulk by journeys.engine.events)."""

    idempotency_key = serializers.CharField(max_length=128, required=False, help_text="Defaults to a content hash.")
    customer = serializers.CharField(max_length=128, required=False, help_text="Customer external id.")
    anonymous_id = serializers.CharField(max_length=128, required=False)
    type = serializers.ChoiceField(choices=EventType.choices)
    name = serializers.CharField(max_length=200, required=False)
    properties = serializers.DictField(required=False)
    url = serializers.CharField(max_length=2000, required=False)
    channel = serializers.CharField(max_length=32, required=False)
    occurred_at = serializers.DateTimeField(required=False, help_text="Defaults to the time received.")


class EventBatchSerializer(serializers.Serializer[Any]):
    events = serializers.ListField(child=EventInSerializer(), max_length=MAX_BATCH)


class EventBatchResultSerializer(serializers.Serializer[Any]):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())


class IdentifySerializer(serializers.Serializer[Any]):
    anonymous_id = serializers.CharField(max_length=128)
    customer = serializers.SlugRelatedField(slug_field="external_id", queryset=Customer.objects.all())


class FeedbackSerializer(serializers.ModelSerializer[Feedback]):
    customer = serializers.SlugRelatedField(
        slug_field="external_id", queryset=Customer.objects.all(), required=False, allow_null=True
    )
    order = serializers.SlugRelatedField(
        slug_field="external_id", queryset=Order.objects.all(), required=False, allow_null=True
    )
    created = serializers.DateTimeField(required=False)

    class Meta:
        model = Feedback
        fields = ["id", "kind", "score", "comment", "channel", "customer", "order", "conversation_id", "page_url",
                  "created"]  # fmt: skip
        read_only_fields = ["id"]


class ImportCreateSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["customers", "products", "orders"])
    file = serializers.FileField()
