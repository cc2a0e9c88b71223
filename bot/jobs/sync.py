"""The sync job: mirror Fireworks into the store and keep tracking messages current."""

from __future__ import annotations

from bot.jobs.base import Job
from bot.services.container import Services
from bot.services.tracking import sync


def jobs(services: Services, metrics) -> list[Job]:
    def timed_sync() -> None:
        with metrics.sync_seconds.time():
            sync(services)

    return [Job("sync", timed_sync, trigger_args={"seconds": services.settings.sync_interval})]
