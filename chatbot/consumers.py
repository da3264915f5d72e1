"""WebSockets: the widget's (/ws/widget/?key=...) and the agent inbox's (/ws/inbox/).

Sockets deliver what was already stored; they never write messages (those go through the HTTP endpoints).
On (re)connect a client says the last message id it has and gets everything after it from the database,
so nothing published while it was away is lost; clients drop ids they already have.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ValidationError

from chatbot import realtime, selectors, services
from chatbot.models import Conversation
from chatbot.widget_views import visitor_messages_after
from tenants.context import all_tenants, tenant_context
from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import Membership, Tenant, WidgetKey
from tenants.permissions import role_has

CLOSE_FORBIDDEN = 4403
CLOSE_UNAUTHENTICATED = 4401


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _widget_key_for(raw_key: str, origin: str) -> WidgetKey | None:
    """The widget key when it exists and `origin` is on its list."""
    key = selectors.widget_key_lookup(raw_key)
    if key is None or not origin:
        return None
    try:
        return key if services.origin_normalize(origin) in key.allowed_origins else None
    except ValidationError:
        return None


def _catch_up(tenant: Tenant, visitor_id: str, after: int) -> dict[str, Any]:
    with tenant_context(tenant):
        conversation = selectors.conversation_latest(visitor_id=visitor_id)
        if conversation is None:
            return {"kind": "messages", "conversation": None, "state": None, "messages": []}
        messages = visitor_messages_after(conversation=conversation, after=after)
        return {
            "kind": "messages",
            "conversation": conversation.pk,
            "state": conversation.state,
            "ask_email": conversation.asks_email,
            "messages": [realtime.message_widget_dict(m) for m in messages],
        }


def _visitor_typing(tenant: Tenant, visitor_id: str) -> None:
    with tenant_context(tenant):
        conversation = selectors.conversation_latest(visitor_id=visitor_id)
        if conversation is not None and conversation.is_open:
            realtime.publish_typing(tenant_id=tenant.pk, conversation=conversation, who="visitor")


def _after_id(content: dict[str, Any]) -> int:
    try:
        return max(0, int(content.get("after") or 0))
    except (TypeError, ValueError):
        return 0


class _Consumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its hop to a thread to close old database connections before every
        event (measured: about a sixth of the socket process's CPU, two events per visitor message). These
        handlers reach the database only through database_sync_to_async, which closes them itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class WidgetConsumer(_Consumer):
    """A visitor's socket. Refused (403) unless the key exists and the Origin is on its list.

    Client -> server: {"type": "hello", "visitor": token, "after": id}, {"type": "typing"}.
    Server -> client: {"kind": "messages", ...} (catch-up), "message", "state", "typing".
    """

    tenant: Tenant | None = None
    visitor_id: str = ""
    group: str | None = None

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        key = await database_sync_to_async(_widget_key_for)(
            (query.get("key") or [""])[0], _header(self.scope, b"origin")
        )
        if key is None:
            await self.close(code=CLOSE_FORBIDDEN)  # before accept: the handshake is refused with 403
            return
        self.tenant = key.tenant
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or self.tenant is None:
            return
        kind = content.get("type")
        if kind == "hello":
            token = str(content.get("visitor") or "")
            if not token:
                await self.send_json({"kind": "error", "message": "hello needs the visitor token."})
                return
            visitor_id = services.visitor_id_for(token)
            if self.group is not None and visitor_id != self.visitor_id:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            self.visitor_id = visitor_id
            self.group = realtime.visitor_group(self.tenant.pk, visitor_id)
            # Join first, then read: anything published meanwhile is queued behind the catch-up.
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.send_json(await database_sync_to_async(_catch_up)(self.tenant, visitor_id, _after_id(content)))
        elif kind == "typing" and self.visitor_id:
            await database_sync_to_async(_visitor_typing)(self.tenant, self.visitor_id)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def chat_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["event"])


def _inbox_membership(user: Any, wanted_tenant_id: int | None) -> Membership | None:
    """The session's membership (as TenantMiddleware picks it) when its role works conversations."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    with all_tenants():
        memberships = list(Membership.all_tenants.select_related("tenant").filter(user=user).order_by("tenant__name"))
    if not memberships:
        return None
    membership = next((m for m in memberships if m.tenant_id == wanted_tenant_id), memberships[0])
    return membership if role_has(membership.role, "conversations.work") else None


def _inbox_watch(tenant: Tenant, conversation_id: int, after: int) -> dict[str, Any] | None:
    with tenant_context(tenant):
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None:
            return None
        messages = selectors.messages_after(conversation=conversation, after=after)
        return {
            "kind": "messages",
            "conversation": conversation.pk,
            "state": conversation.state,
            "messages": [realtime.message_inbox_dict(m) for m in messages],
        }


def _presence(tenant: Tenant, user: Any, *, online: bool) -> None:
    with tenant_context(tenant):
        services.agent_presence_touch(agent=user, online=online)


def _agent_typing(tenant: Tenant, conversation_id: int, name: str) -> None:
    with tenant_context(tenant):
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is not None and conversation.is_open:
            realtime.publish_typing(tenant_id=tenant.pk, conversation=conversation, who="agent", name=name)


class InboxConsumer(_Consumer):
    """An agent's socket (session login; owner, admin or agent of the session's tenant).

    Client -> server: {"type": "watch", "conversation": id, "after": id}, {"type": "typing", "conversation": id},
    {"type": "heartbeat"} (every 30 s: the agent is online for auto-assignment while the inbox is open).
    Server -> client: "conversation" (list updates), "messages" (catch-up), "message", "typing", "error".
    """

    tenant: Tenant | None = None
    watched: str | None = None

    async def connect(self) -> None:
        session = self.scope.get("session")
        wanted = session.get(SESSION_TENANT_KEY) if session is not None else None
        membership = await database_sync_to_async(_inbox_membership)(self.scope.get("user"), wanted)
        if membership is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.tenant = membership.tenant
        user = self.scope["user"]
        self.agent_name = (user.name or "An agent").split()[0]
        await self.channel_layer.group_add(realtime.inbox_group(self.tenant.pk), self.channel_name)
        await self.accept()
        await database_sync_to_async(_presence)(self.tenant, user, online=True)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or self.tenant is None:
            return
        try:
            conversation_id = int(content.get("conversation") or 0)
        except (TypeError, ValueError):
            conversation_id = 0
        kind = content.get("type")
        if kind == "watch":
            found = await database_sync_to_async(_inbox_watch)(self.tenant, conversation_id, _after_id(content))
            if found is None:
                await self.send_json({"kind": "error", "code": "not_found", "message": "No such conversation."})
                return
            group = realtime.conversation_group(self.tenant.pk, conversation_id)
            if self.watched and self.watched != group:
                await self.channel_layer.group_discard(self.watched, self.channel_name)
            self.watched = group
            await self.channel_layer.group_add(group, self.channel_name)
            # Read again after joining, so nothing written between the first read and the join is missed.
            last = max([_after_id(content)] + [m["id"] for m in found["messages"]])
            again = await database_sync_to_async(_inbox_watch)(self.tenant, conversation_id, last)
            found["messages"] += again["messages"] if again else []
            await self.send_json(found)
        elif kind == "typing" and conversation_id:
            await database_sync_to_async(_agent_typing)(self.tenant, conversation_id, self.agent_name)
        elif kind == "heartbeat":
            await database_sync_to_async(_presence)(self.tenant, self.scope["user"], online=True)

    async def disconnect(self, code: int) -> None:
        if self.tenant is not None:
            await self.channel_layer.group_discard(realtime.inbox_group(self.tenant.pk), self.channel_name)
            await database_sync_to_async(_presence)(self.tenant, self.scope["user"], online=False)
        if self.watched:
            await self.channel_layer.group_discard(self.watched, self.channel_name)

    async def chat_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["event"])
