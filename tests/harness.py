"""A whole fwbot on loopback: the Fireworks simulator, the Slack stand-in, the bot over HTTP.

Tests drive it exactly as Slack would (signed HTTP into ``/slack/events``) and check the
results through the official Fireworks SDK, the stand-in's record of Web API calls, and the
SQLite file. Background jobs are not scheduled; tests run a sync when they want one, on a
clock they control.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fireworks

from bot.app.wiring import Bot, create_bot
from bot.core.clock import Clock
from bot.core.settings import Settings
from sims.fireworks import FireworksSimulator, SimConfig
from sims.slack import SlackWorkspace
from tests.fixtures.databases import database_setting, database_url

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0MLPLAT"
ALERTS = "C0ALERTS"
APPROVALS = "C0APPROV"

USERS = {
    "U_DEV": ("dev", "Dana Dev", "Europe/Berlin"),
    "U_OTHER": ("other", "Olli Other", "America/New_York"),
    "U_ADMIN": ("admin", "Ada Admin", "UTC"),
    "U_APPROVER": ("approver", "Avi Approver", "Asia/Tokyo"),
}


def seed_workspace(ws: SlackWorkspace) -> None:
    for uid, (name, real, tz) in USERS.items():
        ws.add_user(uid, name, real_name=real, tz=tz, is_admin=uid == "U_ADMIN")
    members = list(USERS)
    ws.add_channel(CHANNEL, "ml-platform", members=members)
    ws.add_channel(ALERTS, "fw-alerts", members=members)
    ws.add_channel(APPROVALS, "fw-approvals", members=members)


@dataclass
class Stack:
    sim: FireworksSimulator
    ws: SlackWorkspace
    bot: Bot
    db_path: Path | str  # the SQLite file, or the PostgreSQL database's URL
    settings_env: dict[str, str]

    @property
    def services(self):
        return self.bot.services

    def sdk(self) -> fireworks.Fireworks:
        return fireworks.Fireworks(api_key=self.sim.config.api_key, account_id=self.sim.config.account_id,
                                   base_url=self.sim.url, max_retries=0)

    def fw(self, text: str, user: str = "U_DEV", channel: str = CHANNEL):
        return self.ws.slash_command(user=user, channel=channel, text=text)

    def sync(self):
        from bot.services.tracking import sync

        return sync(self.services)

    def ephemerals(self, user: str, channel: str = CHANNEL) -> list[Any]:
        return [m for m in self.ws.messages(channel) if m.ephemeral_to == user]

    def last_ephemeral_text(self, user: str = "U_DEV", channel: str = CHANNEL) -> str:
        msgs = self.ephemerals(user, channel)
        return message_text(msgs[-1]) if msgs else ""

    def wait_ephemeral(self, needle: str, user: str = "U_DEV", channel: str = CHANNEL, timeout: float = 10.0) -> str:
        def find():
            for m in reversed(self.ephemerals(user, channel)):
                text = message_text(m)
                if needle in text:
                    return text
            return None

        return self.ws.wait_for(find, timeout=timeout)

    def open_deploy_form(self, model: str, user: str = "U_DEV") -> tuple[Any, dict[str, dict[str, Any]]]:
        """``/fw deploy`` with no arguments, then the form's model and H100 picked: the view, and
        the values to submit (add the other fields)."""
        self.fw("deploy", user=user)
        view = self.ws.wait_for(lambda: (self.ws.views_for(user) or [None])[-1])

        def picked(value: str, label: str) -> dict[str, Any]:
            return {"type": "static_select",
                    "selected_option": {"value": value, "text": {"type": "plain_text", "text": label}}}

        return view, {"model": {"v": picked(f"accounts/fireworks/models/{model}", model)},
                      "acc_type": {"v": picked("NVIDIA_H100_80GB", "H100")}}

    def stop(self) -> None:
        self.bot.stop()
        self.ws.stop()
        self.sim.stop()


def message_text(message: Any) -> str:
    """All the text a person sees in a message: fallback text plus every block's text."""
    parts = [message.text or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks or [])
    return "\n".join(parts)


def start_stack(tmp_path: Path, *, clock: Clock | None = None, sim_config: dict | None = None,
                env: dict[str, str] | None = None, db_path: Path | str | None = None,
                sim: FireworksSimulator | None = None, ws: SlackWorkspace | None = None) -> Stack:
    if sim is None:
        sim = FireworksSimulator(SimConfig(account_id="demo", api_key="sim-key", **(sim_config or {})), clock=clock)
        sim.start(host="127.0.0.1", port=0)
    if ws is None:
        ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
        ws.start(host="127.0.0.1", port=0)
        seed_workspace(ws)
    db_path = db_path or database_url(tmp_path)  # a SQLite file, or a PostgreSQL database's URL
    settings_env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": ws.api_url,
        "FIREWORKS_API_KEY": "sim-key",
        "FIREWORKS_ACCOUNT_ID": "demo",
        "FIREWORKS_BASE_URL": sim.url,
        database_setting(db_path): str(db_path),
        "FWBOT_ADMINS": "U_ADMIN",
        "FWBOT_ALERT_CHANNEL": ALERTS,
        **(env or {}),
    }
    settings = Settings(_env_file=None, **{k: v for k, v in settings_env.items()})
    bot = create_bot(settings, clock=clock, with_scheduler=False)
    url = bot.serve_http("127.0.0.1", 0)
    ws.events_url = f"{url}/slack/events"
    return Stack(sim=sim, ws=ws, bot=bot, db_path=db_path, settings_env=settings_env)


def clean_env() -> None:
    """Settings come from the test, never from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("FWBOT_TEST_"):  # the test run's own knobs (tests/fixtures/databases.py)
            continue
        if key.startswith(("SLACK_", "FIREWORKS_", "FWBOT_")) or key in ("PORT", "HTTP_PROXY", "HTTPS_PROXY",
                                                                         "http_proxy", "https_proxy"):
            del os.environ[key]
