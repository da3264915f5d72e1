from django.apps import AppConfig


class ChatbotConfig(AppConfig):
    name = "chatbot"
    default_auto_field = "django.db.models.BigAutoField"
