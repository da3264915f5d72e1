"""WebSockets through the real ASGI application: origin checks, catch-up after (re)connect, live delivery,
the inbox's login and tenant checks."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from chatbot.models import Conversation, Message
from chatbot.services import agent_message_post
from cxplatform.asgi import application
from tenants.context import tenant_context
from tenants.models import Tenant, User, WidgetKey
from tests.chatbot.conftest import ORIGIN, Widget
from tests.chatbot.wsclient import WebsocketCommunicator
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def _widget_socket(key: WidgetKey, origin: str = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    return WebsocketCommunicator(application, f"/ws/widget/?key={key.key}", headers=headers)


def _session(user: User) -> str:
    """A signed-in session cookie of `user` (made outside the event loop: it writes to the database)."""
    client = client_for(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _inbox_socket(cookie: str | None, origin: str = "http://testserver") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/inbox/", headers=headers)


async def _receive_until(ws: WebsocketCommunicator, kind: str, timeout: float = 5) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = await ws.receive_json_from(timeout=timeout)
        if event.get("kind") == kind:
            return event


def test_widget_socket_refuses_other_origins_and_unknown_keys(widget_key: WidgetKey) -> None:
    async def run() -> None:
        for ws in (
            _widget_socket(widget_key, origin="https://evil.test"),
            WebsocketCommunicator(application, "/ws/widget/?key=wk_unknown", headers=[(b"origin", ORIGIN.encode())]),
        ):
            connected, code = await ws.connect()
            assert not connected and code == 4403
        ok = _widget_socket(widget_key)
        connected, _ = await ok.connect()
        assert connected
        await ok.disconnect()

    async_to_sync(run)()


def test_widget_catches_up_then_receives_live(widget: Widget, kb: None, tenant: Tenant, agent: User) -> None:
    widget.say("Can I return a product?")
    with tenant_context(tenant):
        ids = list(Message.objects.order_by("id").values_list("id", flat=True))
        conversation = Conversation.objects.get()

    async def run() -> None:
        ws = _widget_socket(widget.key)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "hello", "visitor": widget.token, "after": ids[0]})
        caught = await _receive_until(ws, "messages")
        assert [m["id"] for m in caught["messages"]] == ids[1:]  # everything after the id it had, nothing before
        # An agent replies: stored first, then published to the visitor's socket.
        from channels.db import database_sync_to_async

        def reply() -> int:
            with tenant_context(tenant):
                return agent_message_post(conversation=conversation, author=agent, text="<b>Hi</b> from Agent").pk

        message_id = await database_sync_to_async(reply)()
        live = await _receive_until(ws, "message")
        while live["message"]["id"] != message_id:
            live = await _receive_until(ws, "message")
        assert live["message"]["text"] == "<b>Hi</b> from Agent" and live["message"]["sender"] == "agent"
        assert "decision" not in live["message"]
        await ws.disconnect()

    async_to_sync(run)()


def test_inbox_socket_needs_an_agent_and_scopes_to_the_tenant(
    widget: Widget, kb: None, tenant: Tenant, agent: User, analyst: User, other_owner: User, other_tenant: Tenant
) -> None:
    widget.say("I want to talk to a person")
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    agent_cookie, analyst_cookie, other_cookie = _session(agent), _session(analyst), _session(other_owner)

    async def run() -> None:
        for user in (None, analyst_cookie):  # not signed in; a role that does not work conversations
            ws = _inbox_socket(user)
            connected, _ = await ws.connect()
            assert not connected
        foreign = _inbox_socket(agent_cookie, origin="https://evil.test")
        assert not (await foreign.connect())[0]

        ws = _inbox_socket(agent_cookie)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "watch", "conversation": conversation.pk, "after": 0})
        caught = await _receive_until(ws, "messages")
        assert caught["messages"][-1]["sender"] == "system"
        assert any(m["decision"] and m["decision"]["action"] == "handoff" for m in caught["messages"])
        await ws.disconnect()

        # Tenant B's owner cannot watch tenant A's conversation.
        other = _inbox_socket(other_cookie)
        assert (await other.connect())[0]
        await other.send_json_to({"type": "watch", "conversation": conversation.pk, "after": 0})
        error = await _receive_until(other, "error")
        assert error["code"] == "not_found"
        await other.disconnect()

    async_to_sync(run)()


def test_inbox_list_hears_new_waiting_conversations(widget: Widget, kb: None, tenant: Tenant, agent: User) -> None:
    cookie = _session(agent)

    async def run() -> None:
        ws = _inbox_socket(cookie)
        assert (await ws.connect())[0]
        from channels.db import database_sync_to_async

        await database_sync_to_async(widget.say)("please get me a human")
        while True:
            event = await _receive_until(ws, "conversation")
            if event["conversation"]["state"] == "waiting":
                break
        assert "person" in event["conversation"]["handoff_reason"]
        await ws.disconnect()

    async_to_sync(run)()
