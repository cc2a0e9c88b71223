"""Listeners of this area; ``register`` may also add verbs to handlers.commands.VERBS."""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services


def register(app: App, services: Services, metrics) -> None:
    return None
