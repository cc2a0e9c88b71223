"""Replies through a response_url that are never lost silently.

Bolt's ``respond`` posts to the request's response_url and returns whatever Slack answered: a
404 (the URL expired after 30 minutes, or was used 5 times), a 500 or a timeout went unnoticed
and the person never saw fwbot's answer. :class:`CheckedRespond` takes its place for every
request that has a response_url (:func:`install`): when Slack does not take the reply it logs a
warning and tells the person directly instead, ephemerally in the channel (``chat.postEphemeral``)
or else in a DM (``Poster.tell``). Requests without a response_url get ``DirectAnswer``
(handlers/errors.py), which answers the same way from the start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App
from slack_sdk.webhook import WebhookClient

from bot.services.container import Services
from bot.ui.kit import MESSAGE_TEXT_MAX, clip, section

log = logging.getLogger("fwbot.replies")

# Slack answers a response_url at once; one that hangs this long is treated as failed.
RESPONSE_URL_TIMEOUT_S = 10.0


@dataclass
class _Raw:
    """A message already in Slack's JSON form, for ``Poster.tell``."""

    text: str
    blocks: list = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {"text": clip(self.text or "fwbot", MESSAGE_TEXT_MAX),
                "blocks": self.blocks or [section(self.text or "fwbot").to_dict()]}


def _as_dicts(blocks: Any) -> list:
    return [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks or []]


class CheckedRespond:
    """``respond`` for a request with a response_url: post there, and if Slack does not take it
    (non-2xx, an error, a timeout) log a warning and tell the user directly. Never raises."""

    def __init__(self, services: Services, response_url: str, user: str | None, channel: str | None, *,
                 proxy: str | None = None, ssl: Any = None) -> None:
        self.services, self.response_url = services, response_url
        self.user, self.channel = user, channel
        self.proxy, self.ssl = proxy, ssl

    def __call__(self, text: str | dict = "", blocks: list | None = None, **kwargs: Any) -> Any:
        if isinstance(text, dict):  # Bolt also takes the whole message as one dict
            kwargs = {**text, **kwargs}
            text, blocks = kwargs.pop("text", ""), kwargs.pop("blocks", blocks)
        message: dict[str, Any] = {"text": text or ""}
        if blocks:
            message["blocks"] = _as_dicts(blocks)
        message.update({k: v for k, v in kwargs.items() if v is not None})
        try:
            client = WebhookClient(url=self.response_url, timeout=RESPONSE_URL_TIMEOUT_S,  # type: ignore[arg-type]
                                   proxy=self.proxy, ssl=self.ssl, retry_handlers=[])
            resp = client.send_dict(message)
        except Exception as e:  # noqa: BLE001 - timeouts, refused connections: the reply must still arrive
            problem = f"{type(e).__name__}: {e}"
            resp = None
        else:
            if 200 <= resp.status_code < 300:
                return resp
            problem = f"HTTP {resp.status_code} {clip(str(resp.body or ''), 100)}"
        self._fall_back(problem, message)
        return resp

    def _fall_back(self, problem: str, message: dict[str, Any]) -> None:
        text, blocks = message.get("text") or "", message.get("blocks") or []
        if message.get("delete_original") or not (text or blocks):
            # Removing a message nobody can reach any more: nothing to tell anyone.
            log.warning("response_url did not take a delete for %s (%s)", self.user, problem)
            return
        if not self.user:
            log.warning("response_url did not take a reply (%s) and there is no user to tell", problem)
            return
        log.warning("response_url did not take the reply to %s (%s); telling them directly", self.user, problem)
        try:
            if not self.services.poster.tell(self.user, _Raw(text, blocks), self.channel):
                log.warning("the reply to %s is lost: Slack took neither the response_url nor a message", self.user)
        except Exception:  # noqa: BLE001 - the reply path must not raise into a listener
            log.exception("could not tell %s directly", self.user)


def install(app: App, services: Services) -> None:
    """Every listener's ``respond`` becomes a :class:`CheckedRespond` when the request has a
    response_url. Installing twice is harmless (the first wins)."""
    if getattr(app, "_fwbot_checked_respond", False):
        return
    app._fwbot_checked_respond = True  # type: ignore[attr-defined]

    @app.middleware
    def checked_respond(context, next) -> None:  # noqa: A002 - Bolt's name
        url = context.get("response_url")
        if url and not isinstance(context.get("respond"), CheckedRespond):
            bolt = context.respond  # Bolt's own, for the proxy and TLS settings it would use
            channel = context.get("channel_id")
            context["respond"] = CheckedRespond(services, url, context.get("user_id"),
                                                channel if isinstance(channel, str) else None,
                                                proxy=getattr(bolt, "proxy", None), ssl=getattr(bolt, "ssl", None))
        next()
