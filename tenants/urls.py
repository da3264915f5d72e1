from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("business/new/", views.business_new, name="business_new"),
    path("business/switch/", views.tenant_switch, name="tenant_switch"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("settings/", views.settings_general, name="settings_general"),
    path("settings/team/", views.settings_team, name="settings_team"),
    path("settings/team/<int:pk>/role/", views.member_role, name="member_role"),
    path("settings/team/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("settings/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("settings/api-keys/", views.settings_api_keys, name="settings_api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("settings/jobs/", views.settings_jobs, name="settings_jobs"),
    path("settings/jobs/<int:pk>/download/", views.job_download, name="job_download"),
    path("settings/audit-log/", views.settings_audit, name="settings_audit"),
]
