"""The widget's public endpoints: conversation, bot reply, handoff, idempotency, origins, limits, identity,
tracking, CSAT, and tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.models import Conversation, ConversationState, Message, Sender
from chatbot.selectors import widget_key_cache_clear
from chatbot.services import AUTOMATED_NOTICE, conversation_resolve, identity_hash
from journeys.models import Customer, Event, Feedback
from tenants.context import tenant_context
from tenants.models import Tenant, WidgetKey
from tests.chatbot.conftest import ORIGIN, Widget

pytestmark = pytest.mark.django_db


def _conversation(tenant: Tenant) -> Conversation:
    with tenant_context(tenant):
        return Conversation.objects.select_related("customer").get()


def test_session_issues_a_token_and_settings(widget_key: WidgetKey) -> None:
    w = Widget(widget_key)
    body = w.start()
    assert len(body["visitor"]) >= 20
    assert body["conversation"] is None and body["messages"] == []
    assert body["settings"]["notice"] == AUTOMATED_NOTICE
    again = w.start()  # a page load later: same visitor
    assert again["visitor"] == body["visitor"]


def test_visitor_asks_and_the_bot_answers_with_the_right_entry(widget: Widget, kb: None, tenant: Tenant) -> None:
    body = widget.say("How long does shipping take?", client_id="c1")
    senders = [m["sender"] for m in body["messages"]]
    assert senders == ["visitor", "bot"]
    assert "ship within 1 business day" in body["messages"][1]["text"]
    assert "decision" not in body["messages"][1]  # the visitor never sees the bot's internals
    conversation = _conversation(tenant)
    with tenant_context(tenant):
        stored = list(Message.objects.filter(conversation=conversation).order_by("id"))
        assert AUTOMATED_NOTICE in stored[0].text and stored[0].sender == Sender.BOT  # the greeting opens it
        assert stored[-1].decision["action"] == "answer"
        assert stored[-1].decision["entry_title"] == "How long does shipping take?"
        assert Event.objects.filter(type="chat_started", anonymous_id=conversation.visitor_id).count() == 1
    # Reload: the session returns the whole conversation.
    resumed = widget.start()
    assert [m["id"] for m in resumed["messages"]] == [m.pk for m in stored]


def test_a_resent_message_is_stored_once(widget: Widget, kb: None, tenant: Tenant) -> None:
    first = widget.say("Can I return a product?", client_id="same-id")
    again = widget.say("Can I return a product?", client_id="same-id")
    assert [m["id"] for m in again["messages"]] == [m["id"] for m in first["messages"]]
    with tenant_context(tenant):
        assert Message.objects.filter(sender=Sender.VISITOR).count() == 1


def test_the_widget_answers_json_whatever_the_accept_header(widget: Widget, kb: None) -> None:
    response = widget.post("messages/", {"text": "Can I return a product?"}, HTTP_ACCEPT="text/html")
    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["messages"][0]["text"] == "Can I return a product?"
    refused = widget.post("messages/", {"text": ""}, HTTP_ACCEPT="text/html")
    assert refused.status_code == 400 and refused["Content-Type"].startswith("application/json")


def test_asking_for_a_person_hands_off(widget: Widget, kb: None, tenant: Tenant) -> None:
    body = widget.say("I want to talk to a human please")
    assert body["conversation"]["state"] == ConversationState.WAITING
    assert body["messages"][-1]["sender"] == "system"
    assert "minute" in body["messages"][-1]["text"]
    conversation = _conversation(tenant)
    assert conversation.handoff_at is not None and "person" in conversation.handoff_reason
    with tenant_context(tenant):
        assert Event.objects.filter(name="chat_handoff", anonymous_id=conversation.visitor_id).exists()
    # While waiting for a person the bot stays quiet.
    quiet = widget.say("hello?")
    assert [m["sender"] for m in quiet["messages"]] == ["visitor"]


@pytest.mark.parametrize(
    ("origin", "status"), [("https://evil.test", 403), ("", 403), ("https://shop.test:8443", 403), (ORIGIN, 200)]
)
def test_only_allowed_origins_may_use_the_key(widget_key: WidgetKey, origin: str, status: int) -> None:
    response = Widget(widget_key, origin=origin).post("session/")
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "permission_denied"
        assert "not allowed" in response.json()["error"]["message"]
    else:
        assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_unknown_key_and_missing_visitor_are_refused(widget_key: WidgetKey) -> None:
    w = Widget(widget_key)
    response = w.post("session/", HTTP_X_CX_KEY="wk_nope")
    assert response.status_code == 401
    assert "widget key" in response.json()["error"]["message"]
    response = w.post("messages/", {"text": "hi"})
    assert response.status_code == 401
    assert "visitor token" in response.json()["error"]["message"]


def test_preflight_allows_the_headers(widget_key: WidgetKey) -> None:
    response = Widget(widget_key).client.options("/widget/v1/messages/", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 204
    assert "X-CX-Key" in response["Access-Control-Allow-Headers"]


def test_message_length_is_limited(widget: Widget, settings: Any) -> None:
    settings.WIDGET_MESSAGE_MAX_CHARS = 50
    response = widget.post("messages/", {"text": "x" * 51})
    assert response.status_code == 400
    assert "limited to 50 characters" in response.json()["error"]["message"]


def test_rate_limits_per_visitor_and_per_ip(widget_key: WidgetKey, settings: Any, kb: None) -> None:
    settings.WIDGET_RATE_PER_VISITOR = "3/min"
    w = Widget(widget_key)
    w.start()
    codes = [w.post("messages/", {"text": f"hello {i}"}).status_code for i in range(4)]
    assert codes[:2] == [201, 201] and codes[-1] == 429
    assert "retry in" in w.post("messages/", {"text": "again"}).json()["error"]["message"]
    settings.WIDGET_RATE_PER_IP = "2/min"
    other = Widget(widget_key)
    assert other.post("session/").status_code == 429  # same IP, new visitor: the IP budget is spent


def test_identify_with_a_valid_hash_links_the_customer(widget: Widget, kb: None, tenant: Tenant) -> None:
    widget.say("hi there")
    good = identity_hash(secret=widget.key.identity_secret, external_id="cust-42")
    response = widget.post("identify/", {"id": "cust-42", "email": "ada@example.com", "name": "Ada L", "hash": good})
    assert response.status_code == 200 and response.json() == {"verified": True}
    conversation = _conversation(tenant)
    assert conversation.customer is not None and conversation.customer.external_id == "cust-42"
    with tenant_context(tenant):
        assert Customer.objects.get(external_id="cust-42").email == "ada@example.com"
        # The visitor's earlier chat event now belongs to the customer.
        assert Event.objects.get(type="chat_started").customer_id == conversation.customer.pk


def test_identify_with_a_wrong_hash_is_rejected(widget: Widget, tenant: Tenant) -> None:
    bad = identity_hash(secret="not-the-secret", external_id="cust-42")
    response = widget.post("identify/", {"id": "cust-42", "hash": bad})
    assert response.status_code == 400
    assert "does not match" in response.json()["error"]["message"]
    with tenant_context(tenant):
        assert not Customer.objects.filter(external_id="cust-42").exists()


def test_unverified_identity_is_ignored_when_required(widget: Widget, tenant: Tenant) -> None:
    with tenant_context(tenant):
        WidgetKey.objects.filter(pk=widget.key.pk).update(identity_required=True)
    widget_key_cache_clear()
    response = widget.post("identify/", {"id": "cust-7", "email": "x@example.com"})
    assert response.status_code == 400
    with tenant_context(tenant):
        assert not Customer.objects.filter(external_id="cust-7").exists()
        WidgetKey.objects.filter(pk=widget.key.pk).update(identity_required=False)
    widget_key_cache_clear()
    # Not required: accepted, but an unverified identity creates and links no customer (it is only a claim).
    response = widget.post("identify/", {"id": "cust-7", "email": "x@example.com", "name": "Sam"})
    assert response.json() == {"verified": False}
    with tenant_context(tenant):
        assert not Customer.objects.filter(external_id="cust-7").exists()


def test_track_records_a_journeys_event(widget: Widget, tenant: Tenant) -> None:
    response = widget.post("track/", {"event": "viewed_pricing", "properties": {"plan": "pro"}, "url": ORIGIN + "/p"})
    assert response.status_code == 201
    with tenant_context(tenant):
        event = Event.objects.get(name="viewed_pricing")
    assert event.type == "custom" and event.properties == {"plan": "pro"} and event.anonymous_id.startswith("cxw_")


def test_csat_after_resolution_only_and_once(widget: Widget, kb: None, tenant: Tenant) -> None:
    widget.say("Can I return a product?")
    conversation = _conversation(tenant)
    early = widget.post("csat/", {"conversation": conversation.pk, "score": 5})
    assert early.status_code == 400 and "resolved" in early.json()["error"]["message"]
    with tenant_context(tenant):
        conversation_resolve(conversation=conversation)
    response = widget.post("csat/", {"conversation": conversation.pk, "score": 4, "comment": "quick"})
    assert response.status_code == 201
    with tenant_context(tenant):
        feedback = Feedback.objects.get()
        assert (feedback.kind, feedback.score, feedback.conversation_id) == ("csat", 4, conversation.pk)
        assert Conversation.objects.get().bot_resolved is True
        assert Event.objects.filter(name="chat_resolved").exists()
    assert widget.post("csat/", {"conversation": conversation.pk, "score": 1}).status_code == 400
    assert widget.post("csat/", {"conversation": conversation.pk, "score": 9}).status_code == 400


def test_resolved_conversation_reopens_on_a_new_message(widget: Widget, kb: None, tenant: Tenant) -> None:
    widget.say("Can I return a product?")
    with tenant_context(tenant):
        conversation_resolve(conversation=Conversation.objects.get())
    body = widget.say("one more question: can I pay with paypal?")
    assert body["conversation"]["state"] == ConversationState.BOT
    with tenant_context(tenant):
        assert Conversation.objects.count() == 1


def test_tenant_isolation_of_widget_endpoints(
    widget: Widget, kb: None, tenant: Tenant, other_widget_key: WidgetKey
) -> None:
    widget.say("Can I return a product?")
    conversation = _conversation(tenant)
    # The same visitor token presented with tenant B's key sees nothing of tenant A.
    intruder = Widget(other_widget_key)
    intruder.token = widget.token
    body = intruder.start()
    assert body["conversation"] is None and body["messages"] == []
    after = intruder.post("messages/after/", {"after": 0}).json()
    assert after["messages"] == []
    assert intruder.post("csat/", {"conversation": conversation.pk, "score": 5}).status_code == 404
    # Another visitor of tenant A cannot rate or read this visitor's conversation either.
    stranger = Widget(widget.key)
    stranger.start()
    assert stranger.post("csat/", {"conversation": conversation.pk, "score": 5}).status_code == 404
    assert stranger.post("messages/after/", {"after": 0}).json()["messages"] == []


def test_widget_endpoints_are_in_the_openapi_schema(owner_client: Any) -> None:
    response = owner_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    paths = response.json()["paths"] if response["Content-Type"].startswith("application/json") else {}
    text = response.content.decode()
    assert "/widget/v1/messages/" in (paths or text)
    assert "/api/v1/conversations/{id}/messages/" in (paths or text)
