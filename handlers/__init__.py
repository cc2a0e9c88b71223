"""Slack listeners. Each module registers its own; ``register`` wires them all."""

from __future__ import annotations

from slack_bolt import App

from bot.services.container import Services
from handlers import (
    actions,
    approvals,
    commands,
    context,
    costs,
    errors,
    home,
    lifecycle,
    listing,
    replies,
    views,
)


def register(app: App, services: Services, metrics) -> None:
    errors.register(app, services)
    replies.install(app, services)
    context.install(app, services, metrics)  # after replies: the context holds the checked respond
    commands.register(app, services, metrics)
    actions.register(app, services, metrics)
    views.register(app, services, metrics)
    home.register(app, services)
    lifecycle.register(app, services, metrics)
    approvals.register(app, services, metrics)
    costs.register(app, services, metrics)
    listing.register(app, services, metrics)
    errors.register_fallbacks(app, services)  # last: they match whatever nothing above did
