from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from journeys.panels import register_customer_panel
        from personalization import tasks  # noqa: F401 - registers the training and scoring job tasks
        from personalization.views import customer_scores_panel

        register_customer_panel(customer_scores_panel)
