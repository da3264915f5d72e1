"""What a public widget key can reach: only its own tenant's visitors over the socket, never /api/v1."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import Client

from chatbot.models import Conversation
from chatbot.services import agent_message_post
from cxplatform.asgi import application
from tenants.context import tenant_context
from tenants.models import Tenant, User, WidgetKey
from tests.chatbot.conftest import ORIGIN, Widget
from tests.chatbot.wsclient import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


def _socket(key: WidgetKey) -> WebsocketCommunicator:
    headers = [(b"origin", ORIGIN.encode()), (b"host", b"testserver")]
    return WebsocketCommunicator(application, f"/ws/widget/?key={key.key}", headers=headers)


async def _until_message(ws: WebsocketCommunicator, message_id: int) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = await ws.receive_json_from(timeout=5)
        if event.get("kind") == "message" and event["message"]["id"] == message_id:
            return event


def test_widget_key_of_tenant_a_cannot_watch_tenant_b_conversation(
    widget_key: WidgetKey, other_widget_key: WidgetKey, other_tenant: Tenant, other_owner: User, tenant: Tenant
) -> None:
    """A visitor token of tenant B, presented on tenant A's key, finds nothing and hears nothing of B."""
    b_visitor = Widget(other_widget_key)
    b_visitor.start()
    b_visitor.say("my secret order question")
    with tenant_context(other_tenant):
        b_conversation = Conversation.objects.get()

    def b_agent_replies() -> int:
        with tenant_context(other_tenant):
            return agent_message_post(conversation=b_conversation, author=other_owner, text="B-only reply").pk

    async def run() -> None:
        # Control: on tenant B's own key the same token catches up and hears the live reply.
        own = _socket(other_widget_key)
        assert (await own.connect())[0]
        # Tenant A's key, with B's visitor token (and B's conversation id and any cursor).
        foreign = _socket(widget_key)
        assert (await foreign.connect())[0]
        for ws in (own, foreign):
            await ws.send_json_to({"type": "hello", "visitor": b_visitor.token, "after": 0})
        own_first = await own.receive_json_from()
        assert own_first["conversation"] == b_conversation.pk and own_first["messages"]
        caught = await foreign.receive_json_from()
        assert caught == {"kind": "messages", "conversation": None, "state": None, "messages": []}
        await foreign.send_json_to({"type": "typing"})
        await foreign.send_json_to({"type": "watch", "conversation": b_conversation.pk, "after": 0})
        reply_id = await database_sync_to_async(b_agent_replies)()
        assert (await _until_message(own, reply_id))["message"]["text"] == "B-only reply"
        assert await foreign.receive_nothing(timeout=1.0)  # nothing of tenant B, not even typing or state
        for ws in (own, foreign):
            await ws.disconnect()

    async_to_sync(run)()
    with tenant_context(tenant):
        assert not Conversation.objects.exists()  # and nothing was created in tenant A


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer {key}"},
        {"HTTP_X_CX_KEY": "{key}", "HTTP_ORIGIN": ORIGIN},
        {"HTTP_X_CX_KEY": "{key}", "HTTP_X_CX_VISITOR": "{visitor}", "HTTP_ORIGIN": ORIGIN},
    ],
    ids=["as-bearer", "as-widget-header", "with-visitor-token"],
)
def test_widget_key_cannot_reach_the_rest_api(widget: Widget, headers: dict[str, str]) -> None:
    client = Client()
    extra = {k: v.format(key=widget.key.key, visitor=widget.token) for k, v in headers.items()}
    widget.say("hello")
    for method, path in (
        ("get", "/api/v1/conversations/"),
        ("get", "/api/v1/knowledge/entries/"),
        ("get", "/api/v1/customers/"),
        ("post", "/api/v1/knowledge/entries/"),
    ):
        response = getattr(client, method)(path, {} if method == "get" else {"question": "x"}, **extra)
        assert response.status_code in (401, 403), (path, response.status_code)
        assert "results" not in response.content.decode()
        assert response.get("Access-Control-Allow-Origin") is None  # no CORS grant for the shop's origin
