"""WebSocket routes of the chat app (mounted by cxplatform.asgi)."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from chatbot.consumers import InboxConsumer, WidgetConsumer

websocket_urlpatterns = [
    # The widget's origin is checked against the widget key's allowed origins in the consumer.
    path("ws/widget/", WidgetConsumer.as_asgi()),
    # The inbox is part of the dashboard: same-site origins only, session login.
    path("ws/inbox/", AllowedHostsOriginValidator(AuthMiddlewareStack(InboxConsumer.as_asgi()))),
]
