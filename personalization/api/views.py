"""Personalization API: customer scores, RFM segments and clusters with their members, model versions
(approval), training runs. Scoping and permissions come from TenantScopedViewSet."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from personalization import selectors, services
from personalization.api.serializers import (
    ClusterSerializer,
    CustomerScoreSerializer,
    ModelVersionSerializer,
    RfmSegmentSerializer,
    TrainingRunStartSerializer,
)
from personalization.ml.rfm import SEGMENTS
from personalization.models import ClusterLabel, CustomerScore, ModelVersion
from tenants.api.base import TenantScopedViewSet
from tenants.api.serializers import JobSerializer
from tenants.models import ApiKey, Job, Role, User

SEGMENT_BY_SLUG = {slugify(s): s for s in SEGMENTS}


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class CustomerScoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Latest scores per customer; the id in the URL is the customer's id. Filter by churn_band, rfm_segment,
    cluster; order by predicted_value_365d, churn_risk, historic_value."""

    model = CustomerScore
    serializer_class = CustomerScoreSerializer
    lookup_field = "customer_id"
    filterset_fields = ["churn_band", "rfm_segment", "cluster"]
    ordering_fields = ["predicted_value_365d", "churn_risk", "historic_value", "customer_id"]
    ordering = ["customer_id"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return CustomerScore.objects.select_related("customer")


def _members_page(view: TenantScopedViewSet, qs: QuerySet[Any]) -> Response:
    page = view.paginate_queryset(qs.order_by("customer_id"))
    data = CustomerScoreSerializer(page, many=True).data
    return view.get_paginated_response(data)


SLUG_PARAMETER = OpenApiParameter(
    "slug", str, OpenApiParameter.PATH, description="The segment's slug, e.g. `champions` or `cant-lose-them`."
)


@extend_schema_view(
    retrieve=extend_schema(parameters=[SLUG_PARAMETER]), members=extend_schema(parameters=[SLUG_PARAMETER])
)
class RfmSegmentViewSet(TenantScopedViewSet):
    """The 11 RFM segments with customers and revenue shares; `/<slug>/members/` lists their customers' scores."""

    model = CustomerScore
    serializer_class = RfmSegmentSerializer
    lookup_field = "slug"

    def _segment(self, slug: str) -> str:
        if slug not in SEGMENT_BY_SLUG:
            raise Http404
        return SEGMENT_BY_SLUG[slug]

    def list(self, request: Request) -> Response:
        rows = [{**s, "slug": slugify(s["segment"])} for s in selectors.rfm_segments()]
        return Response(RfmSegmentSerializer(rows, many=True).data)  # type: ignore[arg-type]

    def retrieve(self, request: Request, slug: str) -> Response:
        name = self._segment(slug)
        row = next(s for s in selectors.rfm_segments() if s["segment"] == name)
        return Response(RfmSegmentSerializer({**row, "slug": slug}).data)

    @extend_schema(responses={200: CustomerScoreSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def members(self, request: Request, slug: str) -> Response:
        qs = self.get_queryset().select_related("customer").filter(rfm_segment=self._segment(slug))
        return _members_page(self, qs)


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, TenantScopedViewSet):
    """Behavioural clusters by stable id; PATCH {"name": ...} renames one; `/<id>/members/` lists its customers."""

    model = ClusterLabel
    serializer_class = ClusterSerializer
    lookup_field = "cluster_id"
    http_method_names = ["get", "patch", "head", "options"]
    ordering = ["cluster_id"]

    def perform_update(self, serializer: ClusterSerializer) -> None:  # type: ignore[override]
        label = self.get_object()
        serializer.instance = services.cluster_rename(
            cluster_id=label.cluster_id, name=serializer.validated_data.get("name", "")
        )

    @extend_schema(responses={200: CustomerScoreSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def members(self, request: Request, cluster_id: str) -> Response:
        label = self.get_object()
        qs = CustomerScore.objects.select_related("customer").filter(cluster=label.cluster_id)
        return _members_page(self, qs)


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Trained model versions with parameters, holdout metrics and checks. An owner approves a waiting candidate
    with POST `/<id>/approve/` (signed in: approval is a person's decision, not an API key's)."""

    model = ModelVersion
    serializer_class = ModelVersionSerializer
    filterset_fields = ["kind", "status"]
    ordering = ["-created"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return selectors.model_versions()

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        version = self.get_object()
        membership = getattr(request._request, "membership", None)
        if isinstance(request.auth, ApiKey) or membership is None or membership.role != Role.OWNER:
            raise PermissionDenied("Only an owner signed in to the dashboard can approve a model version.")
        try:
            services.model_version_approve(version=version, user=request.user)  # type: ignore[arg-type]
        except services.ApprovalError as exc:
            raise Conflict(str(exc)) from exc
        version.refresh_from_db()
        return Response(ModelVersionSerializer(version).data)


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Training and scoring runs (jobs). POST starts a training run: 202 with the job, 409 while one is running."""

    model = Job
    serializer_class = JobSerializer
    write_permission = "jobs.run"
    ordering = ["-created"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return Job.objects.filter(kind__in=services.PIPELINE_KINDS).select_related("created_by")

    @extend_schema(request=TrainingRunStartSerializer, responses={202: JobSerializer})
    def create(self, request: Request) -> Response:
        user = request.user if isinstance(request.user, User) else None
        data = TrainingRunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            params = services.training_params_check(cutoff=data.validated_data.get("cutoff"))
        except ValueError as exc:
            raise ValidationError({"cutoff": [str(exc)]}) from exc
        try:
            job = services.pipeline_start(created_by=user, params=params)
        except services.PipelineBusyError as exc:
            raise Conflict(str(exc)) from exc
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
