"""Assembling fwbot: the Bolt app, its HTTP front door, the scheduler, and ``fwbot run``."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App
from slack_bolt.response import BoltResponse

from bot.adapters.fireworks import FireworksGateway
from bot.adapters.metrics import Metrics
from bot.adapters.outbox import Outbox
from bot.adapters.slack import Poster, make_web_client
from bot.app.http import (  # noqa: F401 - the front door's names, as other code imports them from here
    MAX_BODY_BYTES,
    SIGNATURE_WINDOW_S,
    BotHTTPServer,
    ReplayGuard,
    TeamGate,
    malformed,
    slack_body,
)
from bot.core.clock import Clock, SystemClock
from bot.core.policy import PolicyError
from bot.core.settings import Settings
from bot.jobs import costs as cost_jobs
from bot.jobs.leadership import Leadership
from bot.jobs.scheduler import start_scheduler
from bot.services import approvals, changes, lifecycle, tracking
from bot.services.container import Services
from bot.services.policy import policy_book
from bot.services.tracking import recover_interrupted_creates
from handlers import register
from storage.db import Database
from storage.store import Store

log = logging.getLogger("fwbot")

SIMULATED_KEY = "sim-key"
SIMULATED_ACCOUNT = "demo"


def build_app(services: Services, *, signing_secret: str, token_verification: bool = True,
              metrics: Metrics | None = None) -> App:
    """The Bolt app with every listener registered."""
    app = App(
        client=services.poster.client,
        signing_secret=signing_secret,
        token_verification_enabled=token_verification,
        # Bolt's default pool is 5 threads; slow Fireworks calls must not starve the acks.
        # (process_before_response=True measured no better: bench/README.md.)
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="fwbot-listener"),
        raise_error_for_unhandled_request=False,
    )
    register(app, services, metrics or Metrics())
    return app


@dataclass
class Bot:
    """A running fwbot: services, Bolt app, HTTP server, scheduler (and its part in the leader election)."""

    settings: Settings
    services: Services
    app: App
    metrics: Metrics
    http: BotHTTPServer | None = None
    scheduler: Any = None
    simulator: Any = None
    socket_mode: Any = None
    leadership: Leadership | None = None
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

        # Socket Mode requests do not come through the HTTP front door: the same team check runs
        # as Bolt middleware, before any listener.
        gate = TeamGate(self.settings.allowed_teams, learn=self.app.client.auth_test)

        def allowed_team(body, next) -> BoltResponse | None:  # noqa: A002 - Bolt's name
            refusal = gate.refusal(body) if isinstance(body, dict) and not body.get("ssl_check") else None
            if refusal:
                log.warning("refused a Socket Mode request: %s", refusal)
                return BoltResponse(status=403, body="")
            return next()

        self.app.use(allowed_team)
        self.socket_mode = SocketModeHandler(self.app, app_token)
        self.socket_mode.connect()

    def start_scheduling(self) -> None:
        """Join the leader election and start the scheduler. Every replica schedules the jobs;
        only the one holding the leader lease runs them and delivers the outbox's due posts."""
        services = self.services
        self.leadership = Leadership(services.store, services.clock, replica=services.replica,
                                     ttl_s=self.settings.leader_lease_s, metrics=self.metrics)
        services.leadership = self.leadership
        services.outbox.leader = self.leadership.fence
        self.leadership.start()
        self.leadership.on_gain(services.outbox.kick)
        self.scheduler = start_scheduler(services, self.metrics, self.leadership)

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
        self.services.outbox.stop()
        if self.leadership is not None:  # after the work above: the next leader takes over at once
            self.leadership.stop()
        self.services.gateway.close()
        if self.simulator is not None:
            self.simulator.stop()
        self.services.store.db.close()


def build_outbox(services: Services, metrics: Metrics) -> Outbox:
    """The outbox with every kind of effect the bot posts (see bot/adapters/outbox.py)."""
    outbox = Outbox(services, metrics)
    for module in (lifecycle, approvals, changes, cost_jobs, tracking):
        for name, kind in module.effect_kinds().items():
            outbox.register(name, kind)
    return outbox


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
    db = Database(settings.database)
    applied = db.migrate()
    if applied:
        log.info("applied database migrations %s to %s", applied, db.path)
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
    services.outbox = build_outbox(services, metrics)
    try:  # read now: a bad policy file stops the start, with its line and reason
        policy_book(services)
    except PolicyError as e:
        raise SystemExit(f"fwbot will not start with this policy file:\n{e.message}") from None
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise SystemExit("SLACK_SIGNING_SECRET is not set (needed for HTTP mode)")
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "unused"
    recover_interrupted_creates(services)  # before serving: nothing of ours can be in flight yet
    app = build_app(services, signing_secret=secret, token_verification=token_verification, metrics=metrics)
    bot = Bot(settings=settings, services=services, app=app, metrics=metrics, simulator=simulator)
    # Posts a crash left unfinished are looked up in Slack, then finished, before anything new.
    services.outbox.start()
    if with_scheduler:
        bot.start_scheduling()
    return bot


def quiet_libraries() -> None:
    """Per-request logs of the HTTP client and scheduler drown what matters."""
    for name in ("httpx", "apscheduler", "slack_bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)


def settle_heap() -> None:
    """Once a serving process has built its bot: take everything alive now out of the cyclic
    garbage collector's reach (``gc.freeze``), so a full collection, which holds every thread,
    no longer walks the start-up heap (Bolt, the SDK, pydantic models).

    Measured: the longest collection in a 10k-deployment sweep takes 2–5 ms with it, 67–106 ms
    without (bench/README.md).

    Called by the processes that serve (``fwbot run``, ``fwbot dev``), not by :func:`create_bot`:
    a test process builds hundreds of bots, and what it froze would never be collected. No
    collection first: that would be the stall itself, as the process starts serving; the few
    start-up cycles already garbage stay, once.
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
