"""Conversation states end to end: hand back to the bot, a new conversation after resolution (tenant setting),
an agent taking over directly counting as a handoff, and the waiting list oldest first."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from chatbot.models import Conversation, ConversationState, Sender
from journeys.models import Event
from tenants import webhooks
from tenants.context import tenant_context
from tenants.models import Tenant, User, WebhookDelivery, WidgetKey
from tests.chatbot.conftest import ORIGIN, Widget
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _only(tenant: Tenant) -> Conversation:
    with tenant_context(tenant):
        return Conversation.objects.get()


def test_hand_back_to_the_bot_and_the_bot_answers_again(widget: Widget, kb: None, tenant: Tenant, agent: User) -> None:
    widget.say("I need to speak to a real person")
    conversation = _only(tenant)
    client = client_for(agent)
    client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Hi!"}, content_type="application/json")
    assert _only(tenant).state == ConversationState.ASSIGNED
    assert widget.say("thanks")["messages"][-1]["sender"] == "visitor"  # a person has it: the bot stays quiet

    assert client.post(f"/inbox/{conversation.pk}/hand-back/").status_code == 302
    back = _only(tenant)
    assert back.state == ConversationState.BOT and back.assignee_id is None
    body = widget.say("Which payment methods do you accept?")
    assert [m["sender"] for m in body["messages"]] == [Sender.VISITOR, Sender.BOT]
    assert "Visa" in body["messages"][1]["text"] and body["conversation"]["state"] == "bot"


def test_after_resolution_a_new_conversation_when_the_tenant_says_so(
    owner_client: Client, widget: Widget, kb: None, tenant: Tenant, agent: User
) -> None:
    owner_client.post(
        "/settings/widget/",
        {"bot_name": "Beany", "color": "#2f6fdf", "greeting": "Welcome back!", "allowed_origins": ORIGIN,
         "after_resolved": "new", "agent_cap": "3"},
    )  # fmt: skip
    first = widget.say("Can I return a product?")["conversation"]["id"]
    assert client_for(agent).post(f"/inbox/{first}/resolve/").status_code == 302
    body = widget.say("one more question: can I pay with paypal?")
    second = body["conversation"]["id"]
    assert second != first and body["conversation"]["state"] == "bot"
    with tenant_context(tenant):
        states = dict(Conversation.objects.values_list("pk", "state"))
        opening = Conversation.objects.get(pk=second).messages.order_by("id").first()
    assert states == {first: ConversationState.RESOLVED, second: ConversationState.BOT}
    assert opening is not None and opening.text.startswith("Welcome back!")  # a fresh greeting
    assert widget.start()["conversation"]["id"] == second


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["reply", "assign"])
def test_an_agent_taking_over_from_the_bot_records_a_handoff(
    widget: Widget, kb: None, tenant: Tenant, agent: User, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(webhooks, "_post", lambda url, body, headers, timeout: (200, "ok"))
    with tenant_context(tenant):
        webhooks.webhook_endpoint_create(url="https://hooks.example.com/cx", events=["conversation.handoff_requested"])
    widget.say("Can I return a product?")
    conversation = _only(tenant)
    assert conversation.state == ConversationState.BOT and conversation.handoff_at is None
    client = client_for(agent)
    if how == "reply":
        client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Hi, I can help"}, content_type="application/json")
    else:
        client.post(f"/inbox/{conversation.pk}/assign/")
    taken = _only(tenant)
    assert taken.state == ConversationState.ASSIGNED and taken.handoff_at is not None
    assert taken.handoff_reason == "an agent took over"
    with tenant_context(tenant):
        event = Event.objects.get(name="chat_handoff")
        delivery = WebhookDelivery.objects.get(event="conversation.handoff_requested")
    assert event.properties["conversation_id"] == conversation.pk
    assert f'"id": {conversation.pk}' in delivery.body or f'"id":{conversation.pk}' in delivery.body


def test_the_waiting_list_is_oldest_handoff_first(widget_key: WidgetKey, kb: None, tenant: Tenant, agent: User) -> None:
    visitors = []
    for _ in range(3):
        w = Widget(widget_key)
        w.start()
        w.say("get me a human")
        visitors.append(w)
    with tenant_context(tenant):
        by_handoff = list(Conversation.objects.order_by("handoff_at").values_list("pk", flat=True))
    visitors[0].say("hello? still waiting")  # the oldest gets the newest message: it stays first
    html = client_for(agent).get("/inbox/list/?view=waiting").content.decode()
    listed = [int(x) for x in re.findall(r'class="conv-item[^"]*" data-id="(\d+)"', html)]
    assert listed == by_handoff
    assert html.count("waiting ") >= 3  # each shows how long it has waited


def test_widget_endpoints_do_not_query_more_as_the_conversation_grows(widget: Widget, kb: None) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(fn: Any) -> int:
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    widget.say("Which payment methods do you accept?")
    short = queries(lambda: widget.say("How long does shipping take?"))
    after_short = queries(lambda: widget.post("messages/after/", {"after": 0}))
    for text in ("Can I return a product?", "How do I pause my coffee subscription?", "thanks", "hello") * 2:
        widget.say(text)
    body = widget.say("Which payment methods do you accept?")
    assert body["conversation"]["state"] == "bot"  # still with the bot, answering
    assert queries(lambda: widget.say("How long does shipping take?")) == short
    assert queries(lambda: widget.post("messages/after/", {"after": 0})) == after_short
