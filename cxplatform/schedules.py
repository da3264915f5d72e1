"""Every periodic schedule of the product, in one place (run by `celery beat`)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "jobs-fail-stale": {
        "task": "tenants.tasks.jobs_fail_stale_task",
        "schedule": crontab(minute="*/10"),
        "options": {"queue": "default"},
    },
    "invitations-purge-expired": {
        "task": "tenants.tasks.invitations_purge_expired_task",
        "schedule": crontab(hour=3, minute=17),
        "options": {"queue": "default"},
    },
    "rule-segments-refresh": {
        "task": "personalization.rules.tasks.rule_segments_refresh_all_task",
        "schedule": crontab(minute=25),  # hourly: windows such as "in the last 7 days" move with the clock
        "options": {"queue": "ml"},
    },
    "webhooks-retry-overdue": {
        "task": "tenants.webhooks.webhook_retry_overdue_task",
        "schedule": crontab(minute="*/10"),
        "options": {"queue": "default"},
    },
    "personalization-nightly-retrain": {
        "task": "personalization.tasks.pipeline_nightly_task",
        "schedule": crontab(hour=2, minute=30),
        "options": {"queue": "ml"},
    },
}
