"""Scheduled jobs of this area (see bot/scheduler.py)."""

from __future__ import annotations

from bot.services import Services


def jobs(services: Services, metrics) -> list:
    return []
