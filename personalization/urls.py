from django.urls import path

from personalization import views

urlpatterns = [
    path("segments/", views.segments_page, name="segments"),
    path("segments/clusters/<int:cluster_id>/rename/", views.cluster_rename_view, name="cluster_rename"),
    path("predictions/", views.predictions_page, name="predictions"),
    path("predictions/train/", views.train_view, name="predictions_train"),
    path("predictions/run/", views.run_status, name="predictions_run"),
    path("predictions/models/", views.model_list, name="model_list"),
    path("predictions/models/settings/", views.settings_view, name="model_settings"),
    path("predictions/models/<int:pk>/", views.model_detail, name="model_detail"),
    path("predictions/models/<int:pk>/approve/", views.model_approve, name="model_approve"),
]
