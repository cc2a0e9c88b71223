"""The bot's side of Slack's Web API: a client with retry handlers and a paced poster.

Slack silently drops messages above about one per second per channel, so every message the
bot starts on its own goes through :class:`Poster`, which spaces posts per channel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.ui.kit import Message

log = logging.getLogger("fwbot.slack")

MIN_SECONDS_BETWEEN_POSTS = 1.0


def make_web_client(token: str, base_url: str) -> WebClient:
    """A WebClient that retries Slack 429s (honouring Retry-After) and dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


class ChannelPacer:
    """At most one post per ``interval`` seconds per channel (thread-safe)."""

    def __init__(self, interval: float = MIN_SECONDS_BETWEEN_POSTS, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._sleep = sleep
        self._monotonic = monotonic
        self._next: dict[str, float] = {}
        self._first_slot = monotonic()
        self._lock = threading.Lock()

    def posted_recently(self, channels: dict[str, float]) -> None:
        """What a predecessor posted just before this process started (channel → seconds ago,
        from the outbox's record): those channels' next slot is a whole interval after it."""
        now = self._monotonic()
        with self._lock:
            for channel, ago in channels.items():
                self._next[channel] = max(self._next.get(channel, now), now - ago + self.interval)

    def wait(self, channel: str) -> None:
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next.get(channel, self._first_slot))
            self._next[channel] = slot + self.interval
        if slot > now:
            self._sleep(slot - now)

    def try_slot(self, channel: str) -> float:
        """Take ``channel``'s slot if it is free now (0.0); else how many seconds until it is,
        taking nothing. For callers that must not sleep (the shared work pool): the effect waits
        in the outbox instead, and the delivery thread sends it when its slot comes."""
        with self._lock:
            now = self._monotonic()
            slot = self._next.get(channel, self._first_slot)
            if slot > now:
                return slot - now
            self._next[channel] = now + self.interval
            return 0.0

    def sent(self, channel: str) -> None:
        """A post to ``channel`` just finished: the next one waits a whole interval from now.

        Slack counts arrivals, and a slow post arrives late; spacing posts by their start alone
        would let the next one arrive less than an interval after it.
        """
        with self._lock:
            self._next[channel] = max(self._next.get(channel, self._first_slot), self._monotonic() + self.interval)


class Poster:
    """Posts and edits the bot's own messages."""

    def __init__(self, client: WebClient, pacer: ChannelPacer | None = None) -> None:
        self.client = client
        self.pacer = pacer or ChannelPacer()

    def post(self, channel: str, message: Message, *, thread_ts: str | None = None, **extra: Any) -> dict:
        """Post a message; returns Slack's response data (``channel``, ``ts``)."""
        self.pacer.wait(channel)
        try:
            resp = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message.payload(), **extra)
        finally:
            self.pacer.sent(channel)
        return {"channel": resp["channel"], "ts": resp["ts"]}

    def update(self, channel: str, ts: str, message: Message) -> bool:
        """Edit a message in place; False when it no longer exists."""
        try:
            self.client.chat_update(channel=channel, ts=ts, **message.payload())
            return True
        except SlackApiError as e:
            if e.response.get("error") in ("message_not_found", "cant_update_message", "channel_not_found"):
                log.warning("could not edit %s/%s: %s", channel, ts, e.response.get("error"))
                return False
            raise

    def ephemeral(self, channel: str, user: str, message: Message) -> bool:
        """Show a message to one user in a channel; False when Slack refused (e.g. not a member)."""
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, **message.payload())
            return True
        except SlackApiError as e:
            log.warning("ephemeral to %s in %s failed: %s", user, channel, e.response.get("error"))
            return False

    def tell(self, user: str, message: Message, channel: str | None = None) -> bool:
        """Make sure a user sees an answer: ephemeral in ``channel`` if possible, else a DM."""
        if channel and self.ephemeral(channel, user, message):
            return True
        try:
            self.dm(user, message)
            return True
        except SlackApiError as e:
            log.warning("could not tell %s anything: %s", user, e.response.get("error"))
            return False

    def dm(self, user: str, message: Message) -> dict:
        opened = self.client.conversations_open(users=[user])
        return self.post(opened["channel"]["id"], message)
