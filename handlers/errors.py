"""One place that turns unexpected exceptions into a message a user can read."""

from __future__ import annotations

import logging
import re

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.services.container import Services
from bot.ui.kit import MESSAGE_TEXT_MAX, Message, clip, section
from handlers.acking import acked_first, tell_internal_error

log = logging.getLogger("fwbot.handlers")


class DirectAnswer:
    """``respond`` for a request that came without a response_url (a modal, App Home, or a
    payload that lost it): the answer goes to the user directly instead of raising."""

    def __init__(self, services: Services, user: str, channel: str | None) -> None:
        self.services, self.user, self.channel = services, user, channel

    def __call__(self, text: str = "", blocks: list | None = None, **_ignored) -> None:
        if not (text or blocks):
            return  # e.g. delete_original: nothing to delete without a response_url, nothing to say
        payload = {"text": clip(text or "fwbot", MESSAGE_TEXT_MAX), "blocks": blocks or [section(text).to_dict()]}
        poster = self.services.poster
        if self.channel:
            try:
                poster.client.chat_postEphemeral(channel=self.channel, user=self.user, **payload)
                return
            except SlackApiError as e:
                log.info("ephemeral answer to %s in %s failed: %s", self.user, self.channel, e.response.get("error"))
        try:
            opened = poster.client.conversations_open(users=[self.user])
            poster.client.chat_postMessage(channel=opened["channel"]["id"], **payload)
        except SlackApiError as e:
            log.warning("could not answer %s at all: %s", self.user, e.response.get("error"))


def register(app: App, services: Services) -> None:
    @app.middleware
    def answer_without_response_url(context, body, next) -> None:  # noqa: A002 - Bolt's name
        if not context.get("response_url") and context.get("user_id"):
            channel = context.get("channel_id")
            context["respond"] = DirectAnswer(services, context["user_id"],
                                              channel if isinstance(channel, str) else None)
        next()

    @app.error
    def on_error(error: Exception, body: dict, respond, logger) -> None:
        log.exception("unhandled error in a listener", exc_info=error)
        tell_internal_error(body, respond, error, services.store.db.path)


STALE_BUTTON = (":information_source: fwbot does not know this button (it may be from an older version of "
                "fwbot); nothing was done. `/fw help` lists what it can do.")
STALE_FORM = (":information_source: fwbot does not know that form (it may be from an older version of fwbot); "
              "nothing was done. `/fw help` lists what it can do.")


def register_fallbacks(app: App, services: Services) -> None:
    """Answers for interactions no listener claimed, so a click never goes unanswered."""

    @app.action(re.compile(".*"))
    @acked_first(services)
    def unknown_action(body, respond) -> None:
        action = (body.get("actions") or [{}])[0]
        log.info("no listener for action %r", action.get("action_id"))
        if action.get("url"):  # a link button: Slack opened the link, there is nothing to do
            return
        if body.get("response_url"):
            respond(response_type="ephemeral", replace_original=False, text=STALE_BUTTON)
        else:
            _tell(services, body["user"]["id"], STALE_BUTTON)

    @app.view(re.compile(".*"))
    @acked_first(services)
    def unknown_view(body) -> None:
        log.info("no listener for view %r", (body.get("view") or {}).get("callback_id"))
        _tell(services, body["user"]["id"], STALE_FORM)

    @app.view_closed(re.compile(".*"))
    def closed(ack) -> None:
        ack()


def _tell(services: Services, user: str, text: str) -> None:
    services.poster.tell(user, Message(text=text, blocks=[section(text)]))
