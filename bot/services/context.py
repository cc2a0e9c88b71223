"""The request context every use case runs in: who asked, where, and how to answer them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.services.container import Services
from bot.services.deployments import Actor, Operations
from bot.ui.kit import Message

log = logging.getLogger("fwbot.commands")


@dataclass
class Context:
    services: Services
    ops: Operations
    actor: Actor
    respond: Callable[..., Any]
    client: Any
    body: dict
    metrics: Any

    @property
    def simulated(self) -> bool:
        return self.services.simulated


def reply(respond: Callable[..., Any], message: Message, *, replace: bool = False) -> None:
    """Answer ephemerally through ``respond``. Every request with a response_url gets a
    ``handlers.replies.CheckedRespond`` (``tells_the_user``), which tells the user directly when Slack does not take the
    reply; a plain Bolt ``respond`` that failed is at least logged here, never passed over."""
    try:
        result = respond(response_type="ephemeral", replace_original=replace, **message.payload())
    except Exception:  # noqa: BLE001 - e.g. Bolt's respond without a response_url
        log.warning("could not deliver a reply: %s", message.text[:100], exc_info=True)
        return
    status = getattr(result, "status_code", None)
    if isinstance(status, int) and not 200 <= status < 300 and not getattr(respond, "tells_the_user", False):
        log.warning("Slack did not take a reply (HTTP %s): %s", status, message.text[:100])
