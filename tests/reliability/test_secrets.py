"""Secrets never leak: the bot token, signing secret and Fireworks API key appear in no log line
(every logger at DEBUG), no message or view, no answer to Slack, no error, no metrics or health page.

The bot runs with distinctive secrets and is pushed through its error paths: forged requests,
Fireworks refusing the key, Fireworks faults, Slack errors, an internal error in a listener.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request

import pytest

from bot.core.settings import Settings
from sims.fireworks import FireworksSimulator, SimConfig
from sims.slack import SlackWorkspace
from tests.harness import CHANNEL, message_text, seed_workspace, start_stack
from tests.reliability.conftest import LogCapture

BOT_TOKEN = "xoxb-4242-SECRETBOTTOKEN-zq81"
SIGNING_SECRET = "SECRETSIGNING-7c1e5a9b3d"
API_KEY = "fw-SECRETAPIKEY-0f9e8d7c"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, API_KEY)
MODEL = "llama-v3p1-8b-instruct"
LOUD = ("", "fwbot", "slack_bolt", "slack_sdk", "fireworks", "httpx", "httpcore", "urllib3", "apscheduler")


@pytest.fixture
def capture():
    handler = LogCapture()
    saved = {name: logging.getLogger(name).level for name in LOUD}
    for name in LOUD:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def stack(tmp_path, capture, monkeypatch):
    monkeypatch.setenv("FIREWORKS_LOG", "debug")  # the SDK's own request logging, at its loudest
    sim = FireworksSimulator(SimConfig(account_id="demo", api_key=API_KEY, create_seconds=1.0))
    sim.start(host="127.0.0.1", port=0)
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    seed_workspace(ws)
    s = start_stack(tmp_path, sim=sim, ws=ws, env={
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "FIREWORKS_API_KEY": API_KEY})
    yield s
    s.stop()


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text or secret[6:-4] in text]


def test_secrets_appear_in_no_log_message_error_or_page(stack, capture):
    ws, sim = stack.ws, stack.sim
    seen: list[str] = []

    # ordinary work, with the SDK and HTTP clients logging every request
    stack.fw(f"deploy {MODEL} --deployment-id sec-1 --max-replica-count 1")
    ws.wait_for(lambda: stack.services.store.db.scalar("SELECT COUNT(*) FROM audit WHERE deployment_id = 'sec-1'"))
    for text in ("list all", "get sec-1", "audit", "help", "deploy --bogus", "models"):
        seen.append(json.dumps(stack.fw(text).json))
    assert stack.services.wait_work_done(10)  # their replies are out before the faults below
    # Fireworks faults and a refused key
    sim.faults.fail_next(3, 503)
    stack.fw("get sec-1")
    stack.wait_ephemeral("Fireworks says")
    sim.config.api_key = "rotated-elsewhere"
    stack.fw("get sec-1")
    stack.wait_ephemeral("API key")
    sim.config.api_key = API_KEY
    # Slack refusing the bot
    ws.script("chat.postMessage", error="invalid_auth", times=3)
    stack.fw(f"deploy {MODEL} --deployment-id sec-2 --max-replica-count 1")
    ws.wait_for(lambda: stack.services.store.db.scalar("SELECT COUNT(*) FROM audit WHERE deployment_id = 'sec-2'"))
    # forged requests
    body = b"command=%2Ffw&text=list&user_id=U_DEV&channel_id=" + CHANNEL.encode()
    seen.append(ws.send_raw(body, ws.signed_headers(body, secret="wrong")).body)
    seen.append(ws.send_raw(body, ws.signed_headers(body, timestamp=int(time.time()) - 900)).body)
    # an internal error in a listener reaches the central error handler
    from bot.services import commands

    real = commands.VERBS["audit"]
    commands.VERBS["audit"] = lambda ctx, cmd: 1 / 0
    try:
        stack.fw("audit")
        stack.wait_ephemeral("internal error")
    finally:
        commands.VERBS["audit"] = real

    for path in ("/metrics", "/healthz"):
        with urllib.request.urlopen(stack.bot.url + path, timeout=5) as resp:
            seen.append(resp.read().decode())
    for channel in [CHANNEL, *{c.params.get("channel") for c in ws.calls if isinstance(c.params.get("channel"), str)}]:
        try:
            seen += [message_text(m) + json.dumps(m.blocks or []) for m in ws.messages(channel)]
        except LookupError:
            continue
    seen += [json.dumps(c.params, default=str) + json.dumps(c.response or {}, default=str) for c in ws.calls]
    seen += [json.dumps(v.view, default=str) for u in ("U_DEV", "U_ADMIN") for v in ws.views_for(u)]
    seen.append(repr(stack.bot.settings) + str(stack.bot.settings) + repr(Settings(_env_file=None, **stack.settings_env)))
    seen += [json.dumps(r, default=str) for r in stack.services.store.db.query("SELECT * FROM audit")]

    logs = capture.text
    assert len(logs.splitlines()) > 50, "the loggers were not loud enough for this test to mean anything"
    assert "Traceback" in logs  # the forced error was logged with its traceback
    assert leaks(logs) == [], [line for line in logs.splitlines() if leaks(line)][:5]
    for text in seen:
        assert leaks(text) == [], text[:500]
