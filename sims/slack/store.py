"""``Store``: the workspace's data, and what every part of ``SlackWorkspace`` shares: the lock, the
change counter that wakes waiting readers, and the sequences of ids and message timestamps."""

from __future__ import annotations

import itertools
import os
import threading
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

from .model import (
    BOT_NAME,
    BOT_USER_ID,
    ApiCall,
    Channel,
    Delivery,
    Message,
    RateViolation,
    ResponseUrl,
    Script,
    Trigger,
    UploadedFile,
    User,
    Usergroup,
    View,
)
from .socket_mode import SocketLink


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Store:
    """One workspace's data, read and written by every part of ``SlackWorkspace``."""

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
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._files: dict[str, UploadedFile] = {}
        self._calls: list[ApiCall] = []
        self._scripts: list[Script] = []
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
            self.load(self.state_file)  # PersistenceMixin.load

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
