from django.urls import path

from tenants import webhook_views

urlpatterns = [
    path("settings/webhooks/", webhook_views.settings_webhooks, name="settings_webhooks"),
    path(
        "settings/webhooks/deliveries/", webhook_views.settings_webhook_deliveries, name="settings_webhook_deliveries"
    ),
    path("settings/webhooks/<int:pk>/test/", webhook_views.webhook_test, name="settings_webhook_test"),
    path("settings/webhooks/<int:pk>/toggle/", webhook_views.webhook_toggle, name="settings_webhook_toggle"),
    path("settings/webhooks/<int:pk>/rotate/", webhook_views.webhook_rotate, name="settings_webhook_rotate"),
    path("settings/webhooks/<int:pk>/delete/", webhook_views.webhook_delete, name="settings_webhook_delete"),
]
