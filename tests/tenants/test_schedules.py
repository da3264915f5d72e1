"""Every periodic schedule names a task the worker knows, on a queue it listens to."""

from cxplatform.celery import app
from cxplatform.schedules import BEAT_SCHEDULE


def test_beat_schedule_tasks_exist() -> None:
    app.loader.import_default_modules()
    queues = {q.name for q in app.conf.task_queues}
    assert BEAT_SCHEDULE
    for name, entry in BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        assert entry["options"]["queue"] in queues, name
    assert app.conf.beat_schedule == BEAT_SCHEDULE
