"""Tenancy and access: users, tenants, memberships, invitations, API keys, jobs, audit log."""

from __future__ import annotations

import zoneinfo
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from tenants.context import current_tenant_id
from tenants.managers import AllTenantsManager, TenantManager

TIMEZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones()) if "/" in tz or tz == "UTC"]
CURRENCY_CHOICES = [
    (c, c) for c in ("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "JPY", "INR", "BRL", "MXN")
]


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in by email. Belongs to tenants through memberships."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []
    objects = UserManager()  # type: ignore[assignment,misc]

    def __str__(self) -> str:
        return self.name or self.email


class Tenant(models.Model):
    """A business using the product. Not tenant-owned itself."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    created = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantOwnedModel(models.Model):
    """Base of every tenant-owned table: non-null tenant, fail-closed default manager, RLS policy."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", editable=False)

    objects = TenantManager()
    all_tenants = AllTenantsManager()

    class Meta:
        abstract = True
        base_manager_name = "all_tenants"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            self.tenant_id = current_tenant_id()
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"
    ANALYST = "analyst", "Analyst"


class Membership(TenantOwnedModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]
        indexes = [models.Index(fields=["user"], name="membership_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id} ({self.role})"


class Invitation(TenantOwnedModel):
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "-created"], name="invitation_tenant_created_idx")]

    def __str__(self) -> str:
        return f"Invitation of {self.email} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now()


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiKey(TenantOwnedModel):
    """An integrator's key. Only a SHA-256 of the whole key and a short prefix are stored."""

    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Not a column: the cache generation this copy was read under (tenants.services.api_key_authenticate).
    cache_gen = ""

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "-created"], name="apikey_tenant_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} (cx_{self.prefix}…)"

    @property
    def can_write(self) -> bool:
        return self.scope == ApiKeyScope.WRITE

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(TenantOwnedModel):
    """A background job of a tenant, with the status and progress the dashboard shows."""

    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MinValueValidator(0), MaxValueValidator(100)])
    message = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "-created"], name="job_tenant_created_idx"),
            models.Index(fields=["tenant", "status"], name="job_tenant_status_idx"),
        ]
        constraints = [models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_max_100")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def kind_label(self) -> str:
        from tenants.jobs import job_kind_label  # jobs imports models

        return job_kind_label(self.kind)

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or now()
        return (end - self.started_at).total_seconds()


class AuditLogEntry(TenantOwnedModel):
    """Who did what to a tenant's access and settings."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "-created"], name="audit_tenant_created_idx")]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


class WebhookEndpoint(TenantOwnedModel):
    """An integrator's URL that receives signed event deliveries. `events` empty means every event."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=80)  # signing key: needed in clear to sign; shown to the user once
    events = models.JSONField(default=list, blank=True)  # list[str] of subscribed event names
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "active"], name="webhookendpoint_tenant_idx")]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event: str) -> bool:
        return self.active and (not self.events or event in self.events)


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantOwnedModel):
    """One event sent to one endpoint: the exact body signed, and what happened on each attempt."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    event_id = models.CharField(max_length=40)  # stable across retries: receivers de-duplicate on it
    body = models.TextField()  # the JSON document, as sent
    status = models.CharField(
        max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "-created"], name="webhookdelivery_tenant_idx"),
            models.Index(fields=["tenant", "endpoint", "-created"], name="webhookdelivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"


class WidgetKey(TenantOwnedModel):
    """The public key a tenant's chat widget is embedded with, the origins allowed to use it, and the
    secret that signs visitor identities (HMAC-SHA256 of the customer id). The key only does visitor things."""

    key = models.CharField(max_length=64, unique=True)
    allowed_origins = models.JSONField(default=list, blank=True)  # list[str], e.g. "https://shop.example"
    identity_secret = models.CharField(max_length=128)
    identity_required = models.BooleanField(default=False)  # unverified identify() calls are ignored
    created = models.DateTimeField(default=now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [models.Index(fields=["tenant", "-created"], name="widgetkey_tenant_created_idx")]

    def __str__(self) -> str:
        return f"widget key {self.key[:10]}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
