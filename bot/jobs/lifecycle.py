"""The lifecycle jobs: scrape traffic, then sweep (warnings, scale-to-zero and auto-delete actions)."""

from __future__ import annotations

from bot.jobs.base import Job
from bot.services.container import Services
from bot.services.lifecycle import LifecycleEngine, TrafficScraper


def jobs(services: Services, metrics) -> list[Job]:
    """The metrics scrape and the lifecycle sweep, as scheduled jobs."""
    scraper = TrafficScraper(services)
    engine = LifecycleEngine(services, scraper=scraper)
    return [
        Job("metrics", scraper.scrape, trigger_args={"seconds": services.settings.metrics_interval}),
        Job("lifecycle", engine.sweep, trigger_args={"seconds": services.settings.sync_interval}),
    ]
