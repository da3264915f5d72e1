"""Rule segments (a saved condition over customers) and their materialised members."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from tenants.models import TenantOwnedModel

__all__ = ["RuleSegment", "SegmentKind", "SegmentMember"]


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (kept up to date)"
    STATIC = "static", "Static snapshot"


class RuleSegment(TenantOwnedModel):
    """A named condition over the tenant's customers (see personalization.rules.language).

    Dynamic segments are recomputed after each scoring run and on a schedule; static ones keep
    the members of their last snapshot."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    definition = models.JSONField(default=dict)
    kind = models.CharField(max_length=8, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    member_count = models.PositiveIntegerField(default=0)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="rulesegment_unique_name")]
        indexes = [models.Index(fields=["tenant", "kind"], name="rulesegment_tenant_kind_idx")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == SegmentKind.DYNAMIC


class SegmentMember(TenantOwnedModel):
    """A customer in a rule segment, since `added_at`."""

    segment = models.ForeignKey(RuleSegment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey("journeys.Customer", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "segment", "customer"], name="segmentmember_unique_customer")
        ]
        indexes = [models.Index(fields=["tenant", "customer"], name="segmember_tenant_customer_idx")]

    def __str__(self) -> str:
        return f"customer {self.customer_id} in segment {self.segment_id}"
