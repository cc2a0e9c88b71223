"""A scheduled job, and the guard every run goes through (leadership, metrics, one line for
database trouble)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storage.db import database_problem
from storage.leases import LeaseLost, fenced

if TYPE_CHECKING:
    from bot.jobs.leadership import Leadership

log = logging.getLogger("fwbot.scheduler")


@dataclass(frozen=True)
class Job:
    """One scheduled job: a name, the function, and apscheduler trigger arguments."""

    name: str
    run: Callable[[], object]
    trigger: Any = "interval"  # an apscheduler trigger name, or a trigger object
    trigger_args: dict[str, Any] = field(default_factory=dict)
    run_at_start: bool = True


def _guarded(job: Job, metrics, leadership: Leadership | None = None) -> Callable[[], None]:
    """The job as the scheduler runs it. With ``leadership``, only on the replica that holds the
    leader lease, confirmed in the database right before the run, and under its fence: a write
    the run guards with :func:`storage.leases.hold_fence` raises :class:`LeaseLost` once the
    lease has gone to another replica, which ends the run there."""

    def run() -> None:
        try:
            fence = None
            if leadership is not None:
                fence = leadership.fence()
                if fence is None or not leadership.confirm(fence):
                    return  # a follower: the leader runs it
            with fenced(fence):
                job.run()
            metrics.job_runs.labels(job=job.name, result="ok").inc()
        except LeaseLost as e:
            metrics.job_runs.labels(job=job.name, result="lease_lost").inc()
            log.warning("scheduled job %s stopped: %s", job.name, e)
        except Exception as e:  # noqa: BLE001 - a failed run is logged; the next one retries
            metrics.job_runs.labels(job=job.name, result="error").inc()
            problem = database_problem(e)
            if problem is not None:  # the file or its disk, not a bug: one line naming the file
                log.error("scheduled job %s failed: %s", job.name, problem.message)
            else:
                log.exception("scheduled job %s failed", job.name)

    return run
