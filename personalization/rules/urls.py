from django.urls import path

from personalization.rules import views

urlpatterns = [
    path("", views.rule_segment_list, name="rule_segment_list"),
    path("new/", views.rule_segment_new, name="rule_segment_new"),
    path("count/", views.rule_segment_count, name="rule_segment_count"),
    path("<int:pk>/", views.rule_segment_detail, name="rule_segment_detail"),
    path("<int:pk>/edit/", views.rule_segment_edit, name="rule_segment_edit"),
    path("<int:pk>/refresh/", views.rule_segment_refresh_view, name="rule_segment_refresh"),
    path("<int:pk>/delete/", views.rule_segment_delete_view, name="rule_segment_delete"),
    path("<int:pk>/members.csv", views.rule_segment_export, name="rule_segment_export"),
]
