"""Model versions, customer scores, RFM and cluster assignments, cluster names, per-tenant ML settings."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from tenants.models import Job, TenantOwnedModel

__all__ = [
    "ChurnBand",
    "ClusterLabel",
    "CustomerScore",
    "ModelKind",
    "ModelStatus",
    "ModelVersion",
    "PersonalizationSettings",
]


class ModelKind(models.TextChoices):
    CLV = "clv", "Lifetime value (BG/NBD + Gamma-Gamma)"
    CHURN = "churn", "Churn risk"
    CLUSTERS = "clusters", "Behavioural clusters"
    RFM = "rfm", "RFM segments"


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    REJECTED = "rejected", "Rejected"


class ChurnBand(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ModelVersion(TenantOwnedModel):
    """One trained model of a tenant, written whole; at most one active version per kind."""

    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    number = models.PositiveIntegerField(help_text="1, 2, 3... per tenant and kind")
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    algorithm = models.CharField(max_length=80, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=list, blank=True)
    training_start = models.DateField(null=True, blank=True)
    training_end = models.DateField(null=True, blank=True, help_text="cutoff: last day of data used")
    n_customers = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="holdout metrics of this model")
    baseline_name = models.CharField(max_length=80, blank=True)
    baseline_metrics = models.JSONField(default=dict, blank=True)
    checks = models.JSONField(default=list, blank=True, help_text="[{name, passed, detail}]")
    passed_checks = models.BooleanField(default=False)
    artifact = models.BinaryField(null=True, blank=True, editable=False, help_text="pickled estimator (churn)")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "number"], name="modelversion_unique_number"),
            models.UniqueConstraint(
                fields=["tenant", "kind"], condition=Q(status="active"), name="modelversion_one_active_per_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "kind", "-created"], name="modelversion_tenant_kind_idx"),
            models.Index(fields=["tenant", "status"], name="modelversion_tenant_status_idx"),
        ]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.number} ({self.status})"


class CustomerScore(TenantOwnedModel):
    """Latest scores of one customer (one row per customer), rewritten in bulk by each scoring run."""

    customer = models.ForeignKey("journeys.Customer", on_delete=models.CASCADE, related_name="+")
    orders = models.PositiveIntegerField(default=0)
    historic_value = models.FloatField(default=0.0)
    days_since_last_order = models.IntegerField(null=True, blank=True)
    probability_alive = models.FloatField(null=True, blank=True)
    expected_orders_90d = models.FloatField(null=True, blank=True)
    expected_orders_365d = models.FloatField(null=True, blank=True)
    predicted_value_365d = models.FloatField(null=True, blank=True)
    next_order_date = models.DateField(null=True, blank=True)
    churn_risk = models.FloatField(null=True, blank=True)
    churn_band = models.CharField(max_length=8, choices=ChurnBand.choices, blank=True, default="")
    reasons = models.JSONField(default=list, blank=True, help_text="churn reasons in plain words")
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=32, blank=True, default="")
    cluster = models.IntegerField(null=True, blank=True, help_text="stable cluster id (see ClusterLabel)")
    # Computed features of the same run, for rule segments and the customer page.
    tenure_days = models.IntegerField(null=True, blank=True, help_text="days since first seen (order or event)")
    avg_days_between_orders = models.FloatField(null=True, blank=True)
    events_30d = models.PositiveIntegerField(default=0, help_text="events in the 30 days before the run's cutoff")
    support_contacts = models.PositiveIntegerField(default=0)
    avg_csat = models.FloatField(null=True, blank=True, help_text="average CSAT score of the customer's responses")
    model_versions = models.JSONField(default=dict, blank=True, help_text="{kind: ModelVersion id} used")
    scored_at = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "customer"], name="customerscore_unique_customer")]
        indexes = [
            models.Index(fields=["tenant", "churn_band"], name="customerscore_band_idx"),
            models.Index(fields=["tenant", "rfm_segment"], name="customerscore_rfm_idx"),
            models.Index(fields=["tenant", "cluster"], name="customerscore_cluster_idx"),
            models.Index(fields=["tenant", "-predicted_value_365d"], name="customerscore_value_idx"),
        ]

    def __str__(self) -> str:
        return f"scores of customer {self.customer_id}"


class ClusterLabel(TenantOwnedModel):
    """A stable cluster id's plain-words description (from the latest version) and the owner's name for it."""

    cluster_id = models.IntegerField()
    name = models.CharField(max_length=80, blank=True, help_text="set by the user; empty = use the description")
    description = models.CharField(max_length=255, blank=True)
    customers = models.PositiveIntegerField(default=0)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "cluster_id"], name="clusterlabel_unique_id")]
        ordering = ["cluster_id"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or f"Cluster {self.cluster_id}"


class PersonalizationSettings(TenantOwnedModel):
    """Per-tenant switches of the ML pipeline (one row per tenant, created on first use)."""

    require_approval = models.BooleanField(
        default=False, help_text="new model versions wait for an owner's approval before they become active"
    )
    nightly_retrain = models.BooleanField(default=True)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="personalizationsettings_unique_tenant")]

    def __str__(self) -> str:
        return f"personalization settings of tenant {self.tenant_id}"
