"""A Slack workspace with one installed app, run in-process for tests and ``fwbot dev``.

``SlackWorkspace`` holds the workspace state (users, channels, messages, views), serves Slack's
Web API, response_url webhooks, file uploads and a browser UI over one HTTP server, and drives
the app exactly as Slack does: signed HTTP POSTs to ``events_url``, whose answer (the app's
``ack()``) it then acts on. Text typed into the composer reaches the app as Slack sends it (the
app's ``should_escape`` commands get ``<#C…|name>`` and ``<@U…>``: ``mentions``). With a
``state_file`` the workspace outlives its process (``fwbot dev --db``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import inspect
import itertools
import json
import os
import secrets
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any, TypeVar

from . import blocks as bk
from . import mentions, payloads, socket_mode
from .model import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    SLACKBOT_USER_ID,
    ApiCall,
    Channel,
    Delivery,
    Message,
    RateViolation,
    UploadedFile,
    User,
    Usergroup,
    View,
)
from .server import make_handler
from .signing import signed_headers
from .socket_mode import SocketLink

T = TypeVar("T")

TRIGGER_LIFETIME = timedelta(seconds=3)
RESPONSE_URL_LIFETIME = timedelta(minutes=30)
RESPONSE_URL_USES = 5
VIEW_STACK_LIMIT = 3
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# Deliveries go straight to the app, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Server(ThreadingHTTPServer):
    # Slack takes bursts of calls; the default listen backlog of 5 resets connections under load.
    request_queue_size = 128


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _Trigger:
    issued: datetime
    user: str
    used: bool = False


@dataclass
class _ResponseUrl:
    """A response_url handed to the app; what it may change depends on where it came from."""

    created: datetime
    user: str
    channel: str
    message_ts: str | None = None  # the message an interaction happened on
    last_posted_ts: str | None = None  # what a command's response_url posted last
    uses: int = 0


@dataclass
class _Script:
    method: str
    status: int | None
    retry_after: float | None
    error: str | None
    remaining: int | None  # None: forever


class SlackWorkspace:
    """One workspace, one app (the bot), any number of seeded humans. Thread-safe."""

    def __init__(self, signing_secret: str, bot_token: str = "xoxb-local", team_id: str = "T0LOCAL",
                 clock: Any = None, team_name: str = "Local", domain: str = "local",
                 app_token: str = "xapp-local", state_file: str | os.PathLike | None = None) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        # Socket Mode: apps.connections.open takes this app-level token; once the app is
        # connected, deliveries go over its WebSocket instead of HTTP.
        self.app_token = app_token
        self._tickets: set[str] = set()
        self._socket: SocketLink | None = None
        self.team_id = team_id
        self.team_name = team_name
        self.domain = domain
        self.clock = clock or _SystemClock()
        self.events_url: str | None = None
        # Events delivered through the Events API (the app's subscriptions). Slash commands and
        # interactions always go out. Add "message" to get message events for human posts.
        self.bot_events: set[str] = {"app_home_opened", "user_change"}
        self.ack_timeout = 3.0  # Slack gives up on an app after 3 s
        self.verification_token = "local-verification-token"
        self.rate_violations: list[RateViolation] = []
        self.url = ""
        self.api_url = ""

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._ids = itertools.count(1)
        self._last_ts_micros = 0
        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._usergroups: dict[str, Usergroup] = {}
        self._messages: dict[str, list[Message]] = {}
        self._views: dict[str, View] = {}
        self._stacks: dict[str, list[str]] = {}
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._files: dict[str, UploadedFile] = {}
        self._calls: list[ApiCall] = []
        self._scripts: list[_Script] = []
        self._last_post: dict[str, datetime] = {}
        self._selections: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self._deliveries: list[tuple[str, Delivery]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self._users[BOT_USER_ID] = User(BOT_USER_ID, BOT_NAME, real_name="fwbot", is_bot=True)
        # The app's slash commands as its manifest declares them: command → should_escape.
        self.commands: dict[str, bool] = {}
        # Where the workspace keeps its state across restarts (None: in memory only). Open
        # modals, triggers and response_urls are not kept: they expire within minutes in Slack.
        self.state_file = os.fspath(state_file) if state_file is not None else None
        self.restored = False  # state was read from state_file
        self._saved_version = -1
        self._saver: threading.Thread | None = None
        if self.state_file and os.path.exists(self.state_file):
            self.load(self.state_file)

    # ------------------------------------------------------------------ server

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the Web API, webhooks and the UI from a daemon thread; returns the base URL."""
        self._server = _Server((host, port), make_handler(self))
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.api_url = f"{self.url}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="slack-workspace", daemon=True)
        self._thread.start()
        if self.state_file and self._saver is None:
            self._saver = threading.Thread(target=self._keep_saved, name="slack-workspace-saver", daemon=True)
            self._saver.start()
        return self.url

    def stop(self) -> None:
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._saver is not None:
            self._saver.join(timeout=5)
            self._saver = None
        if self.state_file:
            self.save(self.state_file)

    def __enter__(self) -> SlackWorkspace:
        if not self.url:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ seeding

    def add_user(self, user_id: str, name: str, real_name: str = "", tz: str = "UTC", is_admin: bool = False,
                 deleted: bool = False, display_name: str = "") -> User:
        with self._lock:
            user = User(user_id, name, real_name=real_name or name, tz=tz, is_admin=is_admin, deleted=deleted,
                        display_name=display_name)
            self._users[user_id] = user
            self._touch()
            return user

    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None) -> Channel:
        """A public channel. ``members=None`` makes every user (and the bot) a member."""
        with self._lock:
            channel = Channel(channel_id, name.lstrip("#"), members=list(members) if members is not None else None,
                              created=int(self.clock.now().timestamp()))
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
            self._touch()
            return channel

    def set_channel(self, channel_id: str, *, archived: bool | None = None, bot_member: bool | None = None,
                    private: bool | None = None) -> Channel:
        """Archive a channel, or take the bot out of it (a private channel then refuses its posts
        with ``not_in_channel``), as a workspace admin or member would."""
        with self._lock:
            channel = self._channel_or_raise(channel_id)
            if archived is not None:
                channel.is_archived = archived
            if bot_member is not None:
                channel.bot_member = bot_member
            if private is not None:
                channel.is_private = private
            self._touch()
            return channel

    def add_usergroup(self, group_id: str, handle: str, users: list[str] | None = None, name: str = "",
                      description: str = "") -> Usergroup:
        with self._lock:
            group = Usergroup(group_id, handle, name or handle, list(users or []), description)
            self._usergroups[group_id] = group
            self._touch()
            return group

    def deactivate_user(self, user_id: str) -> Delivery | None:
        """Mark the user deleted, as an admin deactivating them does, and send ``user_change``."""
        with self._lock:
            user = self._user(user_id)
            user.deleted = True
            self._touch()
            event = {"type": "user_change", "user": self.user_json(user),
                     "cache_ts": int(self.clock.now().timestamp()), "event_ts": self.next_ts()}
        return self.send_event(event)

    # ------------------------------------------------------------------ driving the app

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

    def send_raw(self, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST exactly these bytes and headers to the app (for request-verification tests)."""
        return self._post(body, headers, None)

    def signed_headers(self, body: bytes, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        content_type = JSON if body.lstrip().startswith(b"{") else FORM
        return signed_headers(secret if secret is not None else self.signing_secret, body, content_type, timestamp)

    def new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        """A live response_url, for hand-built payloads sent with :meth:`send_raw`."""
        with self._lock:
            return self._new_response_url(user, channel, message_ts=message_ts)

    def response_url_uses(self, url: str) -> int:
        """How many times the app has posted to a response_url this workspace handed out."""
        with self._lock:
            hook = self._response_urls.get(url.rstrip("/").rsplit("/", 1)[-1])
            return hook.uses if hook is not None else 0

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    @property
    def deliveries(self) -> list[tuple[str, Delivery]]:
        """(kind, delivery) for every request sent to the app, in order."""
        with self._lock:
            return list(self._deliveries)

    def messages(self, channel: str) -> list[Message]:
        """Every message in a channel (or the bot DM of a user id), in posting order.

        Thread replies (``thread_ts`` set), ephemeral ones (``ephemeral_to`` set) and deleted ones
        (``deleted``) are included; filter as needed.
        """
        with self._lock:
            where = self._channel_or_raise(channel)
            return list(self._messages.get(where.id, []))

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            where = self._channel_or_raise(channel)
            for m in self._messages.get(where.id, []):
                if m.ts == ts:
                    return m
            raise LookupError(f"no message {ts} in {channel}; have {[m.ts for m in self._messages.get(where.id, [])]}")

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent message followed by its replies."""
        parent = self.message(channel, ts)
        replies = [m for m in self.messages(channel) if m.thread_ts == ts and m.ts != ts]
        return [parent, *replies]

    def views_for(self, user: str) -> list[View]:
        """The user's open modals, bottom of the stack first."""
        with self._lock:
            return [self._views[v] for v in self._stacks.get(user, [])]

    def view(self, view_id: str) -> View:
        with self._lock:
            if view_id not in self._views:
                raise LookupError(f"no view {view_id}")
            return self._views[view_id]

    def home(self, user: str) -> View | None:
        with self._lock:
            view_id = self._homes.get(user)
            return self._views[view_id] if view_id else None

    def file(self, file_id: str) -> UploadedFile:
        with self._lock:
            return self._files[file_id]

    def dm_channel(self, user: str) -> str:
        """The id of the bot's DM with ``user``, opened on first use."""
        with self._lock:
            for channel in self._channels.values():
                if channel.is_im and channel.im_user == user:
                    return channel.id
            self._user(user)
            channel_id = f"D{next(self._ids):08d}"
            self._channels[channel_id] = Channel(channel_id, user, members=[user, BOT_USER_ID], is_im=True,
                                                 im_user=user, created=int(self.clock.now().timestamp()))
            self._messages[channel_id] = []
            self._touch()
            return channel_id

    def user(self, user_id: str) -> User:
        with self._lock:
            return self._user(user_id)

    @property
    def users(self) -> list[User]:
        with self._lock:
            return list(self._users.values())

    @property
    def channels(self) -> list[Channel]:
        with self._lock:
            return list(self._channels.values())

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
        """Poll ``predicate`` until it returns something truthy; return that.

        Lookup errors raised by the predicate count as "not yet". On timeout, raises
        AssertionError showing the predicate and the workspace's recent activity.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
                last_error = None
            except (LookupError, AttributeError, AssertionError) as exc:
                value, last_error = None, exc
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_report(predicate, timeout, value, last_error))
            time.sleep(interval)

    def script(self, method: str, status: int | None = None, retry_after: float | None = None,
               error: str | None = None, times: int | None = 1) -> None:
        """Make the next ``times`` calls to ``method`` fail: an HTTP status (429 with Retry-After)
        or an ``{"ok": false, "error": ...}`` answer. ``times=None`` fails forever."""
        if status is None and error is None:
            raise ValueError("script needs a status or an error")
        with self._lock:
            self._scripts.append(_Script(method, status, retry_after, error, times))

    # ------------------------------------------------------------------ state shared with the server

    @property
    def version(self) -> int:
        return self._version

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._version != since or self.stopping.is_set(), timeout=timeout)
            return self._version

    def _touch(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    # ------------------------------------------------------------------ keeping state on disk

    STATE_VERSION = 1

    def save(self, path: str | os.PathLike) -> None:
        """Write the workspace (people, channels, messages, files, Home tabs) atomically."""
        with self._lock:
            n = next(self._ids)
            self._ids = itertools.count(n)
            data = {
                "version": self.STATE_VERSION,
                "team_id": self.team_id,
                "next_id": n,
                "last_ts_micros": self._last_ts_micros,
                "users": [asdict(u) for u in self._users.values()],
                "channels": [asdict(c) for c in self._channels.values()],
                "usergroups": [asdict(g) for g in self._usergroups.values()],
                "messages": {cid: [asdict(m) for m in items] for cid, items in self._messages.items()},
                "homes": [{"user": user, "id": vid, "view": self._views[vid].view}
                          for user, vid in self._homes.items() if vid in self._views],
                "files": [{**asdict(f), "content": base64.b64encode(f.content).decode() if f.content else None}
                          for f in self._files.values()],
            }
            text = json.dumps(data)
            version = self._version
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        self._saved_version = max(self._saved_version, version)

    def load(self, path: str | os.PathLike) -> None:
        """Read what :meth:`save` wrote; the workspace then holds exactly that."""
        with open(path) as fh:
            data = json.load(fh)
        if data.get("version") != self.STATE_VERSION:
            raise ValueError(f"{os.fspath(path)}: not a workspace state file of version {self.STATE_VERSION}")
        with self._lock:
            self._users = {u["id"]: User(**u) for u in data.get("users", [])}
            self._channels = {c["id"]: Channel(**c) for c in data.get("channels", [])}
            self._usergroups = {g["id"]: Usergroup(**g) for g in data.get("usergroups", [])}
            self._messages = {
                cid: [Message(**{**m, "files": tuple(m.get("files") or ())}) for m in items]
                for cid, items in data.get("messages", {}).items()}
            for home in data.get("homes", []):
                self._views[home["id"]] = View(home["id"], home["user"], home["view"])
                self._homes[home["user"]] = home["id"]
            for f in data.get("files", []):
                content = base64.b64decode(f["content"]) if f.get("content") else None
                self._files[f["id"]] = UploadedFile(**{**f, "content": content})
            self._ids = itertools.count(int(data.get("next_id", 1)))
            self._last_ts_micros = int(data.get("last_ts_micros", 0))
            self.restored = True
            self._touch()

    def _keep_saved(self) -> None:
        """Save shortly after every change (at most a few times a second) until stopped."""
        assert self.state_file is not None
        while not self.stopping.is_set():
            with self._changed:
                self._changed.wait_for(lambda: self._version != self._saved_version or self.stopping.is_set(),
                                       timeout=5)
            if self.stopping.is_set():
                return
            time.sleep(0.25)  # one write for a burst of changes
            try:
                self.save(self.state_file)
            except OSError as exc:
                print(f"slack workspace: could not save {self.state_file}: {exc}", file=sys.stderr, flush=True)
                self.stopping.wait(5)

    def next_id(self, prefix: str) -> str:
        with self._lock:  # save() swaps the counter under the lock
            return f"{prefix}{next(self._ids):08d}"

    def next_ts(self) -> str:
        """A message timestamp: the clock's time, strictly increasing."""
        with self._lock:
            micros = int(self.clock.now().timestamp() * 1_000_000)
            micros = max(micros, self._last_ts_micros + 100)
            self._last_ts_micros = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def user_json(self, user: User) -> dict[str, Any]:
        """A user object as users.info returns it."""
        from zoneinfo import ZoneInfo

        offset = self.clock.now().astimezone(ZoneInfo(user.tz)).utcoffset() or timedelta(0)
        display = user.display_name or user.name
        return {
            "id": user.id, "team_id": self.team_id, "name": user.name, "deleted": user.deleted,
            "real_name": user.real_name, "tz": user.tz, "tz_label": user.tz, "tz_offset": int(offset.total_seconds()),
            "is_admin": user.is_admin, "is_owner": False, "is_bot": user.is_bot, "is_app_user": False,
            "updated": int(self.clock.now().timestamp()),
            "profile": {"display_name": display, "display_name_normalized": display, "real_name": user.real_name,
                        "real_name_normalized": user.real_name, "team": self.team_id,
                        **({"bot_id": BOT_ID, "api_app_id": APP_ID} if user.is_bot else {})},
        }

    def channel_json(self, channel: Channel) -> dict[str, Any]:
        if channel.is_im:
            return {"id": channel.id, "created": channel.created, "is_im": True, "is_org_shared": False,
                    "user": channel.im_user, "is_user_deleted": self._users[channel.im_user].deleted,
                    "priority": 0}
        return {"id": channel.id, "name": channel.name, "name_normalized": channel.name, "is_channel": True,
                "is_group": False, "is_im": False, "is_mpim": False, "is_private": channel.is_private,
                "is_archived": channel.is_archived,
                "is_general": False, "is_member": BOT_USER_ID in self.members(channel), "created": channel.created,
                "creator": "", "is_shared": False, "is_org_shared": False, "context_team_id": self.team_id,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0}}

    def members(self, channel: Channel) -> list[str]:
        if channel.members is not None:
            return list(channel.members)
        return [u.id for u in self._users.values() if not u.deleted]

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel id, ``#name``/``name``, or a user id (their DM with the bot)."""
        ref = (ref or "").strip()
        if ref in self._channels:
            return self._channels[ref]
        if ref in self._users and not self._users[ref].is_bot:
            return self._channels[self.dm_channel(ref)]
        name = ref.lstrip("#")
        for channel in self._channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    def add_message(self, channel: str, user: str, *, text: str = "", blocks: list[dict] | None = None,
                    thread_ts: str | None = None, ephemeral_to: str | None = None, files: tuple[dict, ...] = (),
                    reply_broadcast: bool = False, command_echo: str | None = None,
                    metadata: dict | None = None) -> Message:
        with self._lock:
            ts = self.next_ts()
            message = Message(ts=ts, channel=channel, user=user, text=text, blocks=bk.with_ids(blocks, ts),
                              thread_ts=thread_ts, ephemeral_to=ephemeral_to, files=files,
                              reply_broadcast=reply_broadcast, command_echo=command_echo, metadata=metadata)
            self._messages.setdefault(channel, []).append(message)
            if thread_ts and ephemeral_to is None:
                self._bump_reply_count(channel, thread_ts)
            self._touch()
            return message

    def find_message(self, channel: str, ts: str, include_ephemeral: bool = False) -> Message | None:
        for m in self._messages.get(channel, []):
            if m.ts == ts and not m.deleted and (include_ephemeral or m.ephemeral_to is None):
                return m
        return None

    def replace_message(self, old: Message, **changes: Any) -> Message:
        with self._lock:
            if "blocks" in changes:
                changes["blocks"] = bk.with_ids(changes["blocks"], f"{old.ts}/{self.next_ts()}")
            new = replace(old, **changes)
            items = self._messages[old.channel]
            items[items.index(old)] = new
            self._touch()
            return new

    def record_call(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)
            if call.method == "chat.postMessage" and call.response and call.response.get("ok"):
                channel = call.response["channel"]
                previous = self._last_post.get(channel)
                if previous is not None and (call.at - previous).total_seconds() < 1:
                    self.rate_violations.append(RateViolation(call.method, channel, call.at,
                                                              (call.at - previous).total_seconds()))
                self._last_post[channel] = call.at

    def take_script(self, method: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.method == method and (script.remaining is None or script.remaining > 0):
                    if script.remaining is not None:
                        script.remaining -= 1
                    return script
            return None

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

    def new_view(self, user: str, view: dict[str, Any]) -> View:
        with self._lock:
            view_id = self.next_id("V")
            stored = self._view_json(view_id, view, root_view_id=view_id, previous_view_id=None)
            record = View(view_id, user, stored)
            self._views[view_id] = record
            self._touch()
            return record

    def open_modal(self, user: str, view: dict[str, Any]) -> View:
        with self._lock:
            record = self.new_view(user, view)
            self._stacks[user] = [record.id]
            self._touch()
            return record

    def push_modal(self, user: str, view: dict[str, Any]) -> View | None:
        with self._lock:
            stack = self._stacks.get(user, [])
            if not stack or len(stack) >= VIEW_STACK_LIMIT:
                return None
            record = self.new_view(user, view)
            record.view["root_view_id"] = stack[0]
            record.view["previous_view_id"] = stack[-1]
            stack.append(record.id)
            self._touch()
            return record

    def update_view(self, record: View, view: dict[str, Any]) -> View:
        with self._lock:
            record.view = self._view_json(record.id, view, root_view_id=record.view.get("root_view_id"),
                                          previous_view_id=record.view.get("previous_view_id"))
            record.errors = {}
            self._touch()
            return record

    def publish_home(self, user: str, view: dict[str, Any]) -> View:
        with self._lock:
            if user in self._homes:
                return self.update_view(self._views[self._homes[user]], view)
            record = self.new_view(user, view)
            self._homes[user] = record.id
            return record

    def view_by_external_id(self, external_id: str) -> View | None:
        for record in self._views.values():
            if record.view.get("external_id") == external_id:
                return record
        return None

    def is_open(self, view_id: str) -> bool:
        return any(view_id in s for s in self._stacks.values()) or view_id in self._homes.values()

    def new_upload(self, filename: str, length: int, alt_txt: str | None) -> UploadedFile:
        with self._lock:
            upload = UploadedFile(self.next_id("F"), filename, length, alt_txt=alt_txt,
                                  created=int(self.clock.now().timestamp()))
            self._files[upload.id] = upload
            return upload

    def file_json(self, upload: UploadedFile) -> dict[str, Any]:
        url = f"{self.url}/files/{upload.id}/{upload.filename}"
        return {"id": upload.id, "created": upload.created, "timestamp": upload.created, "name": upload.filename,
                "title": upload.title or upload.filename, "mimetype": upload.mimetype,
                "filetype": upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else "binary",
                "user": BOT_USER_ID, "size": len(upload.content or b""), "url_private": url,
                "url_private_download": url, "permalink": url, "is_external": False, "alt_txt": upload.alt_txt}

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

    def visible_to(self, message: Message, user: str) -> bool:
        return not message.deleted and (message.ephemeral_to is None or message.ephemeral_to == user)

    # ------------------------------------------------------------------ internals

    def _user(self, user_id: str) -> User:
        if user_id not in self._users:
            raise LookupError(f"no user {user_id}; seeded: {sorted(self._users)}")
        return self._users[user_id]

    def _active_user(self, user_id: str) -> User:
        user = self._user(user_id)
        if user.deleted:
            raise LookupError(f"user {user_id} is deactivated and cannot act")
        return user

    def _channel_or_raise(self, ref: str) -> Channel:
        channel = self.resolve_channel(ref)
        if channel is None:
            raise LookupError(f"no channel {ref!r}; have {[(c.id, c.name) for c in self._channels.values()]}")
        return channel

    def _visible_message(self, channel: str, ts: str, user: str) -> Message:
        for m in self._messages.get(channel, []):
            if m.ts == ts and self.visible_to(m, user):
                return m
        raise LookupError(f"no message {ts} visible to {user} in {channel}")

    def _open_view(self, view_id: str, user: str) -> View:
        view = self._views.get(view_id)
        if view is None or view.user != user or not self.is_open(view_id):
            open_ids = self._stacks.get(user, []) + ([self._homes[user]] if user in self._homes else [])
            raise LookupError(f"view {view_id} is not open for {user}; open: {open_ids}")
        return view

    def _current_state(self, view: View, values: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
        """State values: what the user gave now over what the view held before."""
        held = (view.view.get("state") or {}).get("values") or {}
        merged: dict[str, dict[str, Any]] = {b: dict(a) for b, a in held.items()}
        for block_id, actions in (values or {}).items():
            merged.setdefault(block_id, {}).update(actions)
        return bk.view_state(view.blocks, merged)

    def _new_trigger(self, user: str) -> str:
        trigger_id = f"{int(self.clock.now().timestamp())}.{next(self._ids)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(self.clock.now(), user)
        return trigger_id

    def _new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        token = secrets.token_urlsafe(18)
        self._response_urls[token] = _ResponseUrl(self.clock.now(), user, channel, message_ts=message_ts)
        return f"{self.url}/webhook/{token}"

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

    def _view_json(self, view_id: str, view: dict[str, Any], root_view_id: str | None,
                   previous_view_id: str | None) -> dict[str, Any]:
        body = copy.deepcopy(view)
        blocks = bk.with_ids(body.get("blocks") or [], view_id) or []
        state = bk.view_state(blocks)
        view_hash = hashlib.sha1(f"{view_id}{time.monotonic_ns()}".encode()).hexdigest()[:20]
        return {
            "id": view_id, "team_id": self.team_id, "type": body.get("type", "modal"),
            "blocks": blocks, "private_metadata": body.get("private_metadata", ""),
            "callback_id": body.get("callback_id", ""), "state": {"values": state},
            "hash": f"{int(self.clock.now().timestamp())}.{view_hash}",
            "title": body.get("title"), "clear_on_close": bool(body.get("clear_on_close", False)),
            "notify_on_close": bool(body.get("notify_on_close", False)), "close": body.get("close"),
            "submit": body.get("submit"), "previous_view_id": previous_view_id, "root_view_id": root_view_id,
            "app_id": APP_ID, "external_id": body.get("external_id", ""), "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _pop_view(self, user: str, view_id: str) -> None:
        stack = self._stacks.get(user, [])
        if view_id in stack:
            del stack[stack.index(view_id):]
        self._touch()

    def _close_all(self, user: str) -> None:
        self._stacks[user] = []
        self._touch()

    def _bump_reply_count(self, channel: str, thread_ts: str) -> None:
        parent = self.find_message(channel, thread_ts)
        if parent is not None:
            items = self._messages[channel]
            items[items.index(parent)] = replace(parent, reply_count=parent.reply_count + 1, thread_ts=thread_ts)

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

    # ---------------------------------------------------------------- Socket Mode

    def open_socket_ticket(self) -> str:
        """A one-time ``ws://`` URL for apps.connections.open."""
        ticket = socket_mode.new_ticket()
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.url.replace('http://', 'ws://', 1)}/link/{ticket}"

    def take_socket_ticket(self, ticket: str) -> bool:
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return True
            return False

    def serve_socket(self, sock: Any) -> None:
        """Run one app connection until it closes (called on the server's connection thread)."""
        link = SocketLink(sock)
        with self._lock:
            self._socket = link
        try:
            link.serve()
        finally:
            with self._lock:
                if self._socket is link:
                    self._socket = None

    @property
    def socket_connected(self) -> bool:
        link = self._socket
        return link is not None and not link.closed.is_set()

    def _deliver_over_socket(self, link: SocketLink, payload: dict[str, Any]) -> Delivery:
        if "command" in payload:
            kind, accepts = "slash_commands", True
        elif payload.get("type") == "event_callback":
            kind, accepts = "events_api", False
        else:
            kind, accepts = "interactive", True
        started = time.monotonic()
        answer = link.deliver(kind, payload, self.ack_timeout, accepts)
        elapsed = time.monotonic() - started
        if answer is None:
            delivery = Delivery(0, "", elapsed, error="operation_timeout", payload=payload)
        else:
            body = json.dumps(answer["payload"]) if answer.get("payload") else ""
            delivery = Delivery(200, body, elapsed, {"content-type": "application/json"}, payload=payload)
        with self._lock:
            self._deliveries.append((str(payload.get("type") or payload.get("command") or kind), delivery))
        return delivery

    def _deliver(self, body: bytes, content_type: str, payload: dict[str, Any]) -> Delivery:
        link = self._socket
        if link is not None and not link.closed.is_set():
            return self._deliver_over_socket(link, payload)
        if not self.events_url:
            raise RuntimeError("events_url is not set: nowhere to deliver to")
        headers = signed_headers(self.signing_secret, body, content_type)
        return self._post(body, headers, payload)

    def _post(self, body: bytes, headers: dict[str, str], payload: dict[str, Any] | None) -> Delivery:
        if not self.events_url:
            raise RuntimeError("events_url is not set: nowhere to deliver to")
        request = urllib.request.Request(self.events_url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with _DIRECT.open(request, timeout=self.ack_timeout) as response:
                delivery = Delivery(response.status, response.read().decode("utf-8", "replace"),
                                    time.monotonic() - started, dict(response.headers.items()), payload=payload)
        except urllib.error.HTTPError as exc:
            delivery = Delivery(exc.code, exc.read().decode("utf-8", "replace"), time.monotonic() - started,
                                dict(exc.headers.items()), payload=payload)
        except TimeoutError:
            delivery = Delivery(0, "", time.monotonic() - started, error="operation_timeout", payload=payload)
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            timed_out = isinstance(getattr(exc, "reason", None), TimeoutError)
            delivery = Delivery(0, "", time.monotonic() - started, payload=payload,
                                error="operation_timeout" if timed_out else "dispatch_failed")
        kind = str((payload or {}).get("type") or (payload or {}).get("command") or "raw")
        with self._lock:
            self._deliveries.append((kind, delivery))
        return delivery

    def _timeout_report(self, predicate: Callable[[], Any], timeout: float, value: Any,
                        error: Exception | None) -> str:
        try:
            source = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            source = repr(predicate)
        lines = [f"wait_for timed out after {timeout}s: {source}",
                 f"  last result: {error!r}" if error else f"  last result: {value!r}",
                 "  recent Web API calls:"]
        for call in self.calls[-8:]:
            outcome = (call.response or {}).get("error") or ("ok" if call.status == 200 else call.status)
            lines.append(f"    {call.method} {json.dumps(call.params, default=str)[:160]} -> {outcome}")
        lines.append("  recent deliveries to the app:")
        for kind, delivery in self.deliveries[-5:]:
            lines.append(f"    {kind}: {delivery.status} {delivery.error or ''} {delivery.body[:120]!r}")
        lines += _busy_threads()
        return "\n".join(lines)


def _busy_threads(limit: int = 12) -> list[str]:
    """Where this process's named worker threads are now (the app runs in-process in tests), so a
    wait that timed out shows what the app was stuck on."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = ["  threads of the app in this process (innermost frames):"]
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, "?")
        if not name.startswith(("fwbot", "Thread")) or len(out) > limit:
            continue
        stack = traceback.extract_stack(frame)[-4:]
        out.append(f"    {name}: " + " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                                                for f in reversed(stack)))
    return out
