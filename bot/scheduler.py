"""The one scheduler: apscheduler jobs for the reconcile loop and the background sweeps."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.services import Services

log = logging.getLogger("fwbot.scheduler")


def _guarded(name: str, fn: Callable[[], object], metrics) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
            metrics.job_runs.labels(job=name, result="ok").inc()
        except Exception:  # noqa: BLE001 - a failed run is logged; the next one retries
            metrics.job_runs.labels(job=name, result="error").inc()
            log.exception("scheduled job %s failed", name)

    return run


def start_scheduler(services: Services, metrics) -> BackgroundScheduler:
    from bot.reconcile import sync

    s = services.settings
    scheduler = BackgroundScheduler(timezone=s.timezone, job_defaults={"coalesce": True, "max_instances": 1})

    def timed_sync() -> None:
        with metrics.sync_seconds.time():
            sync(services)

    scheduler.add_job(_guarded("sync", timed_sync, metrics), "interval", seconds=s.sync_interval, id="sync",
                      next_run_time=services.clock.now())
    scheduler.start()
    return scheduler
