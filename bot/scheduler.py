"""The one scheduler: apscheduler runs every background job of fwbot.

Each area contributes its jobs through a ``jobs(services) -> list[Job]`` function; the jobs
themselves are plain functions of the services (and so of its clock), which tests call directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from bot.services import Services
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


def all_jobs(services: Services, metrics) -> list[Job]:
    from bot import approval_jobs, cost_jobs, reconcile, sweep

    return [
        *reconcile.jobs(services, metrics),
        *sweep.jobs(services, metrics),
        *approval_jobs.jobs(services, metrics),
        *cost_jobs.jobs(services, metrics),
    ]


def start_scheduler(services: Services, metrics) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=services.settings.timezone,
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
    for job in all_jobs(services, metrics):
        kwargs = dict(job.trigger_args)
        if job.run_at_start and job.trigger == "interval":
            kwargs.setdefault("next_run_time", services.clock.now())
        scheduler.add_job(_guarded(job, metrics), job.trigger, id=job.name, name=job.name, **kwargs)
    scheduler.start()
    return scheduler
