from rest_framework.routers import SimpleRouter

from personalization.api import views

router = SimpleRouter()
router.register("customer-scores", views.CustomerScoreViewSet, basename="customer-score")
router.register("rfm-segments", views.RfmSegmentViewSet, basename="rfm-segment")
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("model-versions", views.ModelVersionViewSet, basename="model-version")
router.register("training-runs", views.TrainingRunViewSet, basename="training-run")

urlpatterns = router.urls
