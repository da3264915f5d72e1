"""A test-only job that stays running and reports progress only when the test says so."""

from __future__ import annotations

import queue
import threading
import uuid

from tenants.jobs import job_progress, job_task
from tenants.models import Job

STEPPED = "test.stepped"
STEP_TIMEOUT = 30  # seconds a step may wait before the job gives up (a failing test must not hang)

_gates: dict[str, queue.Queue[int | None]] = {}


class Stepper:
    """The test's side of a stepped job: `params` to start it with, `step(percent)`, `finish()`."""

    def __init__(self) -> None:
        self.name = uuid.uuid4().hex
        _gates[self.name] = queue.Queue()
        self.params = {"gate": self.name}

    def step(self, percent: int) -> None:
        _gates[self.name].put(percent)

    def finish(self) -> None:
        _gates[self.name].put(None)


@job_task(kind=STEPPED, label="Stepped test job", queue="default")
def stepped_job(job: Job) -> dict[str, object]:
    gate = _gates[job.params["gate"]]
    steps = 0
    while (percent := gate.get(timeout=STEP_TIMEOUT)) is not None:
        steps += 1
        job_progress(job, percent, f"step {steps}")
    return {"steps": steps, "thread": threading.current_thread().name}
