from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import views

router = SimpleRouter()
router.register("members", views.MembershipViewSet, basename="member")
router.register("jobs", views.JobViewSet, basename="job")
router.register("audit-log", views.AuditLogViewSet, basename="audit-log")

urlpatterns = [path("tenant/", views.TenantView.as_view(), name="api-tenant"), *router.urls]
