"""Canned responses (settings page CRUD, offered in the inbox's reply box, per tenant) and private notes
(agents only: the inbox and the API show them, the widget's endpoints and socket never do)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import Client
from rest_framework.test import APIClient

from chatbot.models import CannedResponse, Conversation, ConversationState
from chatbot.services import agent_message_post, agent_note_add, conversation_resolve
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.chatbot.conftest import Widget
from tests.chatbot.test_sockets import _receive_until, _widget_socket
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

SECRET = "Internal: VIP, refund approved by Dana"


@pytest.fixture
def waiting(widget: Widget, kb: None, tenant: Tenant) -> Conversation:
    widget.say("I need to speak to a real person")
    with tenant_context(tenant):
        return Conversation.objects.get()


# --- canned responses ---------------------------------------------------------------------------------------


def test_canned_responses_crud_on_the_settings_page(owner_client: Client, tenant: Tenant) -> None:
    created = owner_client.post("/settings/canned-responses/", {"shortcut": "/Shipping", "text": "We ship in 1 day."})
    assert created.status_code == 302
    with tenant_context(tenant):
        canned = CannedResponse.objects.get()
    assert (canned.shortcut, canned.text) == ("shipping", "We ship in 1 day.")
    assert "/shipping" in owner_client.get("/settings/canned-responses/").content.decode()

    taken = owner_client.post("/settings/canned-responses/", {"shortcut": "shipping", "text": "Again"})
    assert taken.status_code == 200 and "already a canned response" in taken.content.decode()
    bad = owner_client.post("/settings/canned-responses/", {"shortcut": "two words", "text": "x"})
    assert bad.status_code == 200 and "Lowercase letters" in bad.content.decode()
    empty = owner_client.post("/settings/canned-responses/", {"shortcut": "empty", "text": "  "})
    assert empty.status_code == 200
    with tenant_context(tenant):
        assert CannedResponse.objects.count() == 1

    url = f"/settings/canned-responses/{canned.pk}/"
    assert owner_client.post(url, {"shortcut": "ship", "text": "Orders ship within 1 business day."}).status_code == 302
    with tenant_context(tenant):
        canned.refresh_from_db()
    assert (canned.shortcut, canned.text) == ("ship", "Orders ship within 1 business day.")
    assert owner_client.post(url, {"delete": "1"}).status_code == 302
    with tenant_context(tenant):
        assert not CannedResponse.objects.exists()
    assert owner_client.get(url).status_code == 404


def test_agents_use_canned_responses_but_only_managers_edit_them(
    owner_client: Client, waiting: Conversation, agent: User
) -> None:
    owner_client.post("/settings/canned-responses/", {"shortcut": "hello", "text": "Hi, <b>thanks</b> for waiting!"})
    client = client_for(agent)
    assert client.get("/settings/canned-responses/").status_code == 403
    page = client.get(f"/inbox/{waiting.pk}/").content.decode()
    assert '<option value="hello">/hello</option>' in page
    assert '"shortcut": "hello"' in page and "<b>thanks</b>" not in page  # as JSON data, escaped


def test_canned_responses_are_per_tenant(
    owner_client: Client, other_client: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    owner_client.post("/settings/canned-responses/", {"shortcut": "refund", "text": "Tenant A's refund policy"})
    with tenant_context(tenant):
        mine = CannedResponse.objects.get()
    assert other_client.get(f"/settings/canned-responses/{mine.pk}/").status_code == 404
    assert other_client.post(f"/settings/canned-responses/{mine.pk}/", {"delete": "1"}).status_code == 404
    assert "refund" not in other_client.get("/settings/canned-responses/").content.decode()
    # The same shortcut is free in another tenant.
    assert other_client.post("/settings/canned-responses/", {"shortcut": "refund", "text": "B's"}).status_code == 302
    with tenant_context(tenant):
        assert CannedResponse.objects.get().text == "Tenant A's refund policy"
    with tenant_context(other_tenant):
        assert CannedResponse.objects.get().text == "B's"


# --- private notes --------------------------------------------------------------------------------------------


def test_a_note_is_shown_to_agents_and_never_to_the_visitor(
    widget: Widget, waiting: Conversation, agent: User, api_client: APIClient, tenant: Tenant
) -> None:
    client = client_for(agent)
    posted = client.post(f"/inbox/{waiting.pk}/reply/", {"text": SECRET, "note": True}, content_type="application/json")
    assert posted.status_code == 201 and posted.json()["message"]["note"] is True
    with tenant_context(tenant):
        waiting.refresh_from_db()
    # A note is no reply: the conversation still waits for a person, nobody took it, no reply time.
    assert waiting.state == ConversationState.WAITING and waiting.assignee_id is None
    assert waiting.first_human_reply_at is None

    assert SECRET not in str(widget.start())
    assert SECRET not in str(widget.post("messages/after/", {"after": 0}).json())
    resent = widget.say("anyone there?", client_id="v-1")
    again = widget.say("anyone there?", client_id="v-1")  # a resend returns what followed: never the note
    assert SECRET not in str(resent) + str(again)

    page = client.get(f"/inbox/{waiting.pk}/").content.decode()
    assert SECRET in page and "Private note" in page
    api = api_client.get(f"/api/v1/conversations/{waiting.pk}/messages/").json()["messages"]
    notes = [m for m in api if m["note"]]
    assert [m["text"] for m in notes] == [SECRET] and notes[0]["author"] == agent.email


def test_notes_through_the_api_and_bot_resolution(
    widget: Widget, kb: None, api_client: APIClient, tenant: Tenant
) -> None:
    widget.say("Can I return a product?")
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    posted = api_client.post(url, {"text": "checked the CRM", "note": True}, format="json")
    assert posted.status_code == 201 and posted.json()["note"] is True
    assert api_client.get(f"/api/v1/conversations/{conversation.pk}/").json()["state"] == "bot"
    assert "checked the CRM" not in str(widget.post("messages/after/", {"after": 0}).json())
    with tenant_context(tenant):
        resolved = conversation_resolve(conversation=conversation)
    assert resolved.bot_resolved is True  # a note is not a human message to the visitor


@pytest.mark.django_db(transaction=True)
def test_a_note_never_reaches_the_visitors_socket(
    widget: Widget, waiting: Conversation, agent: User, tenant: Tenant
) -> None:
    def write() -> tuple[int, int]:
        with tenant_context(tenant):
            note = agent_note_add(conversation=waiting, author=agent, text=SECRET)
            reply = agent_message_post(conversation=waiting, author=agent, text="Hi, I'm here")
            return note.pk, reply.pk

    async def run() -> None:
        ws = _widget_socket(widget.key)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "hello", "visitor": widget.token, "after": 0})
        await _receive_until(ws, "messages")
        note_id, reply_id = await database_sync_to_async(write)()
        seen: list[dict[str, Any]] = []
        while True:  # everything published up to the reply, which came after the note
            event = await ws.receive_json_from(timeout=5)
            seen.append(event)
            if event.get("kind") == "message" and event["message"]["id"] == reply_id:
                break
        assert SECRET not in str(seen) and note_id not in [e["message"]["id"] for e in seen if "message" in e]
        # A reconnect's catch-up leaves it out too.
        await ws.send_json_to({"type": "hello", "visitor": widget.token, "after": 0})
        caught = await _receive_until(ws, "messages")
        assert reply_id in [m["id"] for m in caught["messages"]]
        assert note_id not in [m["id"] for m in caught["messages"]]
        await ws.disconnect()

    async_to_sync(run)()
