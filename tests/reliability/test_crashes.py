"""SIGKILL fwbot at its worst moments, start it again, and count: nothing lost, nothing twice.

The bot runs as ``python -m bot.cli run`` with its scheduler (sync every second); the simulator
and the Slack stand-in live in the test process, as Fireworks and Slack outlive a crashed bot.
"""

from __future__ import annotations

import time

import pytest

from tests.harness import CHANNEL, message_text
from tests.reliability.crashing import BotProcess, outside_world

pytestmark = pytest.mark.slow

MODEL = "llama-v3p1-8b-instruct"
CRASHES = {"crashes": 0, "losses": 0, "doubles": 0}


@pytest.fixture
def world(tmp_path):
    sim, ws = outside_world(create_seconds=1.0)
    bots: list[BotProcess] = []

    def bot(**env) -> BotProcess:
        b = BotProcess(tmp_path, sim, ws, env=env)
        bots.append(b)
        return b

    yield sim, ws, bot
    for b in bots:
        b.stop()
    ws.stop()
    sim.stop()


@pytest.fixture(scope="module", autouse=True)
def report_crashes():
    yield
    print(f"\ncrash tests: {CRASHES}")


def fw(ws, text: str, user: str = "U_DEV", channel: str = CHANNEL):
    delivery = ws.slash_command(user=user, channel=channel, text=text)
    assert delivery.status == 200, delivery
    return delivery


def ephemeral(ws, needle: str, user: str = "U_DEV", channel: str = CHANNEL, timeout: float = 20) -> str:
    return ws.wait_for(lambda: next((message_text(m) for m in reversed(ws.messages(channel))
                                     if m.ephemeral_to == user and needle in message_text(m)), None), timeout=timeout)


def top_level(ws, channel: str, needle: str) -> list:
    return [m for m in ws.messages(channel) if not m.is_reply and not m.ephemeral_to and not m.deleted
            and needle in message_text(m)]


def test_sigkill_while_a_create_is_in_flight(world):
    sim, ws, new_bot = world
    bot = new_bot()
    bot.start()
    fw(ws, "models")
    ephemeral(ws, "deployable base models")  # the catalog is cached; what follows is the create
    sim.faults.latency_ms = 2500
    fw(ws, f"deploy {MODEL} --deployment-id crash-create --max-replica-count 1")
    # The owner is claimed right before the create is sent: then the create is in flight.
    bot.wait_db("SELECT owner FROM deployments WHERE id = 'crash-create'")
    time.sleep(0.5)
    bot.kill()
    CRASHES["crashes"] += 1
    assert bot.db("SELECT state FROM deployments WHERE id = 'crash-create'") == [(None,)]
    sim.faults.latency_ms = 0
    # Fireworks finishes the request the dead bot sent.
    ws.wait_for(lambda: sim.state.get_deployment("crash-create"), timeout=10)

    restarted = time.time()
    bot.start()
    ws.wait_for(lambda: bot.db("SELECT state FROM deployments WHERE id = 'crash-create'")[0][0] == "READY",
                timeout=30)
    tracking = ws.wait_for(lambda: [m for m in top_level(ws, CHANNEL, "crash-create") if "READY" in message_text(m)],
                           timeout=30)
    # validateOnly + the one create (the simulator also notes its failed answer to the dead bot)
    creates = sim.state.count_requests("POST", r".*/deployments", status=200)
    again = [r for r in sim.state.requests if r.method == "POST" and r.t >= restarted]
    audit = bot.db("SELECT actor, action, result FROM audit WHERE deployment_id = 'crash-create'")
    owner = bot.db("SELECT owner, channel, created_by_bot FROM deployments WHERE id = 'crash-create'")
    names = [d.name for d in sim.state.deployments.values()]
    lost = int(owner != [("U_DEV", CHANNEL, 1)]) + int(audit != [("U_DEV", "deploy", "ok")])
    doubled = int(len(names) != 1) + int(creates != 2) + int(len(again) != 0) + int(len(tracking) != 1)
    CRASHES["losses"] += lost
    CRASHES["doubles"] += doubled
    assert len(names) == 1 and creates == 2 and again == []
    assert owner == [("U_DEV", CHANNEL, 1)]
    assert audit == [("U_DEV", "deploy", "ok")]
    assert len(top_level(ws, CHANNEL, "crash-create")) == 1
    assert "Traceback" not in bot.log().split("fwbot listening")[-1]


def test_sigkill_before_the_create_was_sent_creates_nothing_later(world):
    sim, ws, new_bot = world
    bot = new_bot()
    bot.start()
    fw(ws, "models")
    ephemeral(ws, "deployable base models")
    sim.faults.latency_ms = 2500  # the validateOnly call: killed while the bot is still checking
    fw(ws, f"deploy {MODEL} --deployment-id never-sent --max-replica-count 1")
    time.sleep(0.5)
    bot.kill()
    CRASHES["crashes"] += 1
    sim.faults.latency_ms = 0
    time.sleep(2.6)
    bot.start()
    time.sleep(2.5)  # a couple of sync passes
    assert sim.state.get_deployment("never-sent") is None
    assert bot.db("SELECT COUNT(*) FROM deployments WHERE id = 'never-sent'") == [(0,)]
    assert sim.state.count_requests("POST", r".*/deployments", status=200) == 1  # the validation only


APPROVAL_ENV = {"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20",
                "FWBOT_APPROVAL_CHANNEL": "C0APPROV"}


def approve_button(message) -> str | None:
    for block in message.blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == "approval_approve":
                return element.get("value")
    return None


@pytest.mark.parametrize("moment", ["before the create is sent", "while the create is in flight"])
def test_sigkill_between_an_approval_click_and_its_execution(world, moment):
    sim, ws, new_bot = world
    bot = new_bot(**APPROVAL_ENV)
    bot.start()
    fw(ws, "models")
    ephemeral(ws, "deployable base models")
    dep_id = "approved-" + ("early" if moment.startswith("before") else "late")
    fw(ws, f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 8 --accelerator-type h100")
    request = ws.wait_for(lambda: next((m for m in ws.messages("C0APPROV")
                                        if not m.thread_ts and approve_button(m)), None))
    token = approve_button(request)
    sim.faults.latency_ms = 2500  # the run re-validates, then creates: each call takes 2.5 s
    assert ws.click("U_APPROVER", "C0APPROV", request.ts, "approval_approve").status == 200
    if moment.startswith("before"):
        bot.wait_db("SELECT 1 FROM approvals WHERE id = ? AND executed_at IS NOT NULL", (token,))
    else:
        bot.wait_db("SELECT 1 FROM deployments WHERE id = ?", (dep_id,))
    time.sleep(0.5)
    bot.kill()
    CRASHES["crashes"] += 1
    assert bot.db("SELECT status, result FROM approvals WHERE id = ?", (token,)) == [("approved", None)]
    sim.faults.latency_ms = 0
    time.sleep(2.6)  # whatever the dead bot had sent has now reached Fireworks

    bot.start()
    rows = ws.wait_for(lambda: [r for r in bot.db("SELECT status, result FROM approvals WHERE id = ?", (token,))
                                if r[1]], timeout=30)
    ws.wait_for(lambda: bot.db("SELECT state FROM deployments WHERE id = ?", (dep_id,))[0][0] == "READY", timeout=30)
    time.sleep(1.5)  # a sync or two more: nothing further may happen
    result = rows[0][1]
    names = [n for n in sim.state.deployments]
    runs = bot.db("SELECT result FROM audit WHERE action = 'approved run'")
    deploys = bot.db("SELECT result FROM audit WHERE action = 'deploy' AND deployment_id = ?", (dep_id,))
    told = [m for m in ws.messages(ws.dm_channel("U_DEV")) if dep_id in message_text(m)
            and ("approved" in message_text(m).lower() or "ran" in message_text(m).lower())]
    lost = int('"ok": true' not in result) + int(not told)
    doubled = int(names != [dep_id]) + int(len(runs) != 1) + int(deploys.count(("ok",)) != 1) + int(len(told) > 1)
    CRASHES["losses"] += lost
    CRASHES["doubles"] += doubled
    assert names == [dep_id]
    assert '"ok": true' in result, result
    assert runs == [("ok",)]
    assert deploys.count(("ok",)) == 1, deploys
    assert len(told) == 1, [message_text(m) for m in told]
    assert bot.db("SELECT owner FROM deployments WHERE id = ?", (dep_id,)) == [("U_DEV",)]
