from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cxplatform import health

api_v1: list[URLPattern | URLResolver] = [
    path("", include("tenants.api.urls")),
    path("", include("journeys.api.urls")),
    path("", include("personalization.rules.api.urls")),
    path("", include("personalization.api.urls")),
    path("", include("chatbot.api.urls_conversations")),
    path("", include("chatbot.api.knowledge")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("widget/v1/", include("chatbot.widget_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include(api_v1)),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("tenants.urls")),
    path("", include("journeys.urls")),
    path("", include("chatbot.urls")),
    path("", include("chatbot.kb_urls")),
    path("", include("tenants.webhook_urls")),
    path("", include("personalization.urls")),
    path("segments/rules/", include("personalization.rules.urls")),
]

handler404 = "cxplatform.views.not_found"
