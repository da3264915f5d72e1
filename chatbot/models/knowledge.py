"""Knowledge base: FAQ entries, articles, index versions, bot settings."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from chatbot.engine.policy import Thresholds
from tenants.models import Job, TenantOwnedModel

__all__ = ["Article", "BotSettings", "FaqEntry", "IndexStatus", "KnowledgeIndexVersion"]

_DEFAULTS = Thresholds()


class FaqEntry(TenantOwnedModel):
    """One question the bot can answer, with the other ways visitors ask it."""

    question = models.CharField(max_length=300)
    phrasings = models.JSONField(default=list, blank=True)  # list[str]: alternative wordings
    answer = models.TextField()
    tags = models.JSONField(default=list, blank=True)  # list[str]
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "active", "question"], name="faqentry_tenant_active_idx"),
            models.Index(fields=["tenant", "-updated"], name="faqentry_tenant_updated_idx"),
        ]
        verbose_name = "FAQ entry"
        verbose_name_plural = "FAQ entries"

    def __str__(self) -> str:
        return self.question

    @property
    def index_id(self) -> str:
        """The id of this entry inside a knowledge index (and in a bot decision's `entry_id`)."""
        return f"faq:{self.pk}"


class Article(TenantOwnedModel):
    """A longer help article; its title and opening paragraphs make it retrievable like an entry."""

    title = models.CharField(max_length=300)
    body = models.TextField()
    tags = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "active", "title"], name="article_tenant_active_idx"),
            models.Index(fields=["tenant", "-updated"], name="article_tenant_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def index_id(self) -> str:
        return f"article:{self.pk}"


class IndexStatus(models.TextChoices):
    BUILDING = "building", "Building"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    FAILED = "failed", "Failed"


class KnowledgeIndexVersion(TenantOwnedModel):
    """A built knowledge index (bytes from `KnowledgeIndex.to_bytes`). At most one is active per tenant."""

    status = models.CharField(max_length=16, choices=IndexStatus.choices, default=IndexStatus.BUILDING)
    revision = models.PositiveIntegerField(default=0)  # BotSettings.kb_revision it was built from
    entries_count = models.PositiveIntegerField(default=0)
    articles_count = models.PositiveIntegerField(default=0)
    engine_mode = models.CharField(max_length=16, blank=True)  # semantic | lexical
    engine_model = models.CharField(max_length=300, blank=True)
    data = models.BinaryField(null=True, blank=True, editable=False)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=now)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(status="active"), name="kbindex_one_active_per_tenant"
            )
        ]
        indexes = [models.Index(fields=["tenant", "status", "-created"], name="kbindex_tenant_status_idx")]

    def __str__(self) -> str:
        return f"Knowledge index #{self.pk} ({self.status})"


class BotSettings(TenantOwnedModel):
    """Per-tenant bot thresholds (defaults from the engine) and the knowledge base's change counter."""

    answer_threshold = models.FloatField(
        default=_DEFAULTS.answer, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    clarify_threshold = models.FloatField(
        default=_DEFAULTS.clarify, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    negative_sentiment = models.FloatField(
        default=_DEFAULTS.negative_sentiment, validators=[MinValueValidator(-1.0), MaxValueValidator(0.0)]
    )
    frustration = models.FloatField(
        default=_DEFAULTS.frustration, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    low_confidence_turns = models.PositiveSmallIntegerField(
        default=_DEFAULTS.low_confidence_turns, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    kb_revision = models.PositiveIntegerField(default=0)  # bumped by every knowledge-base change
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="botsettings_one_per_tenant")]
        verbose_name_plural = "bot settings"

    def __str__(self) -> str:
        return f"Bot settings of tenant {self.tenant_id}"

    def thresholds(self) -> Thresholds:
        """The engine's thresholds with this tenant's overrides."""
        return Thresholds(
            answer=self.answer_threshold,
            clarify=self.clarify_threshold,
            negative_sentiment=self.negative_sentiment,
            frustration=self.frustration,
            low_confidence_turns=self.low_confidence_turns,
        )
