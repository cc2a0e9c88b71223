"""The *Next page* button of ``/fw list`` (the listing itself: bot/services/listing.py)."""

from __future__ import annotations

import json
import logging

from slack_bolt import App

from bot.adapters.fireworks import FireworksError
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.deployments import Actor, Operations, UserError
from bot.services.listing import _cursor_of, render
from bot.ui import deployments as ui
from handlers.acking import acked_first

log = logging.getLogger("fwbot.listing")


def register(app: App, services: Services, metrics) -> None:
    ops = Operations(services)

    @app.action(ui.LIST_NEXT)
    @acked_first(services)
    def next_page(body, respond, client) -> None:
        """The next page replaces this one (the reply is the reader's alone)."""
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        ctx = Context(services, ops, Actor(user, channel, services.is_admin(user)), respond, client, body, metrics)
        try:
            data = json.loads((body.get("actions") or [{}])[0].get("value") or "")
        except ValueError:
            data = None
        parsed = _cursor_of(data) if isinstance(data, dict) else None
        if parsed is None:
            reply(respond, ui.problem("that button's value is not one fwbot made; nothing was listed."))
            return
        try:
            message = render(ctx, *parsed)
        except (UserError, FireworksError) as e:
            message = ui.problem(("Fireworks says: " if isinstance(e, FireworksError) else "") + e.message)
            reply(respond, message)
            return
        reply(respond, message, replace=True)
