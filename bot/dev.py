"""``fwbot dev``: the Fireworks simulator, a local Slack workspace in the browser, and the bot.

Nothing leaves the machine and no credentials are needed. Windows are short so the whole
lifecycle (READY, idle warnings, scale to zero) is visible within minutes. The browser tests
start exactly this wiring (``start``) on free ports.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import SIMULATED_ACCOUNT, SIMULATED_KEY, Bot, create_bot, quiet_libraries, settle_heap
from bot.config import Settings
from storage.db import Database, file_problem

log = logging.getLogger("fwbot.dev")

DEV_SIGNING_SECRET = "fwbot-dev-signing-secret"
DEV_BOT_TOKEN = "xoxb-fwbot-dev"
DEV_DB = Path(".fwbot-dev") / "fwbot.db"

DEV_USERS = [
    # id, handle, real name, timezone, Slack admin
    ("U0DEV", "dana", "Dana Developer", "Europe/Berlin", False),
    ("U0APPROVER", "avi", "Avi Approver", "America/New_York", False),
    ("U0ADMIN", "ada", "Ada Admin", "UTC", True),
]
DEV_CHANNELS = [("C0MLPLAT", "ml-platform"), ("C0ALERTS", "fw-alerts"), ("C0APPROVALS", "fw-approvals")]
HOME_CHANNEL = "C0MLPLAT"

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
    "FWBOT_ALERT_CHANNEL": "C0ALERTS",
}

WELCOME = (
    "*Welcome to fwbot's local workspace.* Slack and Fireworks are simulated here; nothing costs money.\n"
    "• Type `/fw help`, or `/fw deploy` for the form with a live cost.\n"
    "• `/fw deploy llama-v3p1-8b-instruct --scale-to-zero-window 2m` goes READY in seconds and gets an "
    "idle warning about a minute later, with a *Keep warm* button.\n"
    "• Deploys above $20/h (e.g. `--max-replica-count 4` on H100) wait for an approver: switch to "
    "*avi* at the top right and approve in <#C0APPROVALS>."
)


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
          env: dict[str, str] | None = None, create_seconds: float = 8.0) -> DevStack:
    """Start the simulator, the Slack stand-in (seeded) and the bot with its scheduler.

    ``env`` overrides the dev settings (``FWBOT_*``); port 0 picks a free port.
    """
    from sims.fireworks import FireworksSimulator, SimConfig
    from sims.slack import SlackWorkspace
    from sims.slack.model import SLACKBOT_USER_ID

    sim = FireworksSimulator(SimConfig(account_id=SIMULATED_ACCOUNT, api_key=SIMULATED_KEY, relaxed=True,
                                       create_seconds=create_seconds, auto_delete_after=1800.0))
    sim.start(host="127.0.0.1", port=0)
    ws = SlackWorkspace(signing_secret=DEV_SIGNING_SECRET, bot_token=DEV_BOT_TOKEN, team_name="fwbot dev")
    try:
        url = ws.start(host=host, port=port)
    except BaseException:
        sim.stop()
        raise
    members = [u[0] for u in DEV_USERS]
    for uid, handle, real, tz, admin in DEV_USERS:
        ws.add_user(uid, handle, real_name=real, tz=tz, is_admin=admin)
    for cid, name in DEV_CHANNELS:
        ws.add_channel(cid, name, members=members)
    ws.add_usergroup("S0APPROVERS", "approvers", users=["U0APPROVER"])
    ws.add_message(HOME_CHANNEL, SLACKBOT_USER_ID, text=WELCOME)

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
        FWBOT_DB=str(db or DEV_DB),
        **{k: v for k, v in settings_env.items() if k != "FWBOT_DB"},
    )
    try:
        bot = create_bot(settings, simulator=sim)
        bot_url = bot.serve_http("127.0.0.1", 0)
    except BaseException:
        ws.stop()
        sim.stop()
        raise
    ws.events_url = f"{bot_url}/slack/events"
    return DevStack(sim=sim, ws=ws, bot=bot, url=url)


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


def main(host: str = "127.0.0.1", port: int = 8700, db: str | None = None) -> int:
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
    # is one line (bot.cli), not a traceback after the simulator's and workspace's start-up logs.
    check = Database(path)
    try:
        check.migrate()
    finally:
        check.close()

    logging.basicConfig(level=os.environ.get("FWBOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    env = {k: v for k, v in os.environ.items() if k.startswith("FWBOT_") and k != "FWBOT_DB"}
    try:
        stack = start(host, port, path, env=env)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return _port_in_use(host, port)
        raise

    settle_heap()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"fwbot dev: open {stack.url} (Slack workspace; simulated Fireworks at {stack.sim.url}; "
          f"bot at {stack.bot.url}). Ctrl-C stops it.", flush=True)
    stop.wait()
    stack.stop()
    return 0
