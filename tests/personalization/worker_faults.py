"""Imported by a test worker (`celery worker -I tests.personalization.worker_faults`): makes the churn training of
the next pipeline attempts fail as `CX_TEST_FAULTS` says, one fault per attempt, then train normally.

CX_TEST_FAULTS = "<counter file>:<fault>,<fault>,..." with faults `kill` (the worker process dies: SIGKILL) and
`transient` (a dropped database connection). The counter file records attempts across worker processes.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from django.db import OperationalError

from personalization.ml import churn

_spec = os.environ.get("CX_TEST_FAULTS", "")
_counter, _, _faults = _spec.rpartition(":")
_original = churn.churn_train


def _faulty_train(*args: Any, **kwargs: Any) -> Any:
    with open(_counter, "a+") as fh:
        fh.seek(0)
        attempt = len(fh.read())
        fh.write("x")
    faults = _faults.split(",") if _faults else []
    fault = faults[attempt] if attempt < len(faults) else ""
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "transient":
        raise OperationalError("server closed the connection unexpectedly (injected by the test)")
    return _original(*args, **kwargs)


if _counter:
    churn.churn_train = _faulty_train  # type: ignore[assignment]
