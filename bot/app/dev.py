"""``fwbot dev``: the Fireworks simulator, a local Slack workspace in the browser, and the bot.

Nothing leaves the machine and no credentials are needed. Windows are short so the whole
lifecycle (READY, idle warnings, scale to zero) is visible within minutes. A fresh start also
brings a demo deployment with two days of simulated history (so cost summaries, the weekly
digest's chart and ``/fw cost`` have something to show) and one deployment made "outside fwbot"
(so ``#fw-alerts`` shows an adoption offer). The browser tests start exactly this wiring
(``start``) on free ports.

With ``--db FILE`` the simulated Fireworks and the workspace keep their state beside the file
(``FILE.fireworks.json``, ``FILE.slack.json``), so a restart finds the deployments and messages
fwbot's records refer to.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app.wiring import SIMULATED_ACCOUNT, SIMULATED_KEY, Bot, create_bot, quiet_libraries, settle_heap
from bot.core.settings import Settings
from bot.services.deployments import Operations
from bot.services.tracking import ensure_tracking
from bot.ui import deployments as ui
from storage.db import Database, file_problem
from storage.store import Store

log = logging.getLogger("fwbot.dev")

DEV_SIGNING_SECRET = "fwbot-dev-signing-secret"
DEV_BOT_TOKEN = "xoxb-fwbot-dev"
DEV_DB = Path(".fwbot-dev") / "fwbot.db"
MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
# The team policy the local workspace starts with (FWBOT_POLICY_FILE names another).
DEV_POLICY = Path(__file__).resolve().parents[2] / "examples" / "local-policy.toml"

DEV_USERS = [
    # id, handle, real name, timezone, Slack admin
    ("U0DEV", "dana", "Dana Developer", "Europe/Berlin", False),
    ("U0APPROVER", "avi", "Avi Approver", "America/New_York", False),
    ("U0ADMIN", "ada", "Ada Admin", "UTC", True),
]
DEV_CHANNELS = [("C0MLPLAT", "ml-platform"), ("C0ALERTS", "fw-alerts"), ("C0APPROVALS", "fw-approvals"),
                ("C0SANDBOX", "sandbox")]
HOME_CHANNEL = "C0MLPLAT"
ALERT_CHANNEL = "C0ALERTS"

# Short windows so a newcomer sees the lifecycle in minutes.
DEV_ENV = {
    "FWBOT_SYNC_INTERVAL": "5s",
    "FWBOT_METRICS_INTERVAL": "10s",
    "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "60s",
    "FWBOT_WARN_BEFORE_DELETE": "2m,30s",
    "FWBOT_IDLE_PAYING_AFTER": "3m",
    "FWBOT_ADMINS": "U0ADMIN",
    "FWBOT_APPROVERS": "U0APPROVER",
    "FWBOT_APPROVAL_CHANNEL": "C0APPROVALS",
    "FWBOT_ALERT_CHANNEL": ALERT_CHANNEL,
    # Cost summaries every 10 minutes instead of Monday 09:00, so a session sees them.
    "FWBOT_COST_SUMMARY_CRON": "*/10 * * * *",
    "FWBOT_POLICY_FILE": str(DEV_POLICY),
}

# The simulated account's GPU quota (``fwbot sim --quota`` syntax): 16 GPUs of each accelerator
# type, e.g. 16 H100s, of which the demo holds 3; enough to try things, small enough to meet.
DEV_QUOTA = "*=16"

# The demo deployment: made by fwbot for dana, with two days of simulated history.
DEMO_ID = "demo-llama-8b"
DEMO_MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
DEMO_ACCELERATOR = "NVIDIA_H100_80GB"
# (day before today, local time, replicas, serving): change points of the replica count and of
# the traffic; each holds until the next one.
DEMO_HISTORY = [
    (2, "00:00", 1, False),
    (2, "09:00", 2, True),
    (2, "12:30", 2, False),
    (2, "13:30", 2, True),
    (2, "18:00", 1, False),
    (1, "10:00", 1, True),
    (1, "11:00", 2, True),
    (1, "16:00", 1, False),
]
# The deployment made outside fwbot (as with firectl): nobody owns it, so fwbot offers it for
# adoption in the alert channel.
OUTSIDE_ID = "firectl-experiment"
OUTSIDE_MODEL = "accounts/fireworks/models/qwen3-8b"


def welcome(today: date) -> str:
    d2 = today - timedelta(days=2)
    return (
        "*Welcome to fwbot's local workspace.* Slack and Fireworks are simulated here; nothing costs money.\n"
        "• Type `/fw help`, or `/fw deploy` for the form with a live cost.\n"
        "• `/fw deploy llama-v3p1-8b-instruct --scale-to-zero-window 2m` goes READY in seconds and gets an "
        "idle warning about a minute later, with a *Keep warm* button.\n"
        "• Deploys above $20/h (e.g. `--max-replica-count 4` on H100) wait for an approver: switch to "
        "*avi* at the top right and approve in <#C0APPROVALS>.\n"
        "• `/fw policy` shows the team's guardrails (`examples/local-policy.toml`; edit it and fwbot reads it "
        "again): `--max-replica-count 6` is refused, naming the rule; *ada* (an admin, in a group with a looser "
        "rule) may, and can `--override \"reason\"` the rest. `/fw quota` shows GPUs against the quotas. In "
        "<#C0SANDBOX> deployments are small, need an idle policy, and are retired after 15 minutes unless "
        "renewed from the warning; `/fw schedule <id> --down HH:MM` scales one to zero at a time of your "
        "choosing.\n"
        f"• `{DEMO_ID}` comes with two days of simulated history: `/fw cost {d2}..{today}` shows it day by "
        "day, a cost summary arrives here every 10 minutes, and your weekly digest with its chart is in "
        "your DM with fwbot.\n"
        f"• <#{ALERT_CHANNEL}> offers `{OUTSIDE_ID}` (made outside fwbot) for adoption "
        f"(`/fw adopt {OUTSIDE_ID}`), and gets what no other place would take: try `/archive` in a channel "
        "(`/unarchive` brings it back).\n"
        f"• As *ada* (an admin): `/fw budget #ml-platform 500`, `/fw owner {DEMO_ID} @avi`; "
        "`#channel` and `@user` become mentions as in Slack."
    )


def manifest_commands(path: Path = MANIFEST) -> dict[str, bool]:
    """The slash commands ``manifest.yml`` declares, with their ``should_escape``."""
    commands: dict[str, bool] = {}
    current: str | None = None
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {"/fw": True}
    for line in lines:
        m = re.match(r"^\s*-\s*command:\s*(\S+)", line)
        if m:
            current = m.group(1).strip("'\"")
            commands[current] = False
            continue
        m = re.match(r"^\s*should_escape:\s*(\S+)", line)
        if m and current:
            commands[current] = m.group(1).lower() == "true"
    return commands


def state_files(db: Path) -> tuple[Path, Path]:
    """Where the simulated Fireworks and the workspace keep their state beside ``--db FILE``."""
    return Path(f"{db}.fireworks.json"), Path(f"{db}.slack.json")


@dataclass
class DevStack:
    """The three pieces of a running ``fwbot dev`` and the workspace URL to open."""

    sim: Any
    ws: Any
    bot: Bot
    url: str

    def stop(self) -> None:
        self.bot.stop()  # also stops the simulator it was given
        self.ws.stop()


def start(host: str = "127.0.0.1", port: int = 8700, db: str | Path | None = None, *,
          env: dict[str, str] | None = None, create_seconds: float = 8.0, keep_state: bool = False,
          demo: bool = True, quota: str | None = None) -> DevStack:
    """Start the simulator, the Slack stand-in (seeded) and the bot with its scheduler.

    ``env`` overrides the dev settings (``FWBOT_*``); port 0 picks a free port. ``keep_state``:
    the simulator and the workspace read and write their state beside ``db`` (:func:`state_files`).
    ``demo``: on a fresh start, seed the demo deployments (:func:`seed_demo`). ``quota``: the
    simulated account's GPU quota as ``fwbot sim --quota`` takes it (``None``: no limit; ``fwbot
    dev`` passes :data:`DEV_QUOTA` unless told otherwise).
    """
    from sims.fireworks import FireworksSimulator, SimConfig
    from sims.fireworks.__main__ import parse_quota
    from sims.slack import SlackWorkspace
    from sims.slack.model import SLACKBOT_USER_ID

    db_path = Path(db or DEV_DB)
    sim_state, ws_state = state_files(db_path) if keep_state else (None, None)
    gpu_quota, default_quota = parse_quota(quota)
    sim = FireworksSimulator(SimConfig(account_id=SIMULATED_ACCOUNT, api_key=SIMULATED_KEY, relaxed=True,
                                       create_seconds=create_seconds, auto_delete_after=1800.0,
                                       state_file=str(sim_state) if sim_state else None,
                                       gpu_quota=gpu_quota, default_gpu_quota=default_quota))
    sim.start(host="127.0.0.1", port=0)
    try:
        ws = SlackWorkspace(signing_secret=DEV_SIGNING_SECRET, bot_token=DEV_BOT_TOKEN, team_name="fwbot dev",
                            state_file=ws_state)
        url = ws.start(host=host, port=port)
    except BaseException:
        sim.stop()
        raise
    for command, should_escape in manifest_commands().items():
        ws.register_command(command, should_escape=should_escape)
    fresh_workspace = not ws.restored
    known_users, known_channels = {u.id for u in ws.users}, {c.id for c in ws.channels}
    members = [u[0] for u in DEV_USERS]
    for uid, handle, real, tz, admin in DEV_USERS:
        if uid not in known_users:
            ws.add_user(uid, handle, real_name=real, tz=tz, is_admin=admin)
    for cid, name in DEV_CHANNELS:
        if cid not in known_channels:
            ws.add_channel(cid, name, members=members)
    if fresh_workspace:
        ws.add_usergroup("S0APPROVERS", "approvers", users=["U0APPROVER"])
        ws.add_usergroup("S0ADMINS", "admins", users=["U0ADMIN"])

    settings_env = {**DEV_ENV, **(env or {})}
    settings = Settings(
        _env_file=None,
        # Credentials for the real services in the shell never reach dev mode: nothing leaves the machine.
        FIREWORKS_API_KEY=None,
        FIREWORKS_ACCOUNT_ID=None,
        FIREWORKS_BASE_URL=None,
        SLACK_APP_TOKEN=None,
        SLACK_BOT_TOKEN=DEV_BOT_TOKEN,
        SLACK_SIGNING_SECRET=DEV_SIGNING_SECRET,
        SLACK_API_URL=ws.api_url,
        FWBOT_DB=str(db_path),
        **{k: v for k, v in settings_env.items() if k != "FWBOT_DB"},
    )
    try:
        # The scheduler starts once the demo is seeded: its first sync must find it fwbot's own.
        bot = create_bot(settings, simulator=sim, with_scheduler=False)
        bot_url = bot.serve_http("127.0.0.1", 0)
    except BaseException:
        ws.stop()
        sim.stop()
        raise
    ws.events_url = f"{bot_url}/slack/events"
    try:
        if fresh_workspace:
            ws.add_message(HOME_CHANNEL, SLACKBOT_USER_ID,
                           text=welcome(bot.services.clock.now().astimezone(settings.tz).date()))
        if demo and not bot.services.store.deployments(include_gone=True) and not _sim_has_deployments(sim):
            seed_demo(bot.services, sim)
        bot.start_scheduling()
    except BaseException:
        bot.stop()
        ws.stop()
        raise
    return DevStack(sim=sim, ws=ws, bot=bot, url=url)


def _sim_has_deployments(sim: Any) -> bool:
    with sim.state.lock:
        return bool(sim.state.deployments)


def _local(day: date, hhmm: str, tz) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def seed_demo(services: Any, sim: Any) -> None:
    """A demo deployment fwbot made for dana two days ago, and one made outside fwbot.

    The demo's history (replica and traffic change points) goes into fwbot's database and the
    same replica timeline into the simulator's billing, so ``/fw cost`` and Fireworks'
    ``billingUsage`` agree about it. It keeps one replica warm (min 1), so it costs money now
    and fwbot soon reports it idle but paying.
    """
    store, gateway, now = services.store, services.gateway, services.clock.now()
    tz = services.settings.tz
    today = now.astimezone(tz).date()
    points = [(_local(today - timedelta(days=back), hhmm, tz), replicas, serving)
              for back, hhmm, replicas, serving in DEMO_HISTORY]
    started = points[0][0]
    store.claim_deployment(DEMO_ID, gateway.deployment_name(DEMO_ID), owner=DEV_USERS[0][0], channel=HOME_CHANNEL,
                           now=started, created_by_bot=True)
    for at, replicas, serving in points:
        store.record_replicas(DEMO_ID, at, replicas, DEMO_ACCELERATOR, 1)
        store.record_traffic(DEMO_ID, at, 1.0 if serving else 0.0)
    wire = gateway.create_deployment(DEMO_ID, {
        "base_model": DEMO_MODEL, "display_name": "demo: two days of simulated history",
        "min_replica_count": 1, "max_replica_count": 2, "accelerator_type": DEMO_ACCELERATOR,
        "accelerator_count": 1})
    with sim.state.lock:
        ledger = sim.state.ledgers.get(wire["name"])
        if ledger is not None:
            seeded = [[at.timestamp(), replicas, DEMO_ACCELERATOR, 1] for at, replicas, _ in points]
            ledger.points = seeded + [p for p in ledger.points if p[0] > seeded[-1][0]]
            sim.state.dirty = True
    _, record = Operations(services).mirror(wire, observed_at=now)
    store.audit(actor=DEV_USERS[0][0], action="deploy", result="ok", now=started, deployment_id=DEMO_ID,
                channel=HOME_CHANNEL, detail="seeded by fwbot dev with two days of simulated history")
    record = ensure_tracking(services, record)
    if record.thread_ts:
        services.poster.post(HOME_CHANNEL, ui.plain(
            f":test_tube: `{DEMO_ID}` is a demo: fwbot dev gave it two days of simulated history "
            f"(since {started:%a %d %b %H:%M}), in fwbot's database and in the simulator's billing. It keeps "
            "one replica warm, so fwbot will report it idle but paying.", simulated=True),
            thread_ts=record.thread_ts)
    # Made outside fwbot: straight at the (simulated) Fireworks API, as firectl would.
    gateway.create_deployment(OUTSIDE_ID, {
        "base_model": OUTSIDE_MODEL, "display_name": "made with firectl", "min_replica_count": 0,
        "max_replica_count": 1, "accelerator_type": DEMO_ACCELERATOR, "accelerator_count": 1})
    with sim.state.lock:
        # Made a while ago: READY by the time fwbot first sees it.
        outside = sim.state.deployments.get(OUTSIDE_ID)
        if outside is not None and outside.ready_at is not None:
            outside.ready_at = min(outside.ready_at, sim.now())
            sim.state.advance(sim.now())


def _fresh_default_db() -> Path:
    """The workspace and the simulator live in memory, so the default database starts empty too:
    rows left by an earlier run would name deployments and messages that no longer exist.
    Only called with the database's lock held (:func:`_hold_db`): it never deletes the file of
    a ``fwbot dev`` that is running."""
    for suffix in ("", "-wal", "-shm"):
        try:
            Path(f"{DEV_DB}{suffix}").unlink(missing_ok=True)
        except OSError as e:
            raise file_problem(DEV_DB, e) from e
    return DEV_DB


# The lock this process holds on its database for as long as it lives (closed by the OS at exit).
_held_locks: list[int] = []


def _hold_db(db: Path) -> str | None:
    """Take the database's lock (``<db>.lock`` beside it, ``flock``, held for the process's life).

    ``None`` once held; if another process holds it, what is known of that process (its pid).
    Nothing is deleted or opened before this, so a second ``fwbot dev`` never touches the
    database of the one that is running. The lock file itself is never deleted: a process
    holding a deleted lock file would no longer exclude anyone.
    """
    lock = Path(f"{db}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise file_problem(db, e) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise file_problem(lock, e) from e
        try:
            holder = os.read(fd, 64).decode(errors="replace").strip()
        except OSError:
            holder = ""
        os.close(fd)
        return f"pid {holder}" if holder.isdigit() else "pid unknown"
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held_locks.append(fd)
    return None


def _port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (checked before any file is touched)."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def _port_in_use(host: str, port: int) -> int:
    print(f"fwbot dev: port {port} on {host} is in use (another fwbot dev?); "
          f"try `fwbot dev --port {port + 1}`", file=sys.stderr, flush=True)
    return 1


def main(host: str = "127.0.0.1", port: int = 8700, db: str | None = None, quota: str = DEV_QUOTA) -> int:
    from sims.fireworks.__main__ import parse_quota

    try:
        parse_quota(quota)
    except ValueError as e:
        print(f"fwbot dev: {e}", file=sys.stderr, flush=True)
        return 2
    path = Path(db) if db else DEV_DB
    holder = _hold_db(path)
    if holder is not None:
        print(f"fwbot dev: another fwbot dev is running with {path} ({holder}); "
              "stop it or use --db/--port", file=sys.stderr, flush=True)
        return 1
    if _port_taken(host, port):
        return _port_in_use(host, port)
    if db is None:
        _fresh_default_db()  # ours alone now: the lock is held and the port is free
    # The file is checked (and migrated) before anything starts, so a database fwbot cannot use
    # is one line (bot.app.cli), not a traceback after the simulator's and workspace's start-up logs.
    check = Database(path)
    try:
        check.migrate()
        has_records = bool(Store(check).deployments(include_gone=True))
    finally:
        check.close()
    keep_state = db is not None
    if keep_state:
        missing = [p for p in state_files(path) if not p.exists()]
        if has_records and missing:
            # Starting the simulator and the workspace empty would make every deployment fwbot
            # remembers look deleted outside fwbot, and every message it tracks gone.
            print(f"fwbot dev: {path} holds fwbot's records, but not the simulated Fireworks and Slack "
                  f"they refer to ({', '.join(str(p) for p in missing)} missing): they would all look "
                  f"deleted outside fwbot. Use a new --db file, or delete {path} to start over.",
                  file=sys.stderr, flush=True)
            return 1

    logging.basicConfig(level=os.environ.get("FWBOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    env = {k: v for k, v in os.environ.items() if k.startswith("FWBOT_") and k != "FWBOT_DB"}
    try:
        stack = start(host, port, path, env=env, keep_state=keep_state, quota=quota)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return _port_in_use(host, port)
        raise

    settle_heap()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"fwbot dev: open {stack.url} (Slack workspace; simulated Fireworks at {stack.sim.url}, "
          f"GPU quota {quota or 'none'}; bot at {stack.bot.url}). Ctrl-C stops it.", flush=True)
    if keep_state:
        fireworks_state, slack_state = state_files(path)
        print(f"fwbot dev: state kept in {path}, {fireworks_state} and {slack_state}; "
              "delete all three to start over.", flush=True)
    stop.wait()
    stack.stop()
    return 0
