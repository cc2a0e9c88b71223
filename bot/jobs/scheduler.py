"""The one scheduler: apscheduler runs every background job of fwbot.

Each module of ``bot/jobs`` contributes its jobs through a ``jobs(services, metrics) -> list[Job]``
function; the jobs
themselves are plain functions of the services (and so of its clock), which tests call directly.
With a :class:`~bot.jobs.leadership.Leadership`, every replica schedules the jobs but only the
leader runs them (bot/jobs/base.py); a replica that becomes the leader runs the jobs that run at
start at once, as a restarted process would.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from bot.jobs import approvals as approval_jobs
from bot.jobs import costs as cost_jobs
from bot.jobs import lifecycle, sync
from bot.jobs.base import Job, _guarded
from bot.jobs.leadership import Leadership
from bot.services.container import Services

log = logging.getLogger("fwbot.scheduler")


def all_jobs(services: Services, metrics) -> list[Job]:
    return [
        *sync.jobs(services, metrics),
        *lifecycle.jobs(services, metrics),
        *approval_jobs.jobs(services, metrics),
        *cost_jobs.jobs(services, metrics),
    ]


def start_scheduler(services: Services, metrics, leadership: Leadership | None = None) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=services.settings.timezone,
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
    at_start = []
    for job in all_jobs(services, metrics):
        kwargs = dict(job.trigger_args)
        if job.run_at_start and job.trigger == "interval":
            kwargs.setdefault("next_run_time", services.clock.now())
            at_start.append(job.name)
        scheduler.add_job(_guarded(job, metrics, leadership), job.trigger, id=job.name, name=job.name, **kwargs)
    scheduler.start()
    if leadership is not None:
        def run_now() -> None:
            # A new leader does at once what a restart does: sync, sweep, finish interrupted runs.
            if not scheduler.running:
                return
            for name in at_start:
                scheduler.modify_job(name, next_run_time=services.clock.now())

        leadership.on_gain(run_now)
    return scheduler
