from rest_framework.routers import SimpleRouter

from chatbot.api import conversations

router = SimpleRouter()
router.register("conversations", conversations.ConversationViewSet, basename="conversation")

urlpatterns = router.urls
