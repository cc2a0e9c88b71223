"""``fwbot dev``: the Fireworks simulator, a local Slack workspace in the browser, and the bot.

Nothing leaves the machine and no credentials are needed. Windows are short so the whole
lifecycle (READY, idle warnings, scale to zero) is visible within minutes. The browser tests
start exactly this wiring (``start``) on free ports.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import SIMULATED_ACCOUNT, SIMULATED_KEY, Bot, create_bot, quiet_libraries, settle_heap
from bot.config import Settings

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
    rows left by an earlier run would name deployments and messages that no longer exist."""
    DEV_DB.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEV_DB}{suffix}").unlink(missing_ok=True)
    return DEV_DB


def main(host: str = "127.0.0.1", port: int = 8700, db: str | None = None) -> int:
    logging.basicConfig(level=os.environ.get("FWBOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    env = {k: v for k, v in os.environ.items() if k.startswith("FWBOT_") and k != "FWBOT_DB"}
    try:
        stack = start(host, port, db or _fresh_default_db(), env=env)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"fwbot dev: port {port} on {host} is in use (another fwbot dev?); "
                  f"try `fwbot dev --port {port + 1}`", flush=True)
            return 1
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
