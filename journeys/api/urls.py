from rest_framework.routers import SimpleRouter

from journeys.api import views

router = SimpleRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("products", views.ProductViewSet, basename="product")
router.register("orders", views.OrderViewSet, basename="order")
router.register("events", views.EventViewSet, basename="event")
router.register("feedback", views.FeedbackViewSet, basename="feedback")
router.register("imports", views.ImportViewSet, basename="import")

urlpatterns = router.urls
