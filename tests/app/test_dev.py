"""``fwbot dev``'s wiring without a browser: what a fresh start shows (a demo deployment with two
days of history, its cost summary and the digest's chart, an adoption offer in #fw-alerts), what
falls back to #fw-alerts, and ``--db`` keeping the simulated Fireworks and Slack beside the file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import dev
from bot.core.clock import parse_iso
from bot.core.costs import local_midnight
from storage.db import Database
from storage.store import Store
from tests.harness import clean_env, message_text

REPO = Path(__file__).resolve().parents[2]
ENV = {"FWBOT_SYNC_INTERVAL": "1s", "FWBOT_IDLE_PAYING_AFTER": "1h"}
TIMEOUT = 20.0


@pytest.fixture
def fresh(tmp_path):
    clean_env()
    stack = dev.start("127.0.0.1", 0, tmp_path / "fwbot.db", env=ENV, create_seconds=1.0)
    yield stack
    stack.stop()


def texts(stack, channel: str) -> list[str]:
    return [message_text(m) for m in stack.ws.messages(channel) if not m.deleted]


def posted_to(stack, channel: str) -> list[str]:
    """Every text fwbot posted to ``channel``, even if edited since."""
    return [str(c.params.get("text") or "") + str(c.params.get("blocks") or "")
            for c in stack.ws.calls_to("chat.postMessage")
            if (c.response or {}).get("channel") == channel and (c.response or {}).get("ok")]


def test_a_fresh_start_has_history_summaries_a_chart_and_an_alert(fresh):
    s, ws = fresh.bot.services, fresh.ws
    record = s.store.deployment(dev.DEMO_ID)
    assert (record.owner, record.channel, record.created_by_bot) == ("U0DEV", dev.HOME_CHANNEL, True)
    tz = s.settings.tz
    today = s.clock.now().astimezone(tz).date()
    first = parse_iso(s.store.replica_history(dev.DEMO_ID)[0]["at"])
    assert first == local_midnight(today - timedelta(days=2), tz)  # two whole days of history
    assert ws.commands["/fw"] is True  # from manifest.yml: mentions typed in the composer are escaped
    assert s.settings.cost_summary_cron == "*/10 * * * *"

    # The weekly digest (with its chart) goes to the demo's owner at once; the channel gets the
    # summary of the last ten minutes.
    dm = ws.dm_channel("U0DEV")
    chart = ws.wait_for(lambda: next((m for m in ws.messages(dm) if m.files), None), timeout=TIMEOUT)
    assert chart.files[0]["name"] == "gpu-cost-per-day.png" and "Daily GPU spend" in chart.text
    assert any("You own 1 deployment" in t for t in texts(fresh, dm))
    ws.wait_for(lambda: any("GPU cost" in t and dev.DEMO_ID in t for t in texts(fresh, dev.HOME_CHANNEL)),
                timeout=TIMEOUT)

    # The deployment made outside fwbot is offered for adoption in the alert channel.
    ws.wait_for(lambda: any("created outside fwbot" in t and dev.OUTSIDE_ID in t
                            for t in posted_to(fresh, dev.ALERT_CHANNEL)), timeout=TIMEOUT)

    # /fw cost over the seeded days: day by day, and Fireworks' billing agrees with it.
    ws.slash_command("U0DEV", dev.HOME_CHANNEL, f"cost {today - timedelta(days=2)}..{today - timedelta(days=1)}")
    answer = ws.wait_for(lambda: next((t for t in texts(fresh, dev.HOME_CHANNEL)
                                       if "GPU cost" in t and "billingUsage" in t), None), timeout=TIMEOUT)
    assert "Daily `" in answer and "difference +0.0%" in answer, answer
    assert dev.DEMO_ID in answer


def test_what_no_other_place_takes_lands_in_fw_alerts(fresh):
    """The demo's channel archived and its owner deactivated: a note about it (here: Fireworks
    deleted it behind fwbot's back) goes thread → channel → owner DM → #fw-alerts."""
    s, ws = fresh.bot.services, fresh.ws
    ws.wait_for(lambda: (r := s.store.deployment(dev.DEMO_ID)) and r.thread_ts and r.state == "READY",
                timeout=TIMEOUT)
    ws.set_channel(dev.HOME_CHANNEL, archived=True)
    ws.deactivate_user("U0DEV")
    s.gateway.delete_deployment(dev.DEMO_ID, hard=True)
    ws.wait_for(lambda: any("deleted outside fwbot" in t and dev.DEMO_ID in t
                            for t in texts(fresh, dev.ALERT_CHANNEL)), timeout=TIMEOUT)


def test_keep_state_restarts_with_the_same_fireworks_and_slack(tmp_path):
    clean_env()
    db = tmp_path / "kept.db"
    first = dev.start("127.0.0.1", 0, db, env=ENV, create_seconds=1.0, keep_state=True)
    try:
        s, ws = first.bot.services, first.ws
        record = ws.wait_for(lambda: (r := s.store.deployment(dev.DEMO_ID)) and r.state == "READY" and r,
                             timeout=TIMEOUT)
        ws.slash_command("U0DEV", dev.HOME_CHANNEL, "deploy llama-v3p1-8b-instruct --deployment-id kept-1")
        ws.wait_for(lambda: (r := s.store.deployment("kept-1")) and r.state == "READY", timeout=TIMEOUT)
    finally:
        first.stop()
    fireworks_state, slack_state = dev.state_files(db)
    assert fireworks_state.exists() and slack_state.exists()

    second = dev.start("127.0.0.1", 0, db, env=ENV, create_seconds=1.0, keep_state=True)
    try:
        s, ws = second.bot.services, second.ws
        assert ws.restored
        # Three syncs later nothing fwbot remembers looks deleted, and nothing was seeded twice.
        syncs = second.bot.metrics.job_runs.labels(job="sync", result="ok")
        ws.wait_for(lambda: syncs._value.get() >= 3, timeout=TIMEOUT)
        everything = [t for c in ws.channels for t in texts(second, c.id)]
        assert not [t for t in everything if "deleted outside fwbot" in t or "Gone" in t]
        assert sum("Welcome to fwbot" in t for t in everything) == 1
        for dep_id in (dev.DEMO_ID, "kept-1"):
            kept = s.store.deployment(dep_id)
            assert kept.gone_at is None and kept.state == "READY"
            assert dep_id in message_text(ws.message(kept.channel, kept.thread_ts))
        assert ws.message(record.channel, record.thread_ts)
    finally:
        second.stop()


def test_fwbot_dev_refuses_a_db_whose_simulated_world_is_missing(tmp_path):
    """Records without the simulated Fireworks and Slack they refer to would all look deleted."""
    db = tmp_path / "old.db"
    database = Database(db)
    database.migrate()
    Store(database).claim_deployment("web-1", "accounts/demo/deployments/web-1", owner="U0DEV", channel="C0MLPLAT",
                                     now=datetime.now(UTC), created_by_bot=True)
    database.close()
    fwbot = REPO / ".venv" / "bin" / "fwbot"
    argv = [str(fwbot)] if fwbot.exists() else [sys.executable, "-m", "bot.app.cli"]
    proc = subprocess.run([*argv, "dev", "--port", "0", "--db", str(db)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"{db} holds fwbot's records" in line and "old.db.fireworks.json" in line and "new --db" in line
    assert not dev.state_files(db)[0].exists()  # nothing was started


def test_the_adoption_offer_keeps_its_adopt_button(fresh):
    ws = fresh.ws
    ws.wait_for(lambda: any("created outside fwbot" in t for t in posted_to(fresh, dev.ALERT_CHANNEL)),
                timeout=TIMEOUT)
    syncs = fresh.bot.metrics.job_runs.labels(job="sync", result="ok")
    seen = syncs._value.get()
    ws.wait_for(lambda: syncs._value.get() >= seen + 3, timeout=TIMEOUT)
    offers = [t for t in texts(fresh, dev.ALERT_CHANNEL) if dev.OUTSIDE_ID in t]
    assert any("Adopt it" in t and "created outside fwbot" in t for t in offers), offers


def test_fwbot_dev_has_a_gpu_quota_and_says_so_when_a_deploy_meets_it(tmp_path):
    clean_env()
    stack = dev.start("127.0.0.1", 0, tmp_path / "fwbot.db", env=ENV, create_seconds=1.0, quota=dev.DEV_QUOTA)
    try:
        assert stack.sim.config.quota_for("NVIDIA_H100_80GB") == 16
        assert stack.sim.config.quota_for("NVIDIA_B200_180GB") == 16
        # The demo holds 3 H100s (max 2 + max 1, one GPU each): 16 more is over the 16.
        stack.ws.slash_command(user="U0DEV", channel=dev.HOME_CHANNEL,
                               text="deploy llama-v3p1-8b-instruct --accelerator-type h100 --accelerator-count 8 "
                                    "--max-replica-count 2 --deployment-id too-big")
        told = stack.ws.wait_for(lambda: next((message_text(m) for m in stack.ws.messages(dev.HOME_CHANNEL)
                                               if m.ephemeral_to == "U0DEV" and "quota" in message_text(m)), None),
                                 timeout=TIMEOUT)
        assert ("Fireworks refused: this account's quota is 16 × NVIDIA_H100_80GB and 3 are in use; "
                "the deploy asked for 16 more (2 replicas × 8).") in told
        assert stack.bot.services.store.deployment("too-big") is None
    finally:
        stack.stop()


def test_fwbot_dev_refuses_a_bad_quota_in_one_line(tmp_path):
    fwbot = REPO / ".venv" / "bin" / "fwbot"
    argv = [str(fwbot)] if fwbot.exists() else [sys.executable, "-m", "bot.app.cli"]
    proc = subprocess.run([*argv, "dev", "--port", "0", "--quota", "H100=8"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("fwbot dev: --quota: unknown accelerator type 'H100'"), line
    assert not (tmp_path / ".fwbot-dev").exists()  # nothing was started
