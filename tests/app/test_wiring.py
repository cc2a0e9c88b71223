"""The bot's front door and plumbing: health, metrics, the embedded simulator, Slack retries."""

from __future__ import annotations

import time

import httpx

from bot.app.wiring import create_bot
from bot.core.settings import Settings
from sims.slack import SlackWorkspace
from tests.harness import BOT_TOKEN, CHANNEL, SIGNING_SECRET, message_text, seed_workspace, start_stack


def test_healthz_and_metrics(stack):
    base = stack.ws.events_url.rsplit("/slack/events", 1)[0]
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    stack.fw("help")
    metrics = httpx.get(f"{base}/metrics")
    assert metrics.status_code == 200
    assert 'fwbot_slack_requests_total{kind="slack",status="200"}' in metrics.text
    assert httpx.get(f"{base}/nope").status_code == 404


def test_without_a_fireworks_key_the_embedded_simulator_runs_and_says_so(tmp_path):
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    seed_workspace(ws)
    settings = Settings(_env_file=None, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                        SLACK_API_URL=ws.api_url, FWBOT_DB=str(tmp_path / "fwbot.db"))
    assert settings.simulated
    bot = create_bot(settings, with_scheduler=False)
    try:
        ws.events_url = f"{bot.serve_http('127.0.0.1', 0)}/slack/events"
        ws.slash_command(user="U_DEV", channel=CHANNEL, text="deploy llama-v3p1-8b-instruct --deployment-id sim-1")
        msg = ws.wait_for(lambda: [m for m in ws.messages(CHANNEL) if m.ephemeral_to is None and m.is_bot
                                   and "sim-1" in m.text] or None)
        assert "simulated Fireworks" in message_text(msg[-1])
        assert bot.simulator is not None and bot.services.gateway.base_url == bot.simulator.url
        r = ws.slash_command(user="U_DEV", channel=CHANNEL, text="help")
        assert "simulated Fireworks" in r.body
    finally:
        bot.stop()
        ws.stop()


def test_slack_429_is_retried_after_retry_after(stack):
    stack.ws.script("chat.postMessage", status=429, retry_after=1, times=1)
    stack.fw("deploy llama-v3p1-8b-instruct --deployment-id limited")
    msgs = stack.ws.wait_for(lambda: [m for m in stack.ws.messages(CHANNEL)
                                      if m.ephemeral_to is None and "limited" in message_text(m)] or None, timeout=10)
    assert len(msgs) == 1
    posts = stack.ws.calls_to("chat.postMessage")
    assert [c.status for c in posts][:2] == [429, 200]


def test_restart_keeps_ownership(tmp_path):
    first = start_stack(tmp_path)
    try:
        first.fw("deploy llama-v3p1-8b-instruct --deployment-id keepme")
        first.ws.wait_for(lambda: first.services.store.deployment("keepme"))
        first.bot.stop()
        second = start_stack(tmp_path, sim=first.sim, ws=first.ws, db_path=first.db_path)
        second.fw("delete keepme", user="U_OTHER")
        assert "<@U_DEV>" in second.wait_ephemeral("owned by", user="U_OTHER")
        second.bot.stop()
    finally:
        first.ws.stop()
        first.sim.stop()


def test_socket_mode_receives_commands_and_clicks_over_the_websocket(tmp_path, caplog):
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, app_token="xapp-test")
    ws.start(host="127.0.0.1", port=0)
    seed_workspace(ws)
    settings = Settings(_env_file=None, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-test",
                        SLACK_API_URL=ws.api_url, FWBOT_DB=str(tmp_path / "fwbot.db"))
    bot = create_bot(settings, with_scheduler=False)
    try:
        bot.connect_socket_mode("xapp-test")
        ws.wait_for(lambda: ws.socket_connected)
        assert ws.events_url is None  # nothing goes over HTTP
        r = ws.slash_command(user="U_DEV", channel=CHANNEL, text="help")
        assert r.status == 200 and "deploy" in r.body
        ws.slash_command(user="U_DEV", channel=CHANNEL, text="deploy llama-v3p1-8b-instruct --deployment-id sock-1")
        # Created once Fireworks shows it (its owner claim comes first, before the create is sent).
        ws.wait_for(lambda: (r := bot.services.store.deployment("sock-1")) and r.state, timeout=20)
        ws.slash_command(user="U_DEV", channel=CHANNEL, text="delete sock-1")
        confirm = ws.wait_for(lambda: [m for m in ws.messages(CHANNEL) if m.ephemeral_to == "U_DEV"
                                       and "Delete `sock-1`" in message_text(m)] or None, timeout=20)[-1]
        click = ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
        assert click.status == 200
        ws.wait_for(lambda: bot.services.store.deployment("sock-1").state in ("DELETING", "DELETED"), timeout=20)
        # A workspace the app was also installed in, but whose requests fwbot does not serve.
        ws.team_id = "T0STRANGER"
        ws.slash_command(user="U_DEV", channel=CHANNEL, text="deploy llama-v3p1-8b-instruct --deployment-id sock-2")
        ws.slash_command(user="U_DEV", channel=CHANNEL, text="list all")
        time.sleep(1.0)
        assert bot.services.store.deployment("sock-2") is None
        assert not any("sock-1" in message_text(m) for m in ws.messages(CHANNEL)
                       if m.ephemeral_to == "U_DEV" and "list" in m.text.lower())
        assert "refused a Socket Mode request" in caplog.text
    finally:
        bot.stop()
        ws.stop()
