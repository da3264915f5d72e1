from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api.base import TenantScopedViewSet
from tenants.api.serializers import AuditLogEntrySerializer, JobSerializer, MembershipSerializer, TenantSerializer
from tenants.context import current_tenant
from tenants.jobs import job_start
from tenants.models import AuditLogEntry, Job, Membership, User
from tenants.tasks import AUDIT_EXPORT


class TenantView(APIView):
    """The tenant the credentials belong to."""

    read_permission = "dashboard.view"

    @extend_schema(responses=TenantSerializer)
    def get(self, request: Request) -> Response:
        return Response(TenantSerializer(current_tenant()).data)


class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = Membership
    serializer_class = MembershipSerializer
    ordering_fields = ["created", "role"]
    ordering = ["created"]
    filterset_fields = ["role"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return Membership.objects.select_related("user")


JOB_COLUMNS = [field.name for field in Job._meta.concrete_fields]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Background jobs of the tenant, newest first. Poll one to follow its progress."""

    model = Job
    serializer_class = JobSerializer
    write_permission = "jobs.run"
    filterset_fields = ["status", "kind"]
    ordering_fields = ["created", "finished_at"]
    ordering = ["-created"]

    def scoped_queryset(self) -> QuerySet[Any]:
        # Only the creator's email is shown; whole user rows would cost as much as the jobs themselves.
        return Job.objects.select_related("created_by").only(*JOB_COLUMNS, "created_by__email")

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=False, methods=["post"], url_path="audit-log-export")
    def audit_log_export(self, request: Request) -> Response:
        """Start exporting the audit log to CSV; follow the returned job."""
        user = request.user if isinstance(request.user, User) else None
        job = job_start(kind=AUDIT_EXPORT, created_by=user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class AuditLogViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    model = AuditLogEntry
    serializer_class = AuditLogEntrySerializer
    read_permission = "audit.view"
    filterset_fields = ["action"]
    ordering = ["-created"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return AuditLogEntry.objects.select_related("actor", "api_key")
