"""fwbot's HTTP front door: ``POST /slack/events`` (and ``/healthz``, ``/metrics``).

Everything a request passes before Bolt sees it, in order:

1. **Framing** (:class:`_Handler`). One ``Content-Length`` of plain digits, at most
   :data:`MAX_BODY_BYTES`; no ``Transfer-Encoding`` (Slack never sends one). Every read has a
   deadline: the request line and headers, then the body, each within their own limit, and an
   idle keep-alive connection is closed after a while, so a client that sends half a request
   holds one thread for seconds, not forever. A request refused before its body was read is
   answered with ``Connection: close`` and the connection closed, so the unread body is never
   taken for further requests. The body is read *before* the request counts as being answered
   (``services.acks.acking()``): only verifying and dispatching are on the ack clock.
2. ``ssl_check=1`` is answered 200 before anything else, as Bolt's ``SslCheck`` does.
3. The signature (:class:`BotHTTPServer.dispatch`), then the same signature twice
   (:class:`ReplayGuard`).
4. Parsing, with JSON nesting bounded (:func:`slack_body`), then the shapes Slack sends
   (:func:`malformed`).
5. ``url_verification`` is answered with its challenge, as Bolt's ``UrlVerification`` does.
6. The team: only allowed teams and Enterprise Grid organisations (:class:`TeamGate`).
7. Re-deliveries: a request whose event id or trigger id was already taken in is answered 200
   with an empty body and not run again (:class:`storage.receipts.Receipts`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context, extract_content_type
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services.container import Services

log = logging.getLogger("fwbot")

SIGNATURE_WINDOW_S = 300  # Slack's (and Bolt's) tolerance for a request's timestamp
MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; anything bigger is not Slack
MAX_JSON_DEPTH = 64  # Slack's deepest payloads (a message's rich text in a click) nest about a dozen
_CONTENT_LENGTH = re.compile(r"[0-9]{1,16}")
_TEAM_ID = re.compile(r"[TE][A-Z0-9_]+")


# -- parsing --------------------------------------------------------------------------------------

_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Outside its strings, JSON holds brackets, ",:", whitespace, numbers and true/false/null: dropping
# all but the brackets (made one kind: only the depth matters) leaves its skeleton.
_SKELETON = str.maketrans({**dict.fromkeys(" \t\n\r:,0123456789-+.eEtrufalsn"), "{": "[", "}": "]"})
_BRACKET_ESCAPE = re.compile(r"\\u00(5[bd]|7[bd])", re.IGNORECASE)  # "\u005b" is "[" once decoded
_LEADS_AS_JSON = re.compile(r"(?:\s|\\[nrt])*(?:[\[{]|\\u00[57]b)", re.IGNORECASE)


def _brackets(text: str) -> int:
    return text.count("[") + text.count("{")


def _split_strings(text: str) -> tuple[str, list[str]]:
    """JSON ``text`` as (everything outside strings, the strings' raw contents).

    With escaped backslashes and escaped quotes dropped, every quote left opens or closes a
    string, as JSON's own parser reads them (up to the first character it would refuse, after
    which it parses nothing)."""
    parts = text.replace("\\\\", "").replace('\\"', "").split('"')
    return "".join(parts[0::2]), parts[1::2]


def _too_deep(outside: str, limit: int) -> bool:
    """Whether JSON whose text outside strings is ``outside`` nests deeper than ``limit``: each
    pass drops the innermost pairs, one level; what cannot shrink is not JSON (refused too)."""
    skeleton = outside.translate(_SKELETON)
    if "[" * (limit + 1) in skeleton:  # the usual attack, at once (the passes copy the skeleton)
        return True
    for _ in range(limit):
        if not skeleton:
            return False
        shorter = skeleton.replace("[]", "")
        if len(shorter) == len(skeleton):
            return True
        skeleton = shorter
    return bool(skeleton)


def _nesting(text: str) -> int:
    """The deepest nesting of the brackets in ``text``, whatever else it holds."""
    return max(accumulate(map(_STEP.__getitem__, _NOT_BRACKET.sub("", text))), default=0)


def _json(text: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` with nesting bounded, in the text and in the strings inside it that could be
    JSON themselves: the listeners parse some (a button's value, a view's private_metadata)."""
    total = _brackets(text)
    escaped = len(_BRACKET_ESCAPE.findall(text)) if "\\u00" in text else 0
    if total + escaped > limit:
        outside, strings = _split_strings(text)
        if _too_deep(outside, limit):
            raise ValueError(f"JSON nested deeper than {limit}")
        if total - _brackets(outside) + escaped > limit:  # enough inside strings to nest too deep there
            for raw in strings:
                if len(raw) > limit and _LEADS_AS_JSON.match(raw):
                    # Brackets as the string's parser would see them; its own strings' quotes were
                    # dropped with the escapes, so their brackets count too (never fewer).
                    decoded = _BRACKET_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), raw)
                    if _brackets(decoded) > limit and _nesting(decoded) > limit:
                        raise ValueError(f"JSON in a string nested deeper than {limit}")
    return json.loads(text)


def slack_body(text: str, content_type: str | None) -> Any:
    """A request body as Slack means it: JSON (events), or a form whose ``payload`` field, when
    the form has one, holds the interaction's JSON. Nesting is bounded (:data:`MAX_JSON_DEPTH`, see :func:`_json`), in
    the JSON and in the strings inside it that could be JSON too."""
    if content_type == "application/json" or text.startswith("{"):
        return _json(text)
    fields = dict(parse_qsl(text, keep_blank_values=True))
    return _json(fields["payload"]) if "payload" in fields else fields


def is_ssl_check(text: str, content_type: str | None) -> bool:
    """Slack's ``ssl_check=1`` probe, recognised exactly as Bolt's ``SslCheck`` does (a form body,
    read the way Bolt's ``parse_body`` reads one), without parsing anything that is not a form."""
    if "ssl_check" not in text or content_type == "application/json" or text.startswith("{") or "payload" in text:
        return False
    return dict(parse_qsl(text, keep_blank_values=True)).get("ssl_check") == "1"


_INTERACTIONS = ("block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut",
                 "message_action")


def _is_text(value: Any, *, required: bool = False) -> bool:
    return isinstance(value, str) and bool(value) if required else value is None or isinstance(value, str)


def _view_problem(view: Any) -> str | None:
    if not isinstance(view, dict):
        return "view is not an object"
    if not (_is_text(view.get("type"), required=True) and _is_text(view.get("id")) and _is_text(view.get("callback_id")) and _is_text(view.get("private_metadata"))
            and _is_text(view.get("hash"))):
        return "view ids are not text"
    values = (view.get("state") or {}).get("values", {}) if isinstance(view.get("state") or {}, dict) else None
    if not isinstance(values, dict) or not all(
            isinstance(block, dict) and all(isinstance(entry, dict) for entry in block.values())
            for block in values.values()):
        return "view state is not block -> action -> object"
    return None


def malformed(body: Any) -> str | None:
    """What is wrong with a signed body, judged by the shapes Slack sends; ``None`` if nothing.

    Listeners rely on these shapes (a user id, a list of actions, a view with state); checking
    them once here means a hostile but validly signed body is refused with 400 instead of
    raising inside a listener.
    """
    if not isinstance(body, dict):
        return "body is not an object"
    if "command" in body:
        if not (_is_text(body.get("user_id"), required=True) and _is_text(body.get("command"), required=True)):
            return "slash command without user or command"
        if not all(_is_text(body.get(k)) for k in ("text", "channel_id", "response_url", "trigger_id")):
            return "slash command field is not text"
        return None
    kind = body.get("type")
    if not _is_text(kind, required=True):
        return "no payload type"
    if kind in _INTERACTIONS:
        user = body.get("user")
        if not isinstance(user, dict) or not _is_text(user.get("id"), required=True):
            return "interaction without a user id"
        if not all(_is_text(body.get(k)) for k in ("response_url", "trigger_id")):
            return "response_url or trigger_id is not text"
        if not all(body.get(k) is None or isinstance(body.get(k), dict)
                   for k in ("channel", "container", "message", "team", "state")):
            return "channel, container, message, team or state is not an object"
        if body.get("view") is not None and (problem := _view_problem(body["view"])):
            return problem
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not all(
                isinstance(a, dict) and _is_text(a.get("action_id"), required=True) and _is_text(a.get("block_id"))
                and _is_text(a.get("value")) and (a.get("selected_option") is None
                                                  or isinstance(a.get("selected_option"), dict))
                for a in actions):
            return "actions are not a list of {action_id, block_id, value}"
    if kind in ("view_submission", "view_closed") and body.get("view") is None:
        return "view submission without a view"
    if kind == "event_callback" and not (isinstance(body.get("event"), dict)
                                         and _is_text(body["event"].get("type"), required=True)):
        return "event without a type"
    return None


# -- who may send -------------------------------------------------------------------------------

def _ids(*values: Any) -> set[str]:
    return {v for v in values if isinstance(v, str) and v}


def request_teams(body: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Every team id and every enterprise id a Slack request names: (teams, enterprises).

    Commands carry ``team_id`` (and ``enterprise_id`` on Enterprise Grid); events ``team_id``,
    ``enterprise_id`` and ``authorizations``; interactions ``team.id``, ``user.team_id`` and
    ``enterprise.id`` (``team.enterprise_id`` in a view submission). ``team_domain`` is a name,
    not an id, and is not used.
    """
    teams = _ids(body.get("team_id"))
    enterprises = _ids(body.get("enterprise_id"))
    for key, into in (("team", teams), ("enterprise", enterprises)):
        value = body.get(key)
        if isinstance(value, dict):
            into |= _ids(value.get("id"))
            if key == "team":
                enterprises |= _ids(value.get("enterprise_id"))
        else:
            into |= _ids(value)
    user = body.get("user")
    if isinstance(user, dict):
        teams |= _ids(user.get("team_id"))
        enterprises |= _ids(user.get("enterprise_id"))
    authorizations = body.get("authorizations")
    if isinstance(authorizations, list):
        for a in authorizations:
            if isinstance(a, dict):
                teams |= _ids(a.get("team_id"))
                enterprises |= _ids(a.get("enterprise_id"))
    return teams, enterprises


def _shown(ids: Iterable[str]) -> str:
    """Ids for a log line: a hostile body's ids are any text, so few and short."""
    return ",".join(sorted(i[:24] for i in ids)[:4]) or "-"


class TeamGate:
    """The teams (``T…``) and Enterprise Grid organisations (``E…``) whose requests are served.

    A request signed with fwbot's signing secret can come from any workspace the app is
    installed in, not only the one that owns these deployments. The allowed ids come from
    ``FWBOT_ALLOWED_TEAMS``; when it is empty, from ``auth.test`` of the bot token (the installed
    team, or its whole organisation for an org-wide install), learned once at start-up. If
    auth.test cannot be read, nothing is allowed until it can: it is tried again in the
    background, with a growing pause.

    The team decides: every team a request names must be allowed, unless an enterprise it names
    is (an allowed organisation stands for all its workspaces). An enterprise id that is not
    allowed is tolerated only when every team named is itself allowed (a workspace install on
    Enterprise Grid: its requests name their organisation too). A request that names no team
    and no enterprise is refused.
    """

    retry_first_s = 5.0
    retry_max_s = 300.0

    def __init__(self, allowed: Iterable[str] = (), learn: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._teams: frozenset[str] = frozenset()
        self._enterprises: frozenset[str] = frozenset()
        self._timer: threading.Timer | None = None
        self._closed = False
        given = [i.strip() for i in allowed if i and i.strip()]
        ids = [i for i in given if _TEAM_ID.fullmatch(i)]
        if len(ids) < len(given):
            # A domain or a name here would allow nothing and say nothing: say it, and serve only ids.
            log.error("FWBOT_ALLOWED_TEAMS entries %s are not Slack team (T…) or enterprise (E…) ids; "
                      "ignored", _shown(i for i in given if i not in ids))
        if ids:
            self._set(ids)
            log.info("Slack requests are served for %s (FWBOT_ALLOWED_TEAMS)", _shown(ids))
        elif given:
            log.error("no valid id in FWBOT_ALLOWED_TEAMS: every Slack request will be refused")
        elif learn is not None:
            self._learn(learn, self.retry_first_s)
        else:
            log.error("no allowed Slack team: FWBOT_ALLOWED_TEAMS is empty and auth.test is not available; "
                      "every Slack request will be refused")

    @property
    def known(self) -> bool:
        return bool(self._teams or self._enterprises)

    def _set(self, ids: Iterable[str]) -> None:
        ids = set(ids)
        with self._lock:
            self._teams = frozenset(i for i in ids if not i.startswith("E"))
            self._enterprises = frozenset(i for i in ids if i.startswith("E"))

    def _learn(self, learn: Callable[[], Mapping[str, Any]], pause_s: float) -> None:
        try:
            result = learn()
            team, enterprise = result.get("team_id"), result.get("enterprise_id")
            org_wide = bool(result.get("is_enterprise_install"))
            ids = _ids(enterprise) if org_wide else _ids(team)
            if not ids:
                raise ValueError(f"auth.test named no {'enterprise' if org_wide else 'team'} id")
        except Exception as e:  # noqa: BLE001 - any failure: refuse, say why, try again later
            if self._closed:
                return
            log.error("could not learn the installed Slack team from auth.test (%s): every Slack request is "
                      "refused until it answers (trying again in %.0fs); set FWBOT_ALLOWED_TEAMS to not depend "
                      "on it", e, pause_s)
            timer = threading.Timer(pause_s, self._learn, (learn, min(pause_s * 2, self.retry_max_s)))
            timer.daemon = True
            with self._lock:
                if self._closed:
                    return
                self._timer = timer
            timer.start()
            return
        self._set(ids)
        log.info("Slack requests are served for %s (the installed %s, from auth.test)", _shown(ids),
                 "organisation" if org_wide else "team")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def refusal(self, body: Mapping[str, Any]) -> str | None:
        """Why this request's team is not served; ``None`` if it is."""
        with self._lock:
            allowed_teams, allowed_enterprises = self._teams, self._enterprises
        if not (allowed_teams or allowed_enterprises):
            return "no team is allowed yet (auth.test has not answered and FWBOT_ALLOWED_TEAMS is empty)"
        teams, enterprises = request_teams(body)
        if not teams and not enterprises:
            return "the request names no team"
        org_allowed = bool(enterprises & allowed_enterprises)
        teams_allowed = bool(teams) and teams <= allowed_teams
        if not (org_allowed or teams_allowed):
            return f"team {_shown(teams - allowed_teams or teams)} / enterprise {_shown(enterprises)} is not allowed"
        if not teams_allowed and enterprises - allowed_enterprises:
            return f"enterprise {_shown(enterprises - allowed_enterprises)} is not allowed"
        return None


# -- replays and re-deliveries --------------------------------------------------------------------

class ReplayGuard:
    """Remembers the signatures of accepted Slack requests for as long as they could verify.

    Slack signs every request afresh, so the same signature arriving twice is a replay of one
    request (a captured click or command sent again within the 5-minute window), not a second
    decision by a person. Kept in memory: after a restart the one-shot checks of each action
    (status compare-and-set, already-deleted) still stop a replay from acting twice. A copy
    signed afresh (a retry) is caught by the request receipts instead.
    """

    def __init__(self, window_s: float = SIGNATURE_WINDOW_S, clock=time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        # Signatures in the order they came (and so by time), to drop the expired ones from the
        # front at O(1) each: filtering the whole set on every request cost O(requests in the
        # last 5 minutes) per request, a millisecond at a few thousand.
        self._order: deque[tuple[float, str]] = deque()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        """True the first time a signature is offered within the window, False for a replay."""
        now = self._clock()
        with self._lock:
            order = self._order
            while order and now - order[0][0] > self.window_s:
                self._seen.discard(order.popleft()[1])
            if signature in self._seen:
                return False
            self._seen.add(signature)
            order.append((now, signature))
            return True


def receipt_key(body: Mapping[str, Any], raw: bytes) -> str:
    """What stays the same when one request is delivered again: the event id of an event, the
    trigger id of a command or an interaction, else a hash of the body (which holds no timestamp:
    Slack's is in a header)."""
    event_id, trigger_id = body.get("event_id"), body.get("trigger_id")
    if isinstance(event_id, str) and event_id:
        key = "event:" + event_id
    elif isinstance(trigger_id, str) and trigger_id:
        key = "trigger:" + trigger_id
    else:
        return "body:" + hashlib.sha256(raw).hexdigest()
    return key if len(key) <= 200 else key[:8] + hashlib.sha256(key.encode()).hexdigest()


def _refusal(status: int, error: str) -> BoltResponse:
    return BoltResponse(status=status, body=json.dumps({"error": error}),
                        headers={"content-type": ["application/json"]})


# -- HTTP -----------------------------------------------------------------------------------------

class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each bounded by what is left of the handler's current deadline.

    A socket timeout alone bounds each ``recv``, so a client trickling a byte at a time could
    keep a request open indefinitely; a deadline bounds the whole request line and headers, and
    the whole body."""

    def __init__(self, sock: socket.socket, handler: _Handler) -> None:
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._handler.read_deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("read deadline passed")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: BotHTTPServer
    protocol_version = "HTTP/1.1"
    read_deadline = float("inf")

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain file over the socket; reads go through deadlines instead
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet; our own logging says what matters
        log.debug("http %s", fmt % args)

    def handle_one_request(self) -> None:
        # Waiting for the next request on a kept-alive connection: up to the idle limit. Once its
        # first byte is here, the request line and headers get their own limit.
        self.read_deadline = time.monotonic() + self.server.idle_timeout_s
        try:
            if not self.rfile.peek(1):
                self.close_connection = True
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        self.read_deadline = time.monotonic() + self.server.header_timeout_s
        super().handle_one_request()

    def _send(self, status: int, body: bytes | str, content_type: str = "application/json",
              headers: dict[str, Any] | None = None, *, close: bool = False) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.connection.settimeout(self.server.write_timeout_s)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            for item in v if isinstance(v, list) else [v]:
                if k.lower() not in ("content-length", "content-type", "connection"):
                    self.send_header(k, item)
        if close:
            self.send_header("Connection", "close")  # also sets self.close_connection
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, error: str) -> None:
        """Answer and close: what is left of this request on the wire is never read as another."""
        self.close_connection = True
        if self.server.metrics is not None:
            self.server.metrics.requests.labels(kind="slack", status=str(status)).inc()
        self._send(status, json.dumps({"error": error}), close=True)

    def _framing(self) -> tuple[int, tuple[int, str] | None]:
        """The body's length, or why the request's framing is refused (status, error)."""
        if self.headers.get_all("Transfer-Encoding"):
            # Slack always sends Content-Length; a chunked body's end is not ours to find.
            return 0, (411, "Transfer-Encoding is not accepted; send Content-Length")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return 0, (411, "length required")
        if len(lengths) > 1:
            return 0, (400, "bad content length")
        value = lengths[0].strip(" \t")
        if not _CONTENT_LENGTH.fullmatch(value):  # int() also takes "+5", "1_0", " 5", "５"
            return 0, (400, "bad content length")
        length = int(value)
        if length > MAX_BODY_BYTES:
            return 0, (413, "body too large")
        return length, None

    def handle_expect_100(self) -> bool:
        # "Expect: 100-continue": refuse a body we will not read before the client sends it.
        if self.command == "POST":
            _, refusal = self._framing()
            if refusal is not None:
                self._refuse(*refusal)
                return False
        return super().handle_expect_100()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        # A GET with a body: answered, and the connection closed rather than the body read as a request.
        close = bool(self.headers.get_all("Transfer-Encoding")) or (self.headers.get("Content-Length") or "0") != "0"
        if path == "/healthz":
            ok, detail = self.server.health()
            self._send(200 if ok else 503, json.dumps(detail), close=close)
        elif path == "/metrics":
            self._send(200, generate_latest(self.server.metrics.registry), CONTENT_TYPE_LATEST, close=close)
        else:
            self._send(404, json.dumps({"error": "not found"}), close=close)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length, refusal = self._framing()
        if refusal is not None:
            self._refuse(*refusal)
            return
        if parts.path != "/slack/events":
            self._refuse(404, "not found")
            return
        # The body, whole, before the request counts as being answered: a client that sends it
        # slowly (or never) must not hold back the work that follows other requests' acks.
        self.read_deadline = time.monotonic() + self.server.body_timeout_s
        try:
            raw = self.rfile.read(length) if length else b""
        except TimeoutError:
            log.info("closed a Slack connection whose body did not arrive within %ss", self.server.body_timeout_s)
            self._refuse(408, "request timeout")
            return
        if len(raw) < length:  # the client went away mid-body
            self.close_connection = True
            return
        services = self.server.services
        with services.acks.acking() if services is not None else contextlib.nullcontext():
            headers = {k.lower(): [v] for k, v in self.headers.items()}
            resp = self.server.dispatch(raw, parts.query, headers)
            if self.server.metrics is not None:
                self.server.metrics.requests.labels(kind="slack", status=str(resp.status)).inc()
            content_type = (resp.headers.get("content-type") or ["application/json"])[0]
            self._send(resp.status, resp.body or "", content_type, resp.headers)


class BotHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of Slack requests (a channel running
    # /fw at once) overflowed it, and the dropped connections were reset or retried a second later.
    request_queue_size = 128
    # Per connection: waiting for a request on a kept-alive connection, then its request line and
    # headers, then its body, then writing the answer. Slack sends a whole request at once.
    idle_timeout_s = 30.0
    header_timeout_s = 10.0
    body_timeout_s = 10.0
    write_timeout_s = 10.0
    # Connections served at once (a thread each); more are answered 503 and closed at once.
    max_connections = 256

    def __init__(self, addr: tuple[str, int], app: App, services: Services | None, metrics: Any,
                 signing_secret: str | None = None, *, allowed_teams: Iterable[str] | None = None,
                 auth_test: Callable[[], Mapping[str, Any]] | None = None) -> None:
        super().__init__(addr, _Handler)
        self.app = app
        self.services = services
        self.metrics = metrics
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.replays = ReplayGuard()
        self._open = 0
        self._open_lock = threading.Lock()
        if allowed_teams is None:
            allowed_teams = services.settings.allowed_teams if services is not None else ()
        self.teams = TeamGate(allowed_teams, learn=auth_test or self._auth_test)
        self.receipts = None
        if services is not None:
            from storage.receipts import Receipts

            self.receipts = Receipts(services.store.db)

    def _auth_test(self) -> Mapping[str, Any]:
        """The bot token's auth.test: the answer Bolt got when it built the app, else a fresh call."""
        for middleware in getattr(self.app, "_middleware_list", None) or ():
            result = getattr(middleware, "auth_test_result", None)
            if result is not None:
                return result
        return self.app.client.auth_test()

    # -- connections ---------------------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            full = self._open >= self.max_connections
            if not full:
                self._open += 1
        if full:
            log.warning("refused a connection: %d already open", self.max_connections)
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._closed_one()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed_one()

    def _closed_one(self) -> None:
        with self._open_lock:
            self._open -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed: a client gone or too slow is routine; anything else is a bug."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # reset, broken pipe, timed out
            log.debug("Slack connection from %s ended: %r", client_address, error)
        else:
            log.error("serving a connection from %s failed", client_address, exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        self.teams.close()
        if self.receipts is not None:
            self.receipts.close()

    # -- requests ------------------------------------------------------------------------------
    def dispatch(self, raw: bytes, query: str, headers: dict[str, list[str]]) -> BoltResponse:
        """Verify, de-duplicate and parse a Slack request before Bolt sees it.

        The signature is checked on the raw bytes first, so nothing of an unsigned body is ever
        parsed (``ssl_check`` aside, as Bolt does); a signed body that is not what Slack sends is
        answered 400, never a crash.
        """
        content_type = extract_content_type(headers)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and is_ssl_check(text, content_type):
            return BoltResponse(status=200, body="")  # Bolt's SslCheck: before verification
        timestamp = (headers.get("x-slack-request-timestamp") or [""])[0]
        signature = (headers.get("x-slack-signature") or [""])[0]
        try:
            valid = self.verifier is not None and self.verifier.is_valid(raw, timestamp, signature)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            log.info("refused a Slack request with a missing, wrong or expired signature")
            return _refusal(401, "invalid request")
        if not self.replays.first_time(signature):
            log.warning("refused a replayed Slack request (same signature seen within %ss)", SIGNATURE_WINDOW_S)
            return _refusal(401, "replayed request")
        try:
            if text is None:
                raise ValueError("body is not UTF-8")
            # Bounded nesting for everything Bolt parses below, too: it reads the same JSON (the
            # whole body, or the form's payload field) on the same content type.
            body = slack_body(text, content_type)
            request = BoltRequest(body=text, query=query, headers=headers)
            if body != request.body:
                # Bolt takes any form body containing the word "payload" (a channel, a user name,
                # `/fw get payload-api`) for an interaction and drops every field; use the real one.
                request.body = body
                request.context = build_context(BoltContext({}), body)
            problem = malformed(request.body)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
            problem = f"unreadable body ({e.__class__.__name__})"
        if problem:
            log.warning("refused a signed Slack request that is not well formed: %s", problem)
            return _refusal(400, "malformed request")
        if body.get("type") == "url_verification":
            # Bolt's UrlVerification (after verification, before authorization: it names no team).
            return BoltResponse(status=200, body={"challenge": body.get("challenge")})
        refused = self.teams.refusal(body)
        if refused:
            log.warning("refused a signed Slack request from outside the allowed teams: %s", refused)
            return _refusal(403, "team not allowed")
        if self.receipts is not None:
            key = receipt_key(body, raw)
            if not self.receipts.first_time(key):
                retry = (headers.get("x-slack-retry-num") or ["-"])[0][:8]
                reason = (headers.get("x-slack-retry-reason") or ["-"])[0][:40]
                log.info("answered a re-delivered Slack request without running it again (%s; retry %s, %s)",
                         key[:80], retry, reason)
                return BoltResponse(status=200, body="")
        try:
            return self.app.dispatch(request)
        except Exception:  # noqa: BLE001 - a bug must not drop the connection without an answer
            log.exception("dispatching a Slack request failed")
            return _refusal(500, "internal error")

    def health(self) -> tuple[bool, dict]:
        """The database answers; and, with replicas, this one's role (``leader`` or ``follower``)
        and the leader the database shows."""
        leadership = self.services.leadership
        try:
            self.services.store.db.scalar("SELECT 1")
            role = leadership.status() if leadership is not None else {}
        except Exception as e:  # noqa: BLE001 - reported, not raised
            return False, {"ok": False, "db": str(e)}
        return True, {"ok": True, "simulated_fireworks": self.services.simulated, **role}
