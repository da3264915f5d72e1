"""Conversations API: list (filter by state), retrieve, messages (after a cursor; post as agent), hand off,
assign, resolve. Scoping and permissions come from TenantScopedViewSet; another tenant's id is a 404."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from chatbot import selectors, services
from chatbot.models import Conversation, Message
from chatbot.widget_views import validation_detail
from tenants.api.base import TenantScopedViewSet
from tenants.models import Membership, Role, User


class ConversationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    customer: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    assignee: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id", "state", "visitor_id", "customer", "assignee", "handoff_reason", "page_url", "created",
            "last_message_at", "handoff_at", "first_human_reply_at", "resolved_at", "bot_resolved", "csat_score",
            "customer_verified", "claimed_identity", "email_requested", "contact_email", "reply_by_email",
        ]  # fmt: skip
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="email", read_only=True)
    note = serializers.BooleanField(source="is_note", read_only=True, help_text="A private note: agents only.")
    emailed_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When this reply was also emailed to the visitor's address."
    )

    class Meta:
        model = Message
        fields = [
            "id", "conversation", "sender", "author", "text", "buttons", "decision", "note", "client_id", "created",
            "emailed_at",
        ]  # fmt: skip
        read_only_fields = fields


class MessageCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    text = serializers.CharField(max_length=5000)
    client_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    note = serializers.BooleanField(
        required=False, default=False, help_text="A private note for agents; the visitor never sees it."
    )


class HandoffSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(required=False, default="handed off through the API", max_length=300)


class AssignSerializer(serializers.Serializer):  # type: ignore[type-arg]
    assignee = serializers.EmailField(help_text="Email of an owner, admin or agent of this business.")


def _call(fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except ValidationError as exc:
        raise exceptions.ValidationError(validation_detail(exc)) from exc


class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = Conversation
    serializer_class = ConversationSerializer
    read_permission = "conversations.work"
    write_permission = "conversations.work"
    filterset_fields = ["state", "reply_by_email"]
    ordering_fields = ["last_message_at", "created", "handoff_at"]
    ordering = ["-last_message_at", "-id"]

    def scoped_queryset(self) -> QuerySet[Conversation]:
        return Conversation.objects.select_related("customer", "assignee")

    def _actor(self) -> User | None:
        user = self.request.user
        return user if isinstance(user, User) else None

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Only messages with a greater id (cursor).")],
        responses=inline_serializer(
            "MessagePage", {"messages": MessageSerializer(many=True), "next_after": serializers.IntegerField()}
        ),
        summary="Messages after a cursor (oldest first, at most 200)",
    )
    @action(detail=True, methods=["get"], url_path="messages")
    def messages(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        try:
            after = max(0, int(request.query_params.get("after", 0)))
        except ValueError as exc:
            raise exceptions.ValidationError({"after": ["A message id (integer)."]}) from exc
        page = selectors.messages_after(conversation=conversation, after=after)
        return Response(
            {"messages": MessageSerializer(page, many=True).data, "next_after": page[-1].pk if page else after}
        )

    @extend_schema(
        request=MessageCreateSerializer, responses={201: MessageSerializer}, summary="Reply as an agent, or add a note"
    )
    @messages.mapping.post
    def post_message(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        data = MessageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["note"]:
            text = data.validated_data["text"]
            note = _call(services.agent_note_add, conversation=conversation, author=self._actor(), text=text)
            return Response(MessageSerializer(note).data, status=status.HTTP_201_CREATED)
        message = _call(
            services.agent_message_post,
            conversation=conversation,
            author=self._actor(),
            text=data.validated_data["text"],
            client_id=data.validated_data.get("client_id") or None,
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=HandoffSerializer, responses=ConversationSerializer, summary="Hand off to a person")
    @action(detail=True, methods=["post"])
    def handoff(self, request: Request, pk: str | None = None) -> Response:
        data = HandoffSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = _call(
            services.conversation_hand_off, conversation=self.get_object(), reason=data.validated_data["reason"]
        )
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(request=AssignSerializer, responses=ConversationSerializer, summary="Assign to an agent")
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        data = AssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = (
            Membership.objects.select_related("user")
            .filter(user__email=data.validated_data["assignee"].lower(), role__in=[Role.OWNER, Role.ADMIN, Role.AGENT])
            .first()
        )
        if membership is None:
            message = "No owner, admin or agent of this business has this email."
            raise exceptions.ValidationError({"assignee": [message], "non_field_errors": [message]})
        conversation = _call(services.conversation_assign, conversation=conversation, agent=membership.user)
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(request=None, responses=ConversationSerializer, summary="Resolve")
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        conversation = _call(services.conversation_resolve, conversation=self.get_object())
        return Response(ConversationSerializer(conversation).data)
