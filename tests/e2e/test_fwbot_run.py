"""``fwbot run`` as a real process on the real clock, against a relaxed simulator, killed and restarted."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fireworks
import pytest

from bot.core.clock import iso
from sims.fireworks import FireworksSimulator, SimConfig
from sims.slack import SlackWorkspace
from tests.fixtures.lifecycle import MODEL, action_ids, is_warning
from tests.harness import BOT_TOKEN, CHANNEL, SIGNING_SECRET, message_text, seed_workspace

REPO = Path(__file__).resolve().parents[2]
TEAM = "C0TEAM2"


class BotProcess:
    """``python -m bot.app.cli run`` with its own log; knows the URL it printed."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self._log = log.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.app.cli", "run"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()
        deadline = time.monotonic() + 20
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(f"fwbot run printed no URL; log:\n{log.read_text()[-3000:]}") from None
            if line.startswith("fwbot listening on "):
                self.url = line.split()[-1].strip()
                return

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as in a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


def wait(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (LookupError, fireworks.NotFoundError):
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
def test_fwbot_run_warns_once_across_sigkill_keeps_warm_and_reverts(tmp_path):
    started = time.monotonic()
    sim = FireworksSimulator(SimConfig(relaxed=True, create_seconds=2.0))
    sim.start()
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start()
    seed_workspace(ws)
    ws.add_channel(TEAM, "ml-team-two")
    sdk = fireworks.Fireworks(api_key="sim-key", account_id="demo", base_url=sim.url, max_retries=0)
    db = tmp_path / "fwbot.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FIREWORKS_", "FWBOT_"))}
    env.update({
        "PYTHONPATH": str(REPO), "PORT": "0", "FWBOT_HOST": "127.0.0.1",
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": ws.api_url,
        "FIREWORKS_API_KEY": "sim-key", "FIREWORKS_ACCOUNT_ID": "demo", "FIREWORKS_BASE_URL": sim.url,
        "FWBOT_DB": str(db), "FWBOT_SYNC_INTERVAL": "1s", "FWBOT_METRICS_INTERVAL": "10s",
        "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "20s",
        # A bot started after a SIGKILL leads once its predecessor's lease has run out.
        "FWBOT_LEADER_LEASE": "3s",
    })
    bots: list[BotProcess] = []

    def start_bot() -> BotProcess:
        bot = BotProcess(env, tmp_path, tmp_path / "fwbot.log")
        bots.append(bot)
        ws.events_url = f"{bot.url}/slack/events"
        return bot

    def thread_of(channel: str, dep_id: str) -> list:
        parent = next(m for m in ws.messages(channel) if not m.is_reply and m.ephemeral_to is None
                      and m.is_bot and f"{dep_id}:" in m.text)
        return [m for m in ws.thread(channel, parent.ts) if m.ts != parent.ts]

    def warnings(channel: str, dep_id: str) -> list:
        return [m for m in thread_of(channel, dep_id) if is_warning(m)]

    try:
        first = start_bot()
        flags = "--accelerator-type h100 --scale-to-zero-window"
        ws.slash_command("U_DEV", CHANNEL, f"deploy {MODEL} --deployment-id cold {flags} 30s")
        ws.slash_command("U_DEV", TEAM, f"deploy {MODEL} --deployment-id warm {flags} 40s")
        wait(lambda: sdk.deployments.get("cold").state == "READY", 10, "cold READY")

        # One warning in cold's thread before it scales to zero; then the bot dies mid-way.
        [warning] = wait(lambda: warnings(CHANNEL, "cold"), 25, "the scale-to-zero warning")
        assert "scale to zero" in message_text(warning) and "<@U_DEV>" in message_text(warning)
        assert sdk.deployments.get("cold").replica_count == 1
        first.kill()
        second = start_bot()

        # The restarted bot warns about warm; Keep warm 1h raises min replicas in Fireworks.
        [warm_warning] = wait(lambda: warnings(TEAM, "warm"), 30, "warm's warning")
        ws.click("U_DEV", TEAM, warm_warning.ts, "lc_keep_warm_1h")
        wait(lambda: sdk.deployments.get("warm").min_replica_count == 1, 10, "min replicas 1")
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT key, due_at, status FROM bot_actions WHERE kind = 'keep_warm_revert'"
                                " AND deployment_id = 'warm'").fetchall()
        [(key, due_at, status)] = rows
        assert status == "scheduled"
        assert timedelta(minutes=59) < datetime.fromisoformat(due_at) - datetime.now(UTC) <= timedelta(hours=1)

        # Killed again; the persisted revert is advanced to now, and the next bot carries it out.
        second.kill()
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE bot_actions SET due_at = ? WHERE key = ?", (iso(datetime.now(UTC)), key))
        start_bot()
        wait(lambda: sdk.deployments.get("warm").min_replica_count == 0, 15, "the keep-warm revert")
        wait(lambda: any("Keep-warm of `warm` ended" in message_text(m) for m in thread_of(TEAM, "warm")), 10,
             "the revert's note")

        def reverts() -> list:
            with sqlite3.connect(db) as conn:
                return conn.execute("SELECT key, status FROM bot_actions WHERE kind = 'keep_warm_revert'").fetchall()

        # The note goes out before the action is closed; give the close its moment.
        wait(lambda: reverts() == [(key, "done")], 5, "the revert closed as done")
        assert reverts() == [(key, "done")]  # the one revert on record, carried out once

        # Fireworks scales cold to zero on its own; the one warning is edited to say so.
        wait(lambda: sdk.deployments.get("cold").replica_count == 0, 25, "cold scaled to zero")
        wait(lambda: "it has scaled to zero" in message_text(warnings(CHANNEL, "cold")[0]), 10, "the edit")
        assert len(warnings(CHANNEL, "cold")) == 1
        assert action_ids(warnings(CHANNEL, "cold")[0]) == set()
        assert ws.rate_violations == []
        assert time.monotonic() - started < 60
    finally:
        for bot in bots:
            bot.kill()
        ws.stop()
        sim.stop()
