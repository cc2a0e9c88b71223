"""People using the app: slash commands (typed text sent as Slack sends it), clicks, submitting and
closing modals, opening the Home tab, posting, and Events API events; and what Slack then shows,
given the app's answer."""

from __future__ import annotations

import copy
import json
from typing import Any

from . import blocks as bk
from . import mentions, payloads
from .delivery import FORM, JSON
from .model import BOT_USER_ID, SLACKBOT_USER_ID, Channel, Delivery, Message, User
from .store import Store


class InteractionsMixin(Store):
    """What people do that reaches the app (part of SlackWorkspace)."""

    def register_command(self, command: str, should_escape: bool = False) -> None:
        """Declare one of the app's slash commands as its manifest does (``should_escape``)."""
        with self._lock:
            self.commands[command] = bool(should_escape)

    def as_sent(self, command: str, text: str) -> str:
        """The ``text`` Slack sends for ``command`` typed as ``text``: ``&<>`` escaped and, when the
        command escapes, ``#channel``, ``@user`` and links turned into entities (sims.slack.mentions)."""
        with self._lock:
            users = {}
            for u in self._users.values():
                if u.deleted:
                    continue
                for name in (u.name, u.display_name):
                    if name:
                        users.setdefault(name.lower(), u.id)
            channels = {c.name.lower(): (c.id, c.name) for c in self._channels.values() if not c.is_im}
            groups = {g.handle.lower(): g.id for g in self._usergroups.values()}
        return mentions.as_sent(text, should_escape=self.commands.get(command, False),
                                user=lambda n: users.get(n.lower()), channel=lambda n: channels.get(n.lower()),
                                usergroup=lambda n: groups.get(n.lower()))

    def slash_command(self, user: str, channel: str, text: str = "", command: str = "/fw",
                      typed: bool = False) -> Delivery:
        """Run ``command text`` as ``user`` in ``channel`` (an id, a #name, or a user id for the bot DM).

        ``text`` is what the app receives, unless ``typed``: then it is what a person typed in the
        composer, and is sent as Slack would send it (:meth:`as_sent`).
        """
        if typed:
            text = self.as_sent(command, text)
        with self._lock:
            who = self._active_user(user)
            where = self._channel_or_raise(channel)
            trigger_id = self._new_trigger(who.id)
            response_url = self._new_response_url(who.id, where.id)
            fields = payloads.slash_command(team_id=self.team_id, domain=self.domain, user=who, channel=where,
                                            command=command, text=text, response_url=response_url,
                                            trigger_id=trigger_id, token=self.verification_token)
        delivery = self._deliver(payloads.form_body(fields), FORM, fields)
        with self._lock:
            self._apply_command_ack(who, where, f"{command} {text}".strip(), command, delivery)
        return delivery

    def click(self, user: str, channel: str, ts: str, action_id: str, value: str | None = None,
              block_id: str | None = None, selected_option: Any = None) -> Delivery:
        """Click a button (or pick from a select/overflow) in a message, as ``user`` sees it."""
        with self._lock:
            who = self._active_user(user)
            where = self._channel_or_raise(channel)
            message = self._visible_message(where.id, ts, who.id)
            block, element = bk.find_element(message.blocks, action_id, block_id, value)
            action_ts = self.next_ts()
            action = bk.action_entry(block, element, action_ts, value=value, selected_option=selected_option)
            key = (who.id, where.id, message.ts)
            if element.get("type") not in {"button", "overflow"}:
                entry = bk.state_entry(element, selected_option if selected_option is not None else value)
                self._selections.setdefault(key, {}).setdefault(block["block_id"], {})[element["action_id"]] = entry
            ephemeral = message.ephemeral_to is not None
            container = {"type": "message", "message_ts": message.ts, "channel_id": where.id,
                         "is_ephemeral": ephemeral}
            if message.thread_ts:
                container["thread_ts"] = message.thread_ts
            payload = payloads.block_actions(
                team_id=self.team_id, domain=self.domain, user=who, trigger_id=self._new_trigger(who.id),
                actions=[action], token=self.verification_token, container=container,
                response_url=self._new_response_url(who.id, where.id, message_ts=message.ts), channel=where,
                message=None if ephemeral else message.to_slack(self.team_id),
                state={"values": copy.deepcopy(self._selections.get(key, {}))})
        return self._deliver(payloads.interactive_body(payload), FORM, payload)

    def click_in_view(self, user: str, view_id: str, action_id: str, value: str | None = None,
                      selected_option: Any = None, block_id: str | None = None,
                      values: dict[str, dict[str, Any]] | None = None) -> Delivery:
        """An interaction inside a modal or the App Home tab. ``values``: what inputs hold now."""
        with self._lock:
            who = self._active_user(user)
            view = self._open_view(view_id, who.id)
            block, element = bk.find_element(view.blocks, action_id, block_id, value)
            action = bk.action_entry(block, element, self.next_ts(), value=value, selected_option=selected_option)
            state = self._current_state(view, values)
            if element.get("type") not in {"button", "overflow", "workflow_button"}:
                picked = selected_option if selected_option is not None else value
                state.setdefault(block["block_id"], {})[element["action_id"]] = bk.state_entry(element, picked)
            view.view["state"] = {"values": state}
            payload = payloads.block_actions(
                team_id=self.team_id, domain=self.domain, user=who, trigger_id=self._new_trigger(who.id),
                actions=[action], token=self.verification_token, container={"type": "view", "view_id": view.id},
                view=copy.deepcopy(view.view))
            self._touch()
        return self._deliver(payloads.interactive_body(payload), FORM, payload)

    def submit_view(self, user: str, view_id: str, values: dict[str, dict[str, Any]] | None = None) -> Delivery:
        """Press Submit on the top modal. Required inputs left empty stop it here, as in Slack's client."""
        with self._lock:
            who = self._active_user(user)
            view = self._open_view(view_id, who.id)
            stack = self._stacks.get(who.id, [])
            if not stack or stack[-1] != view.id:
                raise LookupError(f"view {view_id} is not the top modal of {user}; stack: {stack}")
            state = self._current_state(view, values)
            missing = bk.missing_required(view.blocks, state)
            view.view["state"] = {"values": state}
            if missing:
                view.errors = missing
                self._touch()
                return Delivery(0, "", 0.0, error="required_fields_missing", errors=missing)
            response_urls = self._view_response_urls(view, state, who.id)
            payload = payloads.view_submission(team_id=self.team_id, domain=self.domain, user=who,
                                               view=copy.deepcopy(view.view), trigger_id=self._new_trigger(who.id),
                                               token=self.verification_token, response_urls=response_urls)
        delivery = self._deliver(payloads.interactive_body(payload), FORM, payload)
        with self._lock:
            self._apply_submission_ack(who.id, view.id, delivery)
        return delivery

    def close_view(self, user: str, view_id: str) -> Delivery | None:
        """Press Cancel / the X. Sends ``view_closed`` if the view asked for it."""
        with self._lock:
            who = self._active_user(user)
            view = self._open_view(view_id, who.id)
            clear = bool(view.view.get("clear_on_close"))
            notify = bool(view.view.get("notify_on_close"))
            payload = payloads.view_closed(team_id=self.team_id, domain=self.domain, user=who,
                                           view=copy.deepcopy(view.view), token=self.verification_token,
                                           is_cleared=clear)
            if clear:
                self._close_all(who.id)
            else:
                self._pop_view(who.id, view.id)
        if notify:
            return self._deliver(payloads.interactive_body(payload), FORM, payload)
        return None

    def open_home(self, user: str) -> Delivery | None:
        """The user opens the app's Home tab: ``app_home_opened``."""
        with self._lock:
            who = self._active_user(user)
            event: dict[str, Any] = {"type": "app_home_opened", "user": who.id, "channel": self.dm_channel(who.id),
                                     "tab": "home", "event_ts": self.next_ts()}
            if who.id in self._homes:
                event["view"] = copy.deepcopy(self._views[self._homes[who.id]].view)
        return self.send_event(event)

    def post_message(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> Message:
        """A human posts a plain message (a ``message`` event goes out if subscribed)."""
        with self._lock:
            who = self._active_user(user)
            where = self._channel_or_raise(channel)
            message = self.add_message(where.id, who.id, text=text, thread_ts=thread_ts)
            event: dict[str, Any] = {"type": "message", "channel": where.id, "user": who.id, "text": text,
                                     "ts": message.ts, "event_ts": message.ts,
                                     "channel_type": "im" if where.is_im else "channel"}
            if thread_ts:
                event["thread_ts"] = thread_ts
        if "message" in self.bot_events:
            self.send_event(event)
        return message

    def send_event(self, event: dict[str, Any]) -> Delivery | None:
        """Deliver an Events API event if the app subscribes to its type."""
        if event.get("type") not in self.bot_events:
            return None
        with self._lock:
            envelope = payloads.event_callback(
                team_id=self.team_id, event=event, event_id=f"Ev{next(self._ids):010d}",
                event_time=int(self.clock.now().timestamp()), token=self.verification_token,
                bot_user_id=BOT_USER_ID)
        return self._deliver(json.dumps(envelope).encode(), JSON, envelope)

    def _apply_command_ack(self, user: User, channel: Channel, invocation: str, command: str,
                           delivery: Delivery) -> None:
        """What Slack shows after a slash command, given the app's HTTP answer."""
        if delivery.status != 200:
            reason = delivery.error or "dispatch_failed"
            self.add_message(channel.id, SLACKBOT_USER_ID, ephemeral_to=user.id,
                             text=f"{command} failed with the error \"{reason}\"")
            return
        if not delivery.body.strip():
            return
        body = delivery.json
        if not isinstance(body, dict):
            self.add_message(channel.id, BOT_USER_ID, text=delivery.body, ephemeral_to=user.id)
            return
        try:
            blocks = bk.parse_blocks(body.get("blocks"))
        except bk.BlocksError as exc:
            self.add_message(channel.id, SLACKBOT_USER_ID, ephemeral_to=user.id,
                             text=f"{command} failed with the error \"{exc.code}\"")
            return
        text = body.get("text") or ""
        if not text and blocks is None:
            return
        if body.get("response_type") == "in_channel":
            self.add_message(channel.id, BOT_USER_ID, text=text, blocks=blocks,
                             command_echo=f"{user.name}: {invocation}")
        else:
            self.add_message(channel.id, BOT_USER_ID, text=text, blocks=blocks, ephemeral_to=user.id)

    def _apply_submission_ack(self, user: str, view_id: str, delivery: Delivery) -> None:
        view = self._views[view_id]
        if delivery.status != 200:
            view.errors = {"": "We had some trouble connecting. Try again?"}
            self._touch()
            return
        body = delivery.json if delivery.body.strip() else None
        action = body.get("response_action") if isinstance(body, dict) else None
        if action == "errors":
            view.errors = dict(body.get("errors") or {})
            self._touch()
        elif action == "update":
            self.update_view(view, body.get("view") or {})
        elif action == "push":
            self.push_modal(user, body.get("view") or {})
        elif action == "clear":
            self._close_all(user)
        else:
            view.errors = {}
            self._pop_view(user, view_id)
