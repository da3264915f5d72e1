"""Conversations, messages, widget look."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.timezone import now

from journeys.models import Customer
from tenants.models import TenantOwnedModel

__all__ = [
    "OPEN_STATES",
    "AgentPresence",
    "CannedResponse",
    "Conversation",
    "ConversationState",
    "Message",
    "ResolvedPolicy",
    "Sender",
    "WidgetIdentity",
    "WidgetSettings",
]


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
    # True only when `customer` came from an identity with a valid HMAC: the bot answers personally only then.
    customer_verified = models.BooleanField(default=False)
    # What an unverified identify() said ({"id", "name", "email"}): shown to agents, never trusted.
    claimed_identity = models.JSONField(null=True, blank=True)
    # Out of hours the handoff asks for an email (email_requested); once the visitor leaves one it is
    # contact_email and the conversation waits in the queue marked reply_by_email.
    email_requested = models.BooleanField(default=False)
    contact_email = models.EmailField(blank=True)
    reply_by_email = models.BooleanField(default=False)

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

    @property
    def asks_email(self) -> bool:
        """The widget shows its email field: an out-of-hours handoff the visitor has not left an email for."""
        return self.email_requested and not self.contact_email and self.is_open


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
    # A private note: agents only (inbox, API), never sent to the visitor's widget.
    is_note = models.BooleanField(default=False)
    # An agent's reply in a conversation to follow up by email was also sent to its contact_email then.
    emailed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=now)
    # A visitor message the bot has still to answer (chatbot.replies answers them in order, per conversation).
    awaiting_bot = models.BooleanField(default=False)
    # The visitor message a bot message answers: at most one reply each, so a redelivered job answers nothing.
    reply_to = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="bot_reply")

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["conversation", "client_id"], name="message_unique_client_id"),
        ]
        indexes = [
            models.Index(fields=["tenant", "conversation", "id"], name="message_tenant_conv_idx"),
            # Small: only the messages waiting for the bot (the sweep after a worker died reads it).
            models.Index(fields=["created"], name="message_awaiting_bot_idx", condition=models.Q(awaiting_bot=True)),
        ]

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
    # Weekly opening hours in the tenant's timezone: {"0": [["09:00", "17:00"]], ...} (0 = Monday); a day
    # missing or empty is closed. Only applied when `hours_enabled`; otherwise the team is always "in".
    hours_enabled = models.BooleanField(default=False)
    business_hours = models.JSONField(default=dict, blank=True)
    auto_assign = models.BooleanField(default=False)  # round-robin among online agents with capacity
    agent_cap = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )  # open conversations per agent for auto-assignment
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="widgetsettings_one_per_tenant")]

    def __str__(self) -> str:
        return f"Widget settings of {self.tenant_id}"


class WidgetIdentity(TenantOwnedModel):
    """What the widget's identify() last said about a visitor, and whether its HMAC was valid. Only a verified
    identity links the visitor to `customer`; an unverified one is a claim agents can see."""

    visitor_id = models.CharField(max_length=64)
    external_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    verified = models.BooleanField(default=False)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "visitor_id"], name="widgetidentity_one_per_visitor")]

    def __str__(self) -> str:
        return f"{self.external_id} ({'verified' if self.verified else 'claimed'})"

    def claim(self) -> dict[str, str]:
        return {"id": self.external_id, "name": self.name, "email": self.email}


class AgentPresence(TenantOwnedModel):
    """An agent's availability for auto-assignment: online while their inbox socket heartbeats (last_seen
    within the presence TTL) and `available` is on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    available = models.BooleanField(default=True)  # the inbox's availability toggle
    last_seen = models.DateTimeField(null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)  # round-robin: least recently assigned first

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="agentpresence_one_per_agent")]

    def __str__(self) -> str:
        return f"Presence of {self.user_id}"


class CannedResponse(TenantOwnedModel):
    """A saved reply agents insert from the reply box (picker, or typing "/shortcut")."""

    shortcut = models.CharField(
        max_length=40,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", "Lowercase letters, digits, - and _ only.")],
    )
    text = models.TextField(max_length=5000)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "shortcut"], name="cannedresponse_unique_shortcut")]
        ordering = ["shortcut"]

    def __str__(self) -> str:
        return f"/{self.shortcut}"
