"""The buttons on owner digests: Scale to zero and Delete."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.core.errors import UserFacingError
from bot.services.commands import problem_reply
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.cost_commands import _value, delete_idle, scale_to_zero
from bot.services.deployments import Actor, Operations
from handlers.acking import acked_first

log = logging.getLogger("fwbot.costs")


def register(app: App, services: Services, metrics) -> None:
    """The digest buttons (the ``cost`` and ``budget`` verbs are in bot/services/commands.py's table)."""
    ops = Operations(services)

    def run_button(body: dict, respond, client, fn) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        ctx = Context(services, ops, Actor(user, channel, services.is_admin(user)), respond, client, body, metrics)
        verb = fn.__name__
        try:
            message = fn(ctx, _value(body))
            metrics.operations.labels(verb=verb, result="ok").inc()
        except UserFacingError as e:
            metrics.operations.labels(verb=verb, result="refused").inc()
            message = problem_reply(e, services.simulated)
        reply(respond, message)

    @app.action("cost_scale_to_zero")
    @acked_first(services)
    def on_scale_to_zero(body, respond, client) -> None:
        run_button(body, respond, client, scale_to_zero)

    @app.action("cost_delete")
    @acked_first(services)
    def on_delete(body, respond, client) -> None:
        run_button(body, respond, client, delete_idle)
