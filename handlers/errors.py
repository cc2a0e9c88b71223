"""One place that turns unexpected exceptions into a message a user can read."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.services import Services

log = logging.getLogger("fwbot.handlers")


def register(app: App, services: Services) -> None:
    @app.error
    def on_error(error: Exception, body: dict, respond, logger) -> None:
        log.exception("unhandled error in a listener", exc_info=error)
        try:
            if body.get("response_url"):
                respond(response_type="ephemeral", replace_original=False,
                        text=":boom: fwbot hit an internal error and did not finish that request. "
                             "Nothing further was changed; the error is in fwbot's log.")
        except Exception:  # noqa: BLE001 - the error path must not raise
            log.exception("could not tell the user about an error")
