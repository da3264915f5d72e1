"""Customer data: customers (with consent), products, orders and lines, events, feedback, visitor ids.

Every table is tenant-owned; every index leads with the tenant. Bulk writers (event ingestion,
CSV import, demo data) bypass the ORM, so defaults live in Python and in `journeys.bulk`.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from tenants.models import Tenant, TenantOwnedModel


def _tenant_fk(*, constraint: bool = True) -> models.ForeignKey[Tenant, Tenant]:
    """The tenant column without an index of its own: every index of these tables leads with it.
    `constraint=False` on the high-volume tables (events, orders, lines) saves a foreign-key check per
    row; row-level security already refuses a tenant_id other than the current tenant's."""
    return models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", editable=False, db_index=False, db_constraint=constraint
    )


class ConsentSource(models.TextChoices):
    API = "api", "API"
    IMPORT = "import", "CSV import"
    DASHBOARD = "dashboard", "Dashboard"
    WIDGET = "widget", "Chat widget"
    DEMO = "demo", "Demo data"


class Customer(TenantOwnedModel):
    """A person the business knows, identified by the business's own id (`external_id`)."""

    tenant = _tenant_fk()

    external_id = models.CharField(max_length=128)
    email = models.EmailField(max_length=254, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    consent_personalization = models.BooleanField(default=False)
    consent_personalization_at = models.DateTimeField(null=True, blank=True)
    consent_personalization_source = models.CharField(max_length=16, choices=ConsentSource.choices, blank=True)
    consent_marketing = models.BooleanField(default=False)
    consent_marketing_at = models.DateTimeField(null=True, blank=True)
    consent_marketing_source = models.CharField(max_length=16, choices=ConsentSource.choices, blank=True)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="customer_unique_external_id"),
            models.UniqueConstraint(fields=["tenant", "email"], condition=~Q(email=""), name="customer_unique_email"),
        ]
        indexes = [
            models.Index(fields=["tenant", "updated"], name="customer_tenant_updated_idx"),
            models.Index(fields=["tenant", "name"], name="customer_tenant_name_idx"),
            # customer_tenant_last_seen_idx, (tenant, -last_seen nulls last, -id) for the customers page's default
            # order, is created per database by migration 0003 (SQLite has no NULLS LAST in an index). It makes
            # last-seen updates write index entries (no longer HOT); a sort of every customer per page costs more.
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id


class Product(TenantOwnedModel):
    tenant = _tenant_fk()
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3)
    image_url = models.URLField(max_length=500, blank=True, default="")
    active = models.BooleanField(default=True)
    in_stock = models.BooleanField(default=True)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="product_unique_sku"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]
        indexes = [
            models.Index(fields=["tenant", "category", "name"], name="product_tenant_category_idx"),
            models.Index(fields=["tenant", "updated"], name="product_tenant_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class OrderStatus(models.TextChoices):
    PLACED = "placed", "Placed"
    PAID = "paid", "Paid"
    FULFILLED = "fulfilled", "Fulfilled"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


# Cancelled and refunded orders stay recorded but never count as revenue.
REVENUE_STATUSES = (OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.FULFILLED)


class Order(TenantOwnedModel):
    tenant = _tenant_fk(constraint=False)
    external_id = models.CharField(max_length=128)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    placed_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PLACED)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3)
    channel = models.CharField(max_length=32, blank=True, default="")
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "external_id"], name="order_unique_external_id")]
        indexes = [
            models.Index(fields=["tenant", "-placed_at"], name="order_tenant_placed_idx"),
            models.Index(fields=["tenant", "customer", "-placed_at"], name="order_tenant_customer_idx"),
            models.Index(fields=["tenant", "updated"], name="order_tenant_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def counts_as_revenue(self) -> bool:
        return self.status in REVENUE_STATUSES


class OrderLine(TenantOwnedModel):
    tenant = _tenant_fk(constraint=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="orderline_unit_price_not_negative"),
        ]
        indexes = [
            models.Index(fields=["tenant", "order"], name="orderline_tenant_order_idx"),
            models.Index(fields=["tenant", "product"], name="orderline_tenant_product_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"


class EventType(models.TextChoices):
    PAGE_VIEW = "page_view", "Page view"
    PRODUCT_VIEW = "product_view", "Product view"
    ADD_TO_CART = "add_to_cart", "Add to cart"
    REMOVE_FROM_CART = "remove_from_cart", "Remove from cart"
    CHECKOUT_STARTED = "checkout_started", "Checkout started"
    ORDER_PLACED = "order_placed", "Order placed"
    SEARCH = "search", "Search"
    SIGN_UP = "sign_up", "Sign up"
    LOGIN = "login", "Login"
    EMAIL_OPEN = "email_open", "Email opened"
    EMAIL_CLICK = "email_click", "Email clicked"
    STORE_VISIT = "store_visit", "Store visit"
    CHAT_STARTED = "chat_started", "Chat started"
    SUBSCRIPTION_STARTED = "subscription_started", "Subscription started"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled", "Subscription cancelled"
    CUSTOM = "custom", "Custom"


class Event(TenantOwnedModel):
    """A touchpoint. Either a customer or an anonymous visitor id; the visitor's events are linked
    to the customer once the visitor is identified (see VisitorIdentity)."""

    tenant = _tenant_fk(constraint=False)

    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    anonymous_id = models.CharField(max_length=128, blank=True, default="")
    type = models.CharField(max_length=32, choices=EventType.choices)
    name = models.CharField(max_length=200, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=2000, blank=True, default="")
    channel = models.CharField(max_length=32, blank=True, default="")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=now)
    idempotency_key = models.CharField(max_length=128)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="event_unique_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-occurred_at"], name="event_tenant_occurred_idx"),
            models.Index(fields=["tenant", "customer", "-occurred_at"], name="event_tenant_customer_idx"),
            models.Index(fields=["tenant", "type", "-occurred_at"], name="event_tenant_type_idx"),
            # Only events still waiting for their visitor to be identified.
            models.Index(
                fields=["tenant", "anonymous_id"],
                condition=Q(customer__isnull=True) & ~Q(anonymous_id=""),
                name="event_tenant_unlinked_anon_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class VisitorIdentity(TenantOwnedModel):
    """An anonymous visitor id known to belong to a customer."""

    tenant = _tenant_fk()

    anonymous_id = models.CharField(max_length=128)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="visitor_ids")
    identified_at = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "anonymous_id"], name="visitor_unique_anonymous_id")]
        indexes = [models.Index(fields=["tenant", "customer"], name="visitor_tenant_customer_idx")]

    def __str__(self) -> str:
        return f"{self.anonymous_id} → {self.customer_id}"


class FeedbackKind(models.TextChoices):
    CSAT = "csat", "CSAT"
    NPS = "nps", "NPS"
    CES = "ces", "CES"


# The scale of each kind, inclusive; validated in the service and by a database constraint.
FEEDBACK_SCALES: dict[str, tuple[int, int]] = {
    FeedbackKind.CSAT: (1, 5),
    FeedbackKind.NPS: (0, 10),
    FeedbackKind.CES: (1, 7),
}


def _scale_condition() -> Q:
    condition = Q()
    for kind, (low, high) in FEEDBACK_SCALES.items():
        condition |= Q(kind=kind, score__gte=low, score__lte=high)
    return condition


class Feedback(TenantOwnedModel):
    """A survey answer (CSAT, NPS or CES), about an order, a conversation or a page."""

    tenant = _tenant_fk()

    kind = models.CharField(max_length=8, choices=FeedbackKind.choices)
    score = models.SmallIntegerField()
    comment = models.TextField(blank=True, default="")
    channel = models.CharField(max_length=32, blank=True, default="")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    # chatbot is a higher layer: its conversation is referenced by id, not by foreign key.
    conversation_id = models.BigIntegerField(null=True, blank=True)
    page_url = models.CharField(max_length=2000, blank=True, default="")
    created = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.CheckConstraint(condition=_scale_condition(), name="feedback_score_in_scale")]
        indexes = [
            models.Index(fields=["tenant", "kind", "-created"], name="feedback_tenant_kind_idx"),
            models.Index(fields=["tenant", "customer", "-created"], name="feedback_tenant_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.score}"
