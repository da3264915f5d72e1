"""Rule segments API: CRUD, preview count of a definition, members, refresh, and the field catalog.
Scoping and permissions come from TenantScopedViewSet; another tenant's segment is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from personalization.models import RuleSegment
from personalization.rules import selectors, services
from personalization.rules.api.serializers import (
    CountSerializer,
    DefinitionSerializer,
    RefreshResultSerializer,
    RuleSegmentSerializer,
    SegmentMemberSerializer,
)
from personalization.rules.language import DefinitionError
from tenants.api.base import TenantScopedViewSet
from tenants.api.errors import error_body
from tenants.models import User

INVALID = OpenApiResponse(description='{"error": {"code": "invalid_definition", "message", "fields": {"definition": '
                          '[{"path", "message"}]}}}')  # fmt: skip


def definition_error_response(exc: DefinitionError) -> Response:
    first = exc.problems[0]
    where = f" (at {first.path})" if first.path else ""
    message = f"The segment definition is not valid{where}: {first.message}"
    if len(exc.problems) > 1:
        message += f" ({len(exc.problems) - 1} more problem{'s' if len(exc.problems) > 2 else ''} listed in fields.)"
    return Response(
        error_body("invalid_definition", message, {"definition": exc.as_list()}), status=status.HTTP_400_BAD_REQUEST
    )


class RuleSegmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, TenantScopedViewSet,
):  # fmt: skip
    """Rule segments: a condition over customers, kept up to date (dynamic) or frozen (static).

    Creating or changing the definition recomputes the members; dynamic segments are also refreshed after
    each scoring run and hourly."""

    model = RuleSegment
    serializer_class = RuleSegmentSerializer
    filterset_fields = ["kind"]
    ordering_fields = ["name", "created", "member_count"]
    ordering = ["name", "id"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return RuleSegment.objects.select_related("created_by")

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DefinitionError):
            return definition_error_response(exc)
        return super().handle_exception(exc)

    @extend_schema(responses={201: RuleSegmentSerializer, 400: INVALID})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        segment = services.rule_segment_create(
            name=data["name"], description=data.get("description", ""), definition=data["definition"],
            kind=data["kind"], created_by=request.user if isinstance(request.user, User) else None,
        )  # fmt: skip
        return Response(self.get_serializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: RuleSegmentSerializer, 400: INVALID})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        segment = self.get_object()
        partial = kwargs.get("partial", False)
        serializer = self.get_serializer(segment, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        segment = services.rule_segment_update(
            segment=segment, name=data.get("name"), description=data.get("description"),
            definition=data.get("definition"), kind=data.get("kind") if "kind" in request.data else None,
        )  # fmt: skip
        return Response(self.get_serializer(segment).data)

    def perform_destroy(self, instance: RuleSegment) -> None:
        services.rule_segment_delete(segment=instance)

    @extend_schema(request=DefinitionSerializer, responses={200: CountSerializer, 400: INVALID})
    @action(detail=False, methods=["post"])
    def count(self, request: Request) -> Response:
        """Preview: how many customers a definition matches right now (nothing is saved)."""
        serializer = DefinitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"count": selectors.definition_count(definition=serializer.validated_data["definition"])})

    @extend_schema(responses={200: OpenApiResponse(description="fields, operators, choices of definitions")})
    @action(detail=False, methods=["get"])
    def fields(self, request: Request) -> Response:
        """Every field a definition may use, with its operators and (for choices) the allowed values."""
        return Response(selectors.builder_catalog())

    @extend_schema(responses=SegmentMemberSerializer(many=True))
    @action(detail=True, methods=["get"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        """Members as of the last refresh (or snapshot), newest first, paginated."""
        segment = self.get_object()
        page = self.paginate_queryset(selectors.segment_members(segment=segment))
        return self.get_paginated_response(SegmentMemberSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: RefreshResultSerializer, 400: INVALID})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Recompute the members now (for a static segment: take a new snapshot)."""
        result = services.rule_segment_refresh(segment=self.get_object())
        return Response({"added": result.added, "removed": result.removed, "members": result.members})
