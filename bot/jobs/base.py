"""A scheduled job, and the guard every run goes through (metrics, one line for database trouble)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.db import database_problem

log = logging.getLogger("fwbot.scheduler")


@dataclass(frozen=True)
class Job:
    """One scheduled job: a name, the function, and apscheduler trigger arguments."""

    name: str
    run: Callable[[], object]
    trigger: Any = "interval"  # an apscheduler trigger name, or a trigger object
    trigger_args: dict[str, Any] = field(default_factory=dict)
    run_at_start: bool = True


def _guarded(job: Job, metrics) -> Callable[[], None]:
    def run() -> None:
        try:
            job.run()
            metrics.job_runs.labels(job=job.name, result="ok").inc()
        except Exception as e:  # noqa: BLE001 - a failed run is logged; the next one retries
            metrics.job_runs.labels(job=job.name, result="error").inc()
            problem = database_problem(e)
            if problem is not None:  # the file or its disk, not a bug: one line naming the file
                log.error("scheduled job %s failed: %s", job.name, problem.message)
            else:
                log.exception("scheduled job %s failed", job.name)

    return run
