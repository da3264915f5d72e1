"""Conversations, messages, widget look."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from journeys.models import Customer
from tenants.models import TenantOwnedModel

__all__ = ["OPEN_STATES", "Conversation", "ConversationState", "Message", "ResolvedPolicy", "Sender", "WidgetSettings"]


class ConversationState(models.TextChoices):
    BOT = "bot", "With the bot"
    WAITING = "waiting", "Waiting for a person"
    ASSIGNED = "assigned", "Assigned"
    RESOLVED = "resolved", "Resolved"


OPEN_STATES = (ConversationState.BOT, ConversationState.WAITING, ConversationState.ASSIGNED)


class Conversation(TenantOwnedModel):
    """One chat between a website visitor and the business (bot, then maybe a person)."""

    visitor_id = models.CharField(max_length=64)  # "cxw_" + hash of the visitor's secret token
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    state = models.CharField(max_length=16, choices=ConversationState.choices, default=ConversationState.BOT)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handoff_reason = models.CharField(max_length=300, blank=True)
    page_url = models.CharField(max_length=2000, blank=True)
    created = models.DateTimeField(default=now)
    last_message_at = models.DateTimeField(default=now)
    handoff_at = models.DateTimeField(null=True, blank=True)
    first_human_reply_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    bot_resolved = models.BooleanField(null=True, blank=True)  # resolved with no human message
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "visitor_id", "-created"], name="conv_tenant_visitor_idx"),
            models.Index(fields=["tenant", "state", "handoff_at"], name="conv_tenant_state_idx"),
            models.Index(fields=["tenant", "-last_message_at"], name="conv_tenant_last_msg_idx"),
            models.Index(fields=["tenant", "customer", "-created"], name="conv_tenant_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"Conversation #{self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state != ConversationState.RESOLVED


class Sender(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    BOT = "bot", "Bot"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


class Message(TenantOwnedModel):
    """One message. Ids grow in the order messages of a conversation are committed (the conversation row
    is locked while one is written), so "everything after id N" never misses one."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=8, choices=Sender.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    buttons = models.JSONField(default=list, blank=True)  # [{"label", "entry_id"}] offered by a clarify
    decision = models.JSONField(null=True, blank=True)  # the bot's Decision.as_dict() for bot messages
    # The sender's idempotency key; NULL (not "") when absent, so the unique constraint ignores it.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    created = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["conversation", "client_id"], name="message_unique_client_id"),
        ]
        indexes = [models.Index(fields=["tenant", "conversation", "id"], name="message_tenant_conv_idx")]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"


class ResolvedPolicy(models.TextChoices):
    REOPEN = "reopen", "Reopen the conversation"
    NEW = "new", "Start a new conversation"


class WidgetSettings(TenantOwnedModel):
    """How the widget looks and greets, and what a visitor writing after resolution does."""

    bot_name = models.CharField(max_length=60, default="Assistant")
    color = models.CharField(max_length=7, default="#2f6fdf")  # #rrggbb
    greeting = models.CharField(max_length=300, default="Hi! How can I help you today?")
    avatar_url = models.URLField(max_length=500, blank=True)
    after_resolved = models.CharField(max_length=8, choices=ResolvedPolicy.choices, default=ResolvedPolicy.REOPEN)
    expected_wait_minutes = models.PositiveSmallIntegerField(default=5)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="widgetsettings_one_per_tenant")]

    def __str__(self) -> str:
        return f"Widget settings of {self.tenant_id}"
