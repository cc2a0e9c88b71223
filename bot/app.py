"""Assembling fwbot: the Bolt app, its HTTP front door, the scheduler, and ``fwbot run``."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from slack_bolt import App
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.fireworks import FireworksGateway
from bot.services import Services
from bot.slack import Poster, make_web_client
from storage.db import Database
from storage.store import Store

log = logging.getLogger("fwbot")

SIMULATED_KEY = "sim-key"
SIGNATURE_WINDOW_S = 300  # Slack's (and Bolt's) tolerance for a request's timestamp
MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; anything bigger is not Slack
SIMULATED_ACCOUNT = "demo"


class Metrics:
    """fwbot's own Prometheus metrics (served at ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fwbot_slack_requests_total", "Slack requests by kind and status",
                                ["kind", "status"], registry=self.registry)
        self.operations = Counter("fwbot_operations_total", "Deployment operations by verb and result",
                                  ["verb", "result"], registry=self.registry)
        self.sync_seconds = Histogram("fwbot_sync_seconds", "Reconcile loop duration", registry=self.registry)
        self.job_runs = Counter("fwbot_job_runs_total", "Scheduled job runs by job and result",
                                ["job", "result"], registry=self.registry)


def build_app(services: Services, *, signing_secret: str, token_verification: bool = True,
              metrics: Metrics | None = None) -> App:
    """The Bolt app with every listener registered."""
    from handlers import register

    app = App(
        client=services.poster.client,
        signing_secret=signing_secret,
        token_verification_enabled=token_verification,
        # Bolt's default pool is 5 threads; slow Fireworks calls must not starve the acks.
        # (process_before_response=True, which answers without Bolt's 10 ms ack polling, made
        # acks under a 50-sender burst slower, not faster, on 2 CPUs: bench/README.md.)
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="fwbot-listener"),
        raise_error_for_unhandled_request=False,
    )
    register(app, services, metrics or Metrics())
    return app


class _Handler(BaseHTTPRequestHandler):
    server: BotHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet; our own logging says what matters
        log.debug("http %s", fmt % args)

    def _send(self, status: int, body: bytes | str, content_type: str = "application/json",
              headers: dict[str, Any] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            for item in v if isinstance(v, list) else [v]:
                if k.lower() not in ("content-length", "content-type"):
                    self.send_header(k, item)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            ok, detail = self.server.health()
            self._send(200 if ok else 503, json.dumps(detail))
        elif path == "/metrics":
            self._send(200, generate_latest(self.server.metrics.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, json.dumps({"error": "not found"}))

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/slack/events":
            self._send(404, json.dumps({"error": "not found"}))
            return
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._send(413 if length > 0 else 400, json.dumps({"error": "bad content length"}))
            return
        services = self.server.services
        with services.acks.acking() if services is not None else contextlib.nullcontext():
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): [v] for k, v in self.headers.items()}
            resp = self.server.dispatch(raw, parts.query, headers)
            self.server.metrics.requests.labels(kind="slack", status=str(resp.status)).inc()
            content_type = (resp.headers.get("content-type") or ["application/json"])[0]
            self._send(resp.status, resp.body or "", content_type, resp.headers)


def slack_body(text: str, content_type: str | None) -> Any:
    """A request body as Slack means it: JSON (events), or a form whose ``payload`` field, when
    the form has one, holds the interaction's JSON."""
    if content_type == "application/json" or text.startswith("{"):
        return json.loads(text)
    fields = dict(parse_qsl(text, keep_blank_values=True))
    return json.loads(fields["payload"]) if "payload" in fields else fields


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


class ReplayGuard:
    """Remembers the signatures of accepted Slack requests for as long as they could verify.

    Slack signs every request afresh, so the same signature arriving twice is a replay of one
    request (a captured click or command sent again within the 5-minute window), not a second
    decision by a person. Kept in memory: after a restart the one-shot checks of each action
    (status compare-and-set, already-deleted) still stop a replay from acting twice.
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


def _refusal(status: int, error: str) -> BoltResponse:
    return BoltResponse(status=status, body=json.dumps({"error": error}),
                        headers={"content-type": ["application/json"]})


class BotHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of Slack requests (a channel running
    # /fw at once) overflowed it, and the dropped connections were reset or retried a second later.
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], app: App, services: Services, metrics: Metrics,
                 signing_secret: str | None = None) -> None:
        super().__init__(addr, _Handler)
        self.app = app
        self.services = services
        self.metrics = metrics
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.replays = ReplayGuard()

    def dispatch(self, raw: bytes, query: str, headers: dict[str, list[str]]) -> BoltResponse:
        """Verify, de-duplicate and parse a Slack request before Bolt sees it.

        The signature is checked on the raw bytes first, so nothing of an unsigned body is ever
        parsed; a signed body that is not what Slack sends is answered 400, never a crash.
        """
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
            text = raw.decode("utf-8")
            request = BoltRequest(body=text, query=query, headers=headers)
            body = slack_body(text, request.content_type)
            if body != request.body:
                # Bolt takes any form body containing the word "payload" (a channel, a user name,
                # `/fw get payload-api`) for an interaction and drops every field; use the real one.
                request.body = body
                request.context = build_context(BoltContext({}), body)
            problem = malformed(request.body)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            problem = f"unreadable body ({e.__class__.__name__})"
        if problem:
            log.warning("refused a signed Slack request that is not well formed: %s", problem)
            return _refusal(400, "malformed request")
        try:
            return self.app.dispatch(request)
        except Exception:  # noqa: BLE001 - a bug must not drop the connection without an answer
            log.exception("dispatching a Slack request failed")
            return _refusal(500, "internal error")

    def health(self) -> tuple[bool, dict]:
        try:
            self.services.store.db.scalar("SELECT 1")
        except Exception as e:  # noqa: BLE001 - reported, not raised
            return False, {"ok": False, "db": str(e)}
        return True, {"ok": True, "simulated_fireworks": self.services.simulated}


@dataclass
class Bot:
    """A running fwbot: services, Bolt app, HTTP server, scheduler."""

    settings: Settings
    services: Services
    app: App
    metrics: Metrics
    http: BotHTTPServer | None = None
    scheduler: Any = None
    simulator: Any = None
    socket_mode: Any = None
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.http is not None
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}"

    def serve_http(self, host: str, port: int) -> str:
        secret = self.settings.slack_signing_secret
        self.http = BotHTTPServer((host, port), self.app, self.services, self.metrics,
                                  signing_secret=secret.get_secret_value() if secret else None)
        t = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.2},
                             name="fwbot-http", daemon=True)
        t.start()
        self._threads.append(t)
        return self.url

    def connect_socket_mode(self, app_token: str) -> None:
        """Receive Slack's requests over a Socket Mode WebSocket (no public URL needed)."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self.socket_mode = SocketModeHandler(self.app, app_token)
        self.socket_mode.connect()

    def stop(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.close()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        # Work already acked finishes (and reports back) before the clients and database close.
        self.app.listener_runner.listener_executor.shutdown(wait=True)
        self.services.work.shutdown(wait=True)
        self.services.gateway.close()
        if self.simulator is not None:
            self.simulator.stop()
        self.services.store.db.close()


def start_embedded_simulator(clock: Clock | None = None, **overrides: Any):
    """The in-process Fireworks simulator used when no FIREWORKS_API_KEY is set."""
    from sims.fireworks import FireworksSimulator, SimConfig

    cfg = SimConfig(account_id=SIMULATED_ACCOUNT, api_key=SIMULATED_KEY, **overrides)
    sim = FireworksSimulator(cfg, clock=clock)
    sim.start(host="127.0.0.1", port=0)
    return sim


def create_bot(settings: Settings, *, clock: Clock | None = None, simulator: Any = None,
               token_verification: bool = True, with_scheduler: bool = True) -> Bot:
    """Wire everything from settings. With no Fireworks key, an embedded simulator stands in."""
    clock = clock or SystemClock()
    db = Database(settings.db)
    applied = db.migrate()
    if applied:
        log.info("applied database migrations %s to %s", applied, settings.db)
    store = Store(db)
    if settings.simulated:
        if simulator is None:
            simulator = start_embedded_simulator()
        log.warning("FIREWORKS_API_KEY is not set: using the embedded Fireworks simulator at %s "
                    "(simulated Fireworks; nothing here costs money)", simulator.url)
        gateway = FireworksGateway(api_key=SIMULATED_KEY, account_id=SIMULATED_ACCOUNT, base_url=simulator.url)
    else:
        assert settings.fireworks_api_key is not None
        gateway = FireworksGateway(
            api_key=settings.fireworks_api_key.get_secret_value(),
            account_id=settings.fireworks_account_id,
            base_url=settings.fireworks_base_url,
        )
    if settings.slack_bot_token is None:
        raise SystemExit("SLACK_BOT_TOKEN is not set (see README: Running in your workspace)")
    client = make_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    services = Services(settings=settings, store=store, gateway=gateway, clock=clock, poster=Poster(client),
                        simulated=settings.simulated)
    metrics = Metrics()
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise SystemExit("SLACK_SIGNING_SECRET is not set (needed for HTTP mode)")
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "unused"
    from bot.reconcile import recover_interrupted_creates

    recover_interrupted_creates(services)  # before serving: nothing of ours can be in flight yet
    app = build_app(services, signing_secret=secret, token_verification=token_verification, metrics=metrics)
    bot = Bot(settings=settings, services=services, app=app, metrics=metrics, simulator=simulator)
    if with_scheduler:
        from bot.scheduler import start_scheduler

        bot.scheduler = start_scheduler(services, metrics)
    return bot


def quiet_libraries() -> None:
    """Per-request logs of the HTTP client and scheduler drown what matters."""
    for name in ("httpx", "apscheduler", "slack_bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)


def settle_heap() -> None:
    """Once a serving process has built its bot: take everything alive now out of the cyclic
    garbage collector's reach (``gc.freeze``). Otherwise every full collection walks the whole
    start-up heap (Bolt, the SDK, pydantic models) and stalls every thread for tens of
    milliseconds, in the middle of a burst of acks; that was most of /fw's slowest acks.

    Called by the processes that serve (``fwbot run``, ``fwbot dev``), not by :func:`create_bot`:
    a test process builds hundreds of bots, and what it froze would never be collected. No
    collection first: it would hold every thread for as long as the stall it prevents, as the
    process starts serving; the few start-up cycles that are already garbage stay, once.
    """
    gc.freeze()


def run(host: str | None = None, port: int | None = None) -> int:
    """``fwbot run``: Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP."""
    logging.basicConfig(level=os.environ.get("FWBOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    settings = Settings()
    bot = create_bot(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    url = bot.serve_http(host or settings.host, port if port is not None else settings.port)
    settle_heap()
    if settings.slack_app_token is not None:
        bot.connect_socket_mode(settings.slack_app_token.get_secret_value())
        log.info("fwbot connected over Socket Mode; health and metrics at %s", url)
    else:
        log.info("fwbot listening on %s (Slack requests at /slack/events)", url)
    print(f"fwbot listening on {url}", flush=True)
    stop.wait()
    bot.stop()
    return 0
