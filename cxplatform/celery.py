"""The Celery app. Queues are named by kind of work: `default`, `ml`, `realtime`."""

import os

from celery import Celery
from kombu import Queue

from cxplatform.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")

app = Celery("cxplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("ml"), Queue("realtime"))
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()
app.autodiscover_tasks(["personalization.rules"])  # rule segment refresh tasks
