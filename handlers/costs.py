"""The buttons on owner digests: Scale to zero and Delete."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.core.errors import UserFacingError
from bot.services.commands import problem_reply
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.cost_commands import _value, delete_idle, scale_to_zero
from handlers.acking import acked_first

log = logging.getLogger("fwbot.costs")


def register(app: App, services: Services, metrics) -> None:
    """The digest buttons (the ``cost`` and ``budget`` verbs are in bot/services/commands.py's table)."""

    def run_button(ctx: Context, body: dict, respond, fn) -> None:
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
    def on_scale_to_zero(ctx: Context, body, respond) -> None:
        run_button(ctx, body, respond, scale_to_zero)

    @app.action("cost_delete")
    @acked_first(services)
    def on_delete(ctx: Context, body, respond) -> None:
        run_button(ctx, body, respond, delete_idle)
