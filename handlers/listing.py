"""The *Next page* button of ``/fw list`` (the listing itself: bot/services/listing.py)."""

from __future__ import annotations

import json
import logging

from slack_bolt import App

from bot.core.errors import UserFacingError
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.listing import _cursor_of, render
from bot.ui import deployments as ui
from handlers.acking import acked_first

log = logging.getLogger("fwbot.listing")


def register(app: App, services: Services, metrics) -> None:

    @app.action(ui.LIST_NEXT)
    @acked_first(services)
    def next_page(ctx: Context, body, respond) -> None:
        """The next page replaces this one (the reply is the reader's alone)."""
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
        except UserFacingError as e:
            message = ui.problem(e.user_message)
            reply(respond, message)
            return
        reply(respond, message, replace=True)
