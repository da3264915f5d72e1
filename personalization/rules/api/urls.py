from rest_framework.routers import SimpleRouter

from personalization.rules.api import views

router = SimpleRouter()
router.register("rule-segments", views.RuleSegmentViewSet, basename="rule-segment")

urlpatterns = router.urls
