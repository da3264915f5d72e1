"""Conversations API and the inbox pages: states, cursor, agent replies, assignment, resolution, timings,
permissions, and another tenant's conversation being a 404 everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from chatbot.models import Conversation, ConversationState, Message, Sender
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.chatbot.conftest import Widget
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(widget: Widget, kb: None, tenant: Tenant) -> Conversation:
    widget.say("How long does shipping take?")
    widget.say("I need to speak to a real person")
    with tenant_context(tenant):
        return Conversation.objects.get()


@pytest.fixture
def other_conversation(other_tenant: Tenant, other_widget_key: Any) -> Conversation:
    w = Widget(other_widget_key)
    w.start()
    w.say("hello")
    with tenant_context(other_tenant):
        return Conversation.objects.get()


def test_list_filters_by_state(api_client: APIClient, waiting: Conversation) -> None:
    body = api_client.get("/api/v1/conversations/?state=waiting").json()
    assert [c["id"] for c in body["results"]] == [waiting.pk]
    assert body["results"][0]["handoff_reason"]
    assert api_client.get("/api/v1/conversations/?state=resolved").json()["results"] == []


def test_messages_after_a_cursor_include_the_decision(api_client: APIClient, waiting: Conversation) -> None:
    everything = api_client.get(f"/api/v1/conversations/{waiting.pk}/messages/").json()
    ids = [m["id"] for m in everything["messages"]]
    assert ids == sorted(ids) and everything["next_after"] == ids[-1]
    bot = [m for m in everything["messages"] if m["sender"] == "bot" and m["decision"]]
    assert {m["decision"]["action"] for m in bot} >= {"answer", "handoff"}
    later = api_client.get(f"/api/v1/conversations/{waiting.pk}/messages/?after={ids[2]}").json()
    assert [m["id"] for m in later["messages"]] == ids[3:]


def test_agent_flow_through_the_api_records_timings(
    api_client: APIClient, waiting: Conversation, agent: User, tenant: Tenant
) -> None:
    url = f"/api/v1/conversations/{waiting.pk}"
    assigned = api_client.post(f"{url}/assign/", {"assignee": agent.email}, format="json")
    assert assigned.status_code == 200 and assigned.json()["state"] == "assigned"
    posted = api_client.post(f"{url}/messages/", {"text": "Hi, Arjun here", "client_id": "k1"}, format="json")
    assert posted.status_code == 201 and posted.json()["sender"] == "agent"
    again = api_client.post(f"{url}/messages/", {"text": "Hi, Arjun here", "client_id": "k1"}, format="json")
    assert again.json()["id"] == posted.json()["id"]
    resolved = api_client.post(f"{url}/resolve/").json()
    assert resolved["state"] == "resolved" and resolved["bot_resolved"] is False
    assert resolved["first_human_reply_at"] >= resolved["handoff_at"]
    assert api_client.post(f"{url}/resolve/").status_code == 400
    with tenant_context(tenant):
        assert Message.objects.filter(sender=Sender.AGENT).count() == 1


def test_handoff_and_bad_assignee(api_client: APIClient, widget: Widget, kb: None, tenant: Tenant) -> None:
    widget.say("Can I return a product?")
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    url = f"/api/v1/conversations/{conversation.pk}"
    response = api_client.post(f"{url}/handoff/", {"reason": "VIP customer"}, format="json")
    assert response.status_code == 200 and response.json()["handoff_reason"] == "VIP customer"
    assert api_client.post(f"{url}/handoff/", {}, format="json").status_code == 400  # not with the bot any more
    bad = api_client.post(f"{url}/assign/", {"assignee": "nobody@example.com"}, format="json")
    assert bad.status_code == 400 and "No owner, admin or agent" in bad.json()["error"]["message"]


def test_read_only_keys_and_analysts_cannot_work_conversations(
    read_api_client: APIClient, waiting: Conversation, analyst: User
) -> None:
    assert read_api_client.get("/api/v1/conversations/").status_code == 200
    response = read_api_client.post(f"/api/v1/conversations/{waiting.pk}/resolve/")
    assert response.status_code == 403
    analyst_api = APIClient()
    analyst_api.force_login(analyst)
    assert analyst_api.get("/api/v1/conversations/").status_code == 403
    assert client_for(analyst).get("/inbox/").status_code == 403


def test_other_tenants_conversation_is_a_404_everywhere(
    api_client: APIClient, owner_client: Client, other_conversation: Conversation
) -> None:
    pk = other_conversation.pk
    assert api_client.get(f"/api/v1/conversations/{pk}/").status_code == 404
    assert api_client.get(f"/api/v1/conversations/{pk}/messages/").status_code == 404
    assert api_client.post(f"/api/v1/conversations/{pk}/messages/", {"text": "x"}, format="json").status_code == 404
    for action in ("handoff", "resolve"):
        assert api_client.post(f"/api/v1/conversations/{pk}/{action}/").status_code == 404
    assert api_client.get("/api/v1/conversations/").json()["results"] == []
    assert owner_client.get(f"/inbox/{pk}/").status_code == 404
    for action in ("reply", "assign", "resolve", "hand-back"):
        assert owner_client.post(f"/inbox/{pk}/{action}/", {"text": "x"}).status_code == 404


def test_inbox_shows_waiting_first_with_decisions_and_escapes_html(
    widget: Widget, kb: None, tenant: Tenant, agent: User
) -> None:
    widget.say('<img src=x onerror="alert(1)"> I need a human')
    client = client_for(agent)
    page = client.get("/inbox/?view=waiting").content.decode()
    assert "Waiting for a person" in page
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    page = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert '<img src=x onerror="alert(1)">' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "<dt>action</dt><dd>handoff</dd>" in page
    reply = client.post(f"/inbox/{conversation.pk}/reply/", {"text": "On it"}, content_type="application/json")
    assert reply.status_code == 201 and reply.json()["message"]["author"] == "Agent"
    broken = client.post(f"/inbox/{conversation.pk}/reply/", "{not json", content_type="application/json")
    assert broken.status_code == 400 and "JSON object" in broken.json()["error"]["message"]
    with tenant_context(tenant):
        conversation.refresh_from_db()
    assert conversation.state == ConversationState.ASSIGNED and conversation.assignee_id == agent.pk
    assert client.post(f"/inbox/{conversation.pk}/resolve/").status_code == 302
    with tenant_context(tenant):
        conversation.refresh_from_db()
    assert conversation.state == ConversationState.RESOLVED
    fragment = client.get("/inbox/list/?view=resolved").content.decode()
    assert f'data-id="{conversation.pk}"' in fragment


def test_widget_settings_page_saves_origins(owner_client: Client, tenant: Tenant) -> None:
    page = owner_client.get("/settings/widget/")
    assert page.status_code == 200 and "data-key=" in page.content.decode()
    response = owner_client.post(
        "/settings/widget/",
        {"bot_name": "Beany", "color": "#aa5500", "greeting": "Hey!", "allowed_origins": "https://Shop.Example/\n",
         "after_resolved": "new"},
    )  # fmt: skip
    assert response.status_code == 302
    from chatbot.models import WidgetSettings
    from tenants.models import WidgetKey

    with tenant_context(tenant):
        assert WidgetKey.objects.get().allowed_origins == ["https://shop.example"]
        assert WidgetSettings.objects.get().bot_name == "Beany"
    bad = owner_client.post("/settings/widget/", {"allowed_origins": "not an origin", "color": "#aa5500"})
    assert "not an origin" in bad.content.decode()


@pytest.mark.django_db(transaction=True)
def test_conversation_lifecycle_emits_webhooks(
    widget: Widget, kb: None, tenant: Tenant, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot.services import agent_message_post, conversation_rate, conversation_resolve
    from tenants import webhooks
    from tenants.models import WebhookDelivery

    sent: list[str] = []  # no test touches the internet: record the POSTs instead of sending them
    monkeypatch.setattr(webhooks, "_post", lambda url, body, headers, timeout: (sent.append(url), (200, "ok"))[1])
    with tenant_context(tenant):
        webhooks.webhook_endpoint_create(url="https://hooks.example.com/cx", events=list(webhooks.EVENTS))
    widget.say("Can I return a product?")
    widget.say("I want a person")
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
        agent_message_post(conversation=conversation, author=agent, text="Hello")
        conversation_resolve(conversation=conversation)
        conversation_rate(conversation=conversation, score=5)
        events = set(WebhookDelivery.objects.values_list("event", flat=True))
    assert events >= {
        "conversation.created", "conversation.handoff_requested", "conversation.assigned", "conversation.resolved",
        "message.created", "feedback.created",
    }  # fmt: skip
    assert sent and set(sent) == {"https://hooks.example.com/cx"}
