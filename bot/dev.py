"""``fwbot dev``: the Fireworks simulator, a local Slack workspace in the browser, and the bot.

Nothing leaves the machine and no credentials are needed. Windows are short so the whole
lifecycle (READY, idle warnings, scale to zero) is visible within minutes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from bot.app import SIMULATED_ACCOUNT, SIMULATED_KEY, create_bot, quiet_libraries
from bot.config import Settings

log = logging.getLogger("fwbot.dev")

DEV_SIGNING_SECRET = "fwbot-dev-signing-secret"
DEV_BOT_TOKEN = "xoxb-fwbot-dev"

DEV_USERS = [
    # id, handle, real name, timezone, Slack admin
    ("U0DEV", "dana", "Dana Developer", "Europe/Berlin", False),
    ("U0APPROVER", "avi", "Avi Approver", "America/New_York", False),
    ("U0ADMIN", "ada", "Ada Admin", "UTC", True),
]
DEV_CHANNELS = [("C0MLPLAT", "ml-platform"), ("C0ALERTS", "fw-alerts"), ("C0APPROVALS", "fw-approvals")]

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


def main(host: str = "127.0.0.1", port: int = 8700, db: str | None = None) -> int:
    logging.basicConfig(level=os.environ.get("FWBOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    from sims.fireworks import FireworksSimulator, SimConfig
    from sims.slack import SlackWorkspace

    sim = FireworksSimulator(SimConfig(account_id=SIMULATED_ACCOUNT, api_key=SIMULATED_KEY, relaxed=True,
                                       create_seconds=8.0, auto_delete_after=1800.0))
    sim.start(host="127.0.0.1", port=0)
    ws = SlackWorkspace(signing_secret=DEV_SIGNING_SECRET, bot_token=DEV_BOT_TOKEN)
    url = ws.start(host=host, port=port)
    members = [u[0] for u in DEV_USERS]
    for uid, handle, real, tz, admin in DEV_USERS:
        ws.add_user(uid, handle, real_name=real, tz=tz, is_admin=admin)
    for cid, name in DEV_CHANNELS:
        ws.add_channel(cid, name, members=members)
    ws.add_usergroup("S0APPROVERS", "approvers", users=["U0APPROVER"])

    env = {**DEV_ENV, **{k: v for k, v in os.environ.items() if k.startswith("FWBOT_")}}
    settings = Settings(
        _env_file=None,
        SLACK_BOT_TOKEN=DEV_BOT_TOKEN,
        SLACK_SIGNING_SECRET=DEV_SIGNING_SECRET,
        SLACK_API_URL=ws.api_url,
        FWBOT_DB=db or str(Path(".fwbot-dev") / "fwbot.db"),
        **{k: v for k, v in env.items() if k != "FWBOT_DB"},
    )
    bot = create_bot(settings, simulator=sim)
    bot_url = bot.serve_http("127.0.0.1", 0)
    ws.events_url = f"{bot_url}/slack/events"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"fwbot dev: open {url} (Slack workspace; simulated Fireworks at {sim.url}; bot at {bot_url})",
          flush=True)
    stop.wait()
    bot.stop()
    ws.stop()
    return 0
