"""The widget's public HTTP endpoints (POST + JSON under /widget/v1/).

Every request names the public widget key (header X-CX-Key), which names the tenant, and comes from a
browser origin on that key's allowed list (the Origin header; requests without one are refused). The
visitor is their secret token (header X-CX-Visitor), issued by /session. The key can only do what a
visitor may do: read and write their own conversation, identify, track, rate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.fields import empty
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatbot import realtime, selectors, services
from chatbot.models import Conversation, Message
from journeys.models import Customer, VisitorIdentity
from tenants.context import tenant_context
from tenants.models import WidgetKey

KEY_HEADER = "X-CX-Key"
VISITOR_HEADER = "X-CX-Visitor"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}

HEADERS = [
    OpenApiParameter(KEY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                     description="The tenant's public widget key."),
    OpenApiParameter(VISITOR_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                     description="The visitor token issued by /widget/v1/session/."),
]  # fmt: skip


def parse_rate(rate: str) -> tuple[int, int]:
    """ "60/min" -> (60, 60 seconds)."""
    count, _, unit = rate.partition("/")
    return int(count), _RATE_UNITS[unit.strip().lower()]


def _rate_hits(buckets: list[tuple[str, str]]) -> int | None:
    """Count one request in the fixed window of each (bucket, rate); seconds to wait when one is over its
    limit, else None. On Redis all buckets cost one round trip (INCR, and EXPIRE when the window opens)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return next((w for w in (_rate_hit(b, r) for b, r in buckets) if w is not None), None)
    rates = [parse_rate(rate) for _, rate in buckets]
    keys = [backend.make_and_validate_key(f"cx:wrl:{bucket}") for bucket, _ in buckets]
    client = backend._cache.get_client(keys[0], write=True)  # type: ignore[attr-defined]  # Django's redis-py client
    pipe = client.pipeline(transaction=False)
    for key, (_, window) in zip(keys, rates, strict=True):
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
    counts = pipe.execute()[::2]
    return next((window for count, (limit, window) in zip(counts, rates, strict=True) if count > limit), None)


def _rate_hit(bucket: str, rate: str) -> int | None:
    """Count one request in a fixed window; seconds to wait when over the limit, else None."""
    limit, window = parse_rate(rate)
    key = f"cx:wrl:{bucket}"
    if cache.add(key, 1, timeout=window):
        return None
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return None
    return window if count > limit else None


class MessageOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    conversation = serializers.IntegerField()
    sender = serializers.ChoiceField(choices=["visitor", "bot", "agent", "system"])
    author = serializers.CharField()
    text = serializers.CharField()
    buttons = serializers.ListField(child=serializers.DictField())
    client_id = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()


ConversationOut = inline_serializer(
    "WidgetConversation",
    {
        "id": serializers.IntegerField(),
        "state": serializers.CharField(),
        "ask_email": serializers.BooleanField(help_text="Show the email field (out-of-hours handoff)."),
    },
)


def visitor_messages_after(*, conversation: Conversation, after: int = 0) -> list[Message]:
    """What the visitor may read of their conversation after a message id: everything but private notes."""
    return list(
        Message.objects.filter(conversation=conversation, id__gt=after, is_note=False)
        .select_related("author", "conversation")
        .order_by("id")[: selectors.MESSAGES_PAGE]
    )


class JSONAnswers(DefaultContentNegotiation):
    """The widget's endpoints answer JSON whatever the Accept header says (the widget's fetch sends */*): the
    project's one renderer, without DRF weighing the header against it on every visitor message."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


class WidgetView(APIView):
    """Base: key and origin checks, the tenant for the request, per-visitor and per-IP rate limits, CORS."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    content_negotiation_class = JSONAnswers
    needs_visitor = True
    widget_key: WidgetKey
    visitor_id: str = ""
    cors_origin: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with ExitStack() as stack:
            self._stack = stack
            return super().dispatch(request, *args, **kwargs)

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        # Preflight: the browser sends no key, so it cannot be checked here; the real request is.
        response = Response(status=status.HTTP_204_NO_CONTENT)
        origin = request.headers.get("Origin")
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = f"Content-Type, {KEY_HEADER}, {VISITOR_HEADER}"
            response["Access-Control-Max-Age"] = "600"
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                response["Access-Control-Allow-Private-Network"] = "true"  # sites on an intranet
            response["Vary"] = "Origin"
        return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "OPTIONS":
            return
        # Refusals are readable by the page too (they carry no data), so the widget can say why it is off.
        self.cors_origin = request.headers.get("Origin") or None
        key = selectors.widget_key_lookup(request.headers.get(KEY_HEADER, "").strip())
        if key is None:
            raise WidgetNotAuthenticated(f"Unknown or revoked widget key (header {KEY_HEADER}).")
        origin = request.headers.get("Origin", "")
        try:
            allowed = bool(origin) and services.origin_normalize(origin) in key.allowed_origins
        except ValidationError:
            allowed = False
        if not allowed:
            raise exceptions.PermissionDenied(
                f"Origin {origin or '(none)'} is not allowed for this widget key; add it in the widget settings."
            )
        self.widget_key = key
        self._stack.enter_context(tenant_context(key.tenant))
        token = request.headers.get(VISITOR_HEADER, "").strip()
        if token and TOKEN_RE.match(token):
            self.visitor_id = services.visitor_id_for(token)
        elif self.needs_visitor:
            raise WidgetNotAuthenticated(f"A visitor token (header {VISITOR_HEADER}) from /session is required.")
        self._throttle(request)

    def _throttle(self, request: Request) -> None:
        buckets = [(f"ip:{request.META.get('REMOTE_ADDR', '')}", settings.WIDGET_RATE_PER_IP)]
        if self.visitor_id:
            buckets.append((f"v:{self.visitor_id}", settings.WIDGET_RATE_PER_VISITOR))
        wait = _rate_hits(buckets)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.cors_origin:
            response["Access-Control-Allow-Origin"] = self.cors_origin
            response["Vary"] = "Origin"
        return response

    def visitor_customer(self) -> Customer | None:
        identity = VisitorIdentity.objects.filter(anonymous_id=self.visitor_id).select_related("customer").first()
        return identity.customer if identity is not None else None

    def visitor_conversation(self, pk: int | None = None) -> Conversation:
        """The visitor's latest conversation (or conversation `pk`, when it is theirs); 404 otherwise."""
        qs = Conversation.objects.filter(visitor_id=self.visitor_id)
        found = qs.filter(pk=pk).first() if pk is not None else qs.order_by("-created", "-id").first()
        if found is None:
            raise exceptions.NotFound()
        return found


def _validated(serializer_class: Callable[..., serializers.Serializer], data: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    """The serializer's validated data; its errors (DRF's, as a 400) for bad input."""
    fields = _text_fields(serializer_class)
    if fields is not None and isinstance(data, dict):
        valid = _text_fields_valid(fields, data)
        if valid is not None:
            return valid
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


_TextField = tuple[str, bool, bool, bool, int | None, int | None]  # name, required, allow_blank, trim, min, max
_SURROGATE = re.compile("[\ud800-\udfff]")


@functools.cache
def _text_fields(serializer_class: Callable[..., serializers.Serializer]) -> list[_TextField] | None:  # type: ignore[type-arg]
    """The serializer's fields when all are plain CharFields (those of most widget requests), else None."""
    declared = getattr(serializer_class, "_declared_fields", None)
    if not declared:
        return None
    fields: list[_TextField] = []
    for name, field in declared.items():
        if type(field) is not serializers.CharField or field.source not in (None, name) or field.read_only:
            return None
        if field.default is not empty or field.allow_null or "validators" in field._kwargs:
            return None
        fields.append((name, field.required, field.allow_blank, field.trim_whitespace, field.min_length,
                       field.max_length))  # fmt: skip
    return fields


def _text_fields_valid(fields: list[_TextField], data: dict[str, Any]) -> dict[str, Any] | None:
    """What DRF's CharFields make of `data` when every value is valid text; None when any is not (or is missing
    but required), for the serializer to say what is wrong. Building a serializer's fields (deep copies of the
    declared ones) cost more than the rest of validating a visitor message."""
    valid: dict[str, Any] = {}
    for name, required, allow_blank, trim, min_length, max_length in fields:
        if name not in data:
            if required:
                return None
            continue
        value = data[name]
        if type(value) is not str or "\x00" in value or (not value.isascii() and _SURROGATE.search(value)):
            return None
        if trim:
            value = value.strip()
        if value == "":
            if not allow_blank:
                return None
            valid[name] = value
            continue
        if (max_length is not None and len(value) > max_length) or (min_length is not None and len(value) < min_length):
            return None
        valid[name] = value
    return valid


def _service(fn: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except ValidationError as exc:
        raise exceptions.ValidationError(validation_detail(exc)) from exc


def validation_detail(exc: ValidationError) -> dict[str, Any]:
    """A service's ValidationError as DRF detail whose message says what is wrong (not only where)."""
    fields = exc.message_dict if hasattr(exc, "error_dict") else {}
    return {**fields, "non_field_errors": exc.messages}


class WidgetNotAuthenticated(exceptions.APIException):
    """401 without a WWW-Authenticate scheme (DRF would turn NotAuthenticated into 403 for views without one)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "not_authenticated"
    default_detail = "Widget key or visitor token missing or invalid."


class SessionIn(serializers.Serializer):  # type: ignore[type-arg]
    page_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class SessionView(WidgetView):
    needs_visitor = False

    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=SessionIn,
        responses=inline_serializer(
            "WidgetSession",
            {
                "visitor": serializers.CharField(help_text="Keep it (localStorage); send it as X-CX-Visitor."),
                "settings": serializers.DictField(),
                "conversation": ConversationOut,
                "messages": MessageOut(many=True),
                "socket": serializers.CharField(),
            },
        ),
        summary="Start or resume a visitor's session: widget settings, their conversation and its messages",
    )
    def post(self, request: Request) -> Response:
        token = request.headers.get(VISITOR_HEADER, "").strip()
        if not self.visitor_id:
            token = services.visitor_token_new()
            self.visitor_id = services.visitor_id_for(token)
        look = services.widget_settings_get()
        conversation = selectors.conversation_latest(visitor_id=self.visitor_id)
        messages = visitor_messages_after(conversation=conversation) if conversation is not None else []
        return Response(
            {
                "visitor": token,
                "settings": {
                    "bot_name": look.bot_name,
                    "color": look.color,
                    "greeting": look.greeting,
                    "avatar_url": look.avatar_url,
                    "notice": services.AUTOMATED_NOTICE,
                    "max_chars": settings.WIDGET_MESSAGE_MAX_CHARS,
                },
                "conversation": realtime.conversation_widget_dict(conversation) if conversation else None,
                "messages": [realtime.message_widget_dict(m) for m in messages],
                "socket": "/ws/widget/",
            }
        )


class MessageIn(serializers.Serializer):  # type: ignore[type-arg]
    text = serializers.CharField(trim_whitespace=True, max_length=20000)
    client_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    entry_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    page_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class MessagesView(WidgetView):
    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=MessageIn,
        responses=inline_serializer(
            "WidgetPosted", {"conversation": ConversationOut, "messages": MessageOut(many=True)}
        ),
        summary="Post a visitor message; the bot's reply comes over the socket (or with it, when replies are inline)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(MessageIn, request.data)
        messages = _service(
            services.visitor_message_post,
            visitor_id=self.visitor_id,
            text=data["text"],
            client_id=data.get("client_id") or None,
            entry_id=data.get("entry_id") or None,
            page_url=data.get("page_url", ""),
            max_chars=settings.WIDGET_MESSAGE_MAX_CHARS,
        )
        conversation = messages[-1].conversation  # as the last message written left it (a handoff)
        return Response(
            {
                "conversation": realtime.conversation_widget_dict(conversation),
                "messages": [realtime.message_widget_dict(m) for m in messages],
            },
            status=status.HTTP_201_CREATED,
        )


class AfterIn(serializers.Serializer):  # type: ignore[type-arg]
    after = serializers.IntegerField(min_value=0, default=0)


class MessagesAfterView(WidgetView):
    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=AfterIn,
        responses=inline_serializer(
            "WidgetMessages", {"conversation": ConversationOut, "messages": MessageOut(many=True)}
        ),
        summary="The messages of the visitor's current conversation after a message id (catch-up)",
    )
    def post(self, request: Request) -> Response:
        after = _validated(AfterIn, request.data)["after"]
        conversation = selectors.conversation_latest(visitor_id=self.visitor_id)
        if conversation is None:
            return Response({"conversation": None, "messages": []})
        messages = visitor_messages_after(conversation=conversation, after=after)
        return Response(
            {
                "conversation": realtime.conversation_widget_dict(conversation),
                "messages": [realtime.message_widget_dict(m) for m in messages],
            }
        )


class TypingView(WidgetView):
    @extend_schema(tags=["widget"], parameters=HEADERS, request=None, responses={204: None},
                   summary="The visitor is typing (shown to agents)")  # fmt: skip
    def post(self, request: Request) -> Response:
        conversation = selectors.conversation_latest(visitor_id=self.visitor_id)
        if conversation is not None and conversation.is_open:
            realtime.publish_typing(tenant_id=conversation.tenant_id, conversation=conversation, who="visitor")
        return Response(status=status.HTTP_204_NO_CONTENT)


class IdentifyIn(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField(max_length=128)
    email = serializers.EmailField(required=False, allow_blank=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    hash = serializers.CharField(required=False, allow_blank=True, max_length=128)


class IdentifyView(WidgetView):
    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=IdentifyIn,
        responses=inline_serializer("WidgetIdentified", {"verified": serializers.BooleanField()}),
        summary="identify(): link the visitor to a customer; hash = hex HMAC-SHA256(identity secret, id)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(IdentifyIn, request.data)
        verified = _service(
            services.visitor_identify_check,
            widget_key=self.widget_key,
            external_id=data["id"],
            given_hash=data.get("hash") or None,
        )
        _service(
            services.visitor_identify_do,
            visitor_id=self.visitor_id,
            external_id=data["id"],
            verified=verified,
            email=data.get("email", ""),
            name=data.get("name", ""),
        )
        return Response({"verified": verified})


class EmailIn(serializers.Serializer):  # type: ignore[type-arg]
    email = serializers.CharField(max_length=254)


class EmailView(WidgetView):
    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=EmailIn,
        responses=inline_serializer(
            "WidgetEmailLeft", {"conversation": ConversationOut, "messages": MessageOut(many=True)}
        ),
        summary="Leave an email address for a reply by email (asked for outside business hours)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(EmailIn, request.data)
        conversation = self.visitor_conversation()
        conversation, message = _service(
            services.conversation_contact_email_set, conversation=conversation, email=data["email"]
        )
        # The confirmation comes back in the answer too: the widget need not wait for its socket.
        return Response(
            {
                "conversation": realtime.conversation_widget_dict(conversation),
                "messages": [realtime.message_widget_dict(message)],
            }
        )


class TrackIn(serializers.Serializer):  # type: ignore[type-arg]
    event = serializers.CharField(max_length=200)
    properties = serializers.DictField(required=False, default=dict)
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class TrackView(WidgetView):
    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=TrackIn,
        responses=inline_serializer("WidgetTracked", {"status": serializers.CharField()}),
        summary="track(event, properties): recorded as a journeys event of the visitor",
    )
    def post(self, request: Request) -> Response:
        data = _validated(TrackIn, request.data)
        result = _service(
            services.visitor_track,
            visitor_id=self.visitor_id,
            customer=self.visitor_customer(),
            event=data["event"],
            properties=data.get("properties") or {},
            url=data.get("url", ""),
        )
        return Response({"status": result}, status=status.HTTP_201_CREATED)


class CsatIn(serializers.Serializer):  # type: ignore[type-arg]
    conversation = serializers.IntegerField()
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class CsatView(WidgetView):
    @extend_schema(
        tags=["widget"],
        parameters=HEADERS,
        request=CsatIn,
        responses=inline_serializer("WidgetRated", {"feedback": serializers.IntegerField()}),
        summary="Rate a resolved conversation (CSAT 1–5 with an optional comment)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(CsatIn, request.data)
        conversation = self.visitor_conversation(data["conversation"])
        feedback = _service(
            services.conversation_rate, conversation=conversation, score=data["score"], comment=data.get("comment", "")
        )
        return Response({"feedback": feedback.pk}, status=status.HTTP_201_CREATED)
