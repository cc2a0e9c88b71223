"""What Slack hands the app with an interaction: a trigger_id (used once, within 3 s, to open a view)
and a response_url (up to 5 posts within 30 minutes, back where the interaction happened)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from . import blocks as bk
from .model import BOT_USER_ID, ResponseUrl, Trigger, View
from .store import Store

TRIGGER_LIFETIME = timedelta(seconds=3)
RESPONSE_URL_LIFETIME = timedelta(minutes=30)
RESPONSE_URL_USES = 5


class HooksMixin(Store):
    """trigger_ids and response_urls (part of SlackWorkspace)."""

    def use_trigger(self, trigger_id: str | None) -> str | None:
        """None if the trigger may open a view now, else Slack's error code. Single use."""
        with self._lock:
            trigger = self._triggers.get(trigger_id or "")
            if trigger is None:
                return "invalid_trigger_id"
            if trigger.used:
                return "exchanged_trigger_id"
            if self.clock.now() - trigger.issued > TRIGGER_LIFETIME:
                return "expired_trigger_id"
            trigger.used = True
            return None

    def trigger_user(self, trigger_id: str) -> str:
        return self._triggers[trigger_id].user

    def _new_trigger(self, user: str) -> str:
        trigger_id = f"{int(self.clock.now().timestamp())}.{next(self._ids)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = Trigger(self.clock.now(), user)
        return trigger_id

    def new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        """A live response_url, for hand-built payloads sent with :meth:`send_raw`."""
        with self._lock:
            return self._new_response_url(user, channel, message_ts=message_ts)

    def response_url_uses(self, url: str) -> int:
        """How many times the app has posted to a response_url this workspace handed out."""
        with self._lock:
            hook = self._response_urls.get(url.rstrip("/").rsplit("/", 1)[-1])
            return hook.uses if hook is not None else 0

    def _new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        token = secrets.token_urlsafe(18)
        self._response_urls[token] = ResponseUrl(self.clock.now(), user, channel, message_ts=message_ts)
        return f"{self.url}/webhook/{token}"

    def handle_response_url(self, token: str, body: dict[str, Any]) -> tuple[int, str]:
        """A POST to a response_url: (HTTP status, body text)."""
        with self._lock:
            hook = self._response_urls.get(token)
            if hook is None or self.clock.now() - hook.created > RESPONSE_URL_LIFETIME:
                return 404, "expired_url"
            if hook.uses >= RESPONSE_URL_USES:
                return 404, "used_url"
            text = body.get("text") or ""
            try:
                blocks = bk.parse_blocks(body.get("blocks"))
            except bk.BlocksError as exc:
                return 400, exc.code
            target = hook.message_ts or hook.last_posted_ts
            original = None
            if target is not None:
                original = self.find_message(hook.channel, target, include_ephemeral=True)
            if body.get("delete_original"):
                hook.uses += 1
                if original is not None:
                    self.replace_message(original, deleted=True)
                return 200, json.dumps({"ok": True})
            if not text and blocks is None:
                return 400, "no_text"
            hook.uses += 1
            if body.get("replace_original") and original is not None:
                self.replace_message(original, text=text, blocks=blocks, edited=False)
                return 200, json.dumps({"ok": True})
            in_channel = body.get("response_type") == "in_channel"
            message = self.add_message(hook.channel, BOT_USER_ID, text=text, blocks=blocks,
                                       thread_ts=body.get("thread_ts"),
                                       ephemeral_to=None if in_channel else hook.user)
            if hook.message_ts is None:
                hook.last_posted_ts = message.ts
            return 200, json.dumps({"ok": True})

    def _view_response_urls(self, view: View, state: dict[str, dict[str, Any]], user: str) -> list[dict]:
        urls = []
        for block, element in bk.iter_elements(view.blocks):
            if not element.get("response_url_enabled"):
                continue
            entry = state.get(block["block_id"], {}).get(element["action_id"], {})
            channel = entry.get("selected_conversation") or entry.get("selected_channel")
            if channel:
                urls.append({"block_id": block["block_id"], "action_id": element["action_id"], "channel_id": channel,
                             "response_url": self._new_response_url(user, channel)})
        return urls
