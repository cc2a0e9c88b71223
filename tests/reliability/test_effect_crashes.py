"""SIGKILL fwbot while it posts what it has decided, start it again, and count what Slack,
Fireworks and SQLite then say: every intent carried out once, none lost, none twice.

The kill lands in one of two gaps: before Slack has the post, or after Slack has it but before
fwbot recorded it (the Slack stand-in is reached through a pass-through that holds the chosen call).
"""

from __future__ import annotations

import time

import pytest

from tests.harness import CHANNEL, message_text
from tests.reliability.crashing import BotProcess, SlackHold, outside_world
from tests.reliability.test_crashes import APPROVAL_ENV, CRASHES, MODEL, fw

pytestmark = pytest.mark.slow
GAPS = ["before Slack has the post", "after Slack has it, before fwbot records it"]


@pytest.fixture
def held(tmp_path):
    sim, ws = outside_world(create_seconds=1.0)
    hold = SlackHold(ws)
    bots: list[BotProcess] = []

    def bot(**env) -> BotProcess:
        b = BotProcess(tmp_path, sim, ws, env={"SLACK_API_URL": hold.api_url, **env})
        bots.append(b)
        return b

    yield sim, ws, hold, bot
    for b in bots:
        b.stop()
    hold.stop()
    ws.stop()
    sim.stop()


def posts(ws, channel: str, needle: str) -> list:
    return [m for m in ws.messages(channel) if m.is_bot and not m.ephemeral_to and not m.deleted
            and needle in message_text(m)]


def kill_while_held(bot: BotProcess, hold: SlackHold, timeout: float = 30) -> None:
    assert hold.holding.wait(timeout), bot.log()[-2000:]
    bot.kill()
    CRASHES["crashes"] += 1
    hold.release.set()


@pytest.mark.parametrize("gap", GAPS)
def test_sigkill_while_an_approval_request_is_posted(held, gap):
    sim, ws, hold, new_bot = held
    bot = new_bot(**APPROVAL_ENV)
    bot.start()
    hold.after_slack = gap.startswith("after")
    hold.hold_when = lambda method, body: method == "chat.postMessage" and b"Approval needed" in body
    fw(ws, f"deploy {MODEL} --deployment-id pricey --max-replica-count 4 --accelerator-type h100")
    kill_while_held(bot, hold)
    assert len(posts(ws, "C0APPROV", "Approval needed")) == (1 if hold.after_slack else 0)
    [(token, status, ts)] = bot.db("SELECT id, status, message_ts FROM approvals")
    assert status == "pending" and ts is None  # the intent is on record, its post unconfirmed

    bot.start()
    ws.wait_for(lambda: bot.db("SELECT message_ts FROM approvals")[0][0] is not None, timeout=30)
    time.sleep(1.5)  # more passes: nothing further may be posted
    requests = posts(ws, "C0APPROV", "Approval needed")
    [(message_ts,)] = bot.db("SELECT message_ts FROM approvals")
    pending = bot.db("SELECT COUNT(*) FROM audit WHERE action = 'approval request' AND result = 'pending'")
    CRASHES["losses"] += int(len(requests) == 0)
    CRASHES["doubles"] += max(0, len(requests) - 1)
    assert len(requests) == 1 and requests[0].ts == message_ts
    assert pending == [(1,)]
    assert bot.db("SELECT status FROM effects WHERE key = :key", {"key": f"approval:{token}"}) == [("done",)]
    assert sim.state.get_deployment("pricey") is None  # nothing ran without an approver


@pytest.mark.parametrize("gap", GAPS)
def test_sigkill_after_the_tracking_post_before_the_create_leaves_no_creating_forever(held, gap):
    sim, ws, hold, new_bot = held
    bot = new_bot()
    bot.start()
    hold.after_slack = gap.startswith("after")
    hold.hold_when = lambda method, body: method == "chat.postMessage" and b"never-made" in body
    fw(ws, f"deploy {MODEL} --deployment-id never-made --max-replica-count 1")
    kill_while_held(bot, hold)
    assert sim.state.get_deployment("never-made") is None  # the create was never sent

    bot.start()
    # The claim is settled once the process that sent the create is gone for good (its presence
    # lease ran out), and the post in flight resumed once the new process holds the leader lease.
    ws.wait_for(lambda: any("Not created" in message_text(m) for m in ws.messages("U_DEV")), timeout=20)
    if hold.after_slack:
        ws.wait_for(lambda: any("Not created" in message_text(m) for m in posts(ws, CHANNEL, "never-made")),
                    timeout=20)
    time.sleep(2.5)  # a couple more passes
    assert sim.state.get_deployment("never-made") is None
    assert bot.db("SELECT COUNT(*) FROM deployments WHERE id = 'never-made'") == [(0,)]
    shown = posts(ws, CHANNEL, "never-made")
    # Either no tracking message ever showed, or the one that did now says it was not created.
    assert all("Creating" not in message_text(m) for m in shown), [message_text(m) for m in shown]
    if hold.after_slack:
        assert len(shown) == 1 and "Not created" in message_text(shown[0])
    dm = [m for m in ws.messages("U_DEV") if "never-made" in message_text(m) and "Not created" in message_text(m)]
    assert len(dm) == 1
    assert bot.db("SELECT result, detail FROM audit WHERE deployment_id = 'never-made' AND action = 'deploy'") == [
        ("error", "not created: fwbot stopped before Fireworks answered the create")]


def test_sigkill_while_an_auto_delete_notice_is_posted_announces_once(held, tmp_path):
    sim, ws, hold, new_bot = held
    env = {"FWBOT_WARN_BEFORE_DELETE": "20s", "FWBOT_METRICS_INTERVAL": "10s"}
    sim.config.relaxed = True
    bot = new_bot(**env)
    bot.start()
    fw(ws, f"deploy {MODEL} --deployment-id gone-soon --min-replica-count 1 --unused-auto-delete-duration 30s")
    ws.wait_for(lambda: bot.db("SELECT state FROM deployments WHERE id = 'gone-soon'") == [("READY",)], timeout=30)
    hold.after_slack = True
    hold.hold_when = lambda method, body: method == "chat.postMessage" and b"lc_undelete" in body
    kill_while_held(bot, hold, 90)  # Fireworks deleted it; Slack has the notice; fwbot never heard back
    assert sim.state.get_deployment("gone-soon")["state"] in ("DELETING", "DELETED")

    bot.start()
    ws.wait_for(lambda: bot.db("SELECT status FROM bot_actions WHERE kind = 'auto_delete'") == [("done",)],
                timeout=30)
    time.sleep(1.5)
    notices = [m for m in ws.messages(CHANNEL) if m.is_bot and "lc_undelete" in str(m.blocks)]
    deletes = sim.state.count_requests("DELETE", r".*/deployments/gone-soon")
    CRASHES["doubles"] += max(0, len(notices) - 1) + max(0, deletes - 1)
    CRASHES["losses"] += int(not notices)
    assert len(notices) == 1 and deletes == 1
    assert bot.db("SELECT COUNT(*) FROM audit WHERE action = 'auto-delete' AND result = 'ok'") == [(1,)]
