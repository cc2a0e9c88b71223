"""SIGKILL fwbot at its worst moments, start it again, and count: nothing lost, nothing twice.

The bot runs as ``python -m bot.app.cli run`` with its scheduler (sync every second); the simulator
and the Slack stand-in live in the test process, as Fireworks and Slack outlive a crashed bot.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import FakeClock
from tests.harness import CHANNEL, message_text
from tests.reliability.crashing import BotProcess, SlackHold, outside_world

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
        bot.wait_db("SELECT 1 FROM approvals WHERE id = :id AND executed_at IS NOT NULL", {"id": token})
    else:
        bot.wait_db("SELECT 1 FROM deployments WHERE id = :id", {"id": dep_id})
    time.sleep(0.5)
    bot.kill()
    CRASHES["crashes"] += 1
    assert bot.db("SELECT status, result FROM approvals WHERE id = :id", {"id": token}) == [("approved", None)]
    sim.faults.latency_ms = 0
    time.sleep(2.6)  # whatever the dead bot had sent has now reached Fireworks

    bot.start()
    rows = ws.wait_for(lambda: [r for r in bot.db("SELECT status, result FROM approvals WHERE id = :id", {"id": token})
                                if r[1]], timeout=30)
    ws.wait_for(lambda: bot.db("SELECT state FROM deployments WHERE id = :id", {"id": dep_id})[0][0] == "READY", timeout=30)
    time.sleep(1.5)  # a sync or two more: nothing further may happen
    result = rows[0][1]
    names = [n for n in sim.state.deployments]
    runs = bot.db("SELECT result FROM audit WHERE action = 'approved run'")
    deploys = bot.db("SELECT result FROM audit WHERE action = 'deploy' AND deployment_id = :id", {"id": dep_id})
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
    assert bot.db("SELECT owner FROM deployments WHERE id = :id", {"id": dep_id}) == [("U_DEV",)]


def backdate(bot: BotProcess, sql: str, params: dict | None = None) -> None:
    """Move a stopped bot's clock-derived columns into the past: the time it would otherwise wait."""
    bot.write(sql, params)


def iso_ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def deploy_and_wait(ws, bot: BotProcess, dep_ids: list[str], extra: str = "") -> None:
    for dep_id in dep_ids:
        fw(ws, f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 1 {extra}".strip())
    ws.wait_for(lambda: all(bot.db("SELECT state FROM deployments WHERE id = :id", {"id": d}) == [("READY",)]
                            for d in dep_ids), timeout=60)


def warning_posts(ws, channel: str, dep_id: str) -> list:
    """Messages carrying a warning's buttons for one deployment (each warning has its own token)."""
    return [m for m in ws.messages(channel) if not m.deleted and "lc_keep_warm_1h" in json.dumps(m.blocks or [])
            and dep_id in message_text(m)]


@pytest.mark.parametrize("gap", ["before Slack has the post", "after Slack has it, before fwbot records it"])
def test_sigkill_during_a_sweep_that_is_sending_warnings(tmp_path, gap):
    # Fireworks' clock runs 55 minutes behind, so the deployments it creates were created then.
    fireworks_clock = FakeClock(datetime.now(UTC) - timedelta(seconds=3305))
    sim, ws = outside_world(clock=fireworks_clock, create_seconds=1.0)
    hold = SlackHold(ws)
    env = {"SLACK_API_URL": hold.api_url, "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "10m"}
    bot = BotProcess(tmp_path, sim, ws, env=env)
    deps = ["warn-a", "warn-b", "warn-c"]
    try:
        # One channel each: a sweep sends one digest per channel, so three channels, three posts.
        where = {dep_id: ws.add_channel(f"C0{dep_id.upper().replace('-', '')}", dep_id).id for dep_id in deps}
        bot.start()
        for dep_id in deps:
            fw(ws, f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 1", channel=where[dep_id])
        ws.wait_for(lambda: len(sim.state.deployments) == 3, timeout=30)
        fireworks_clock.advance(2)
        ws.wait_for(lambda: all(bot.db("SELECT state FROM deployments WHERE id = :id", {"id": d}) == [("READY",)]
                                for d in deps), timeout=60)
        bot.stop()
        # As if they had been idle for 55 minutes: the warning 10 minutes before Fireworks scales
        # them to zero (after its default 1-hour window) is due now, for all three at once.
        for dep_id in deps:
            backdate(bot, "UPDATE deployments SET ready_at = :at WHERE id = :id", {"at": iso_ago(3300), "id": dep_id})
            points = bot.db("SELECT at FROM replica_history WHERE deployment_id = :id ORDER BY at", {"id": dep_id})
            for i, (at,) in enumerate(points):
                backdate(bot, "UPDATE replica_history SET at = :new WHERE deployment_id = :id AND at = :old",
                         {"new": iso_ago(3300 - i), "id": dep_id, "old": at})
        # Hold the second warning post: the kill lands while it is in flight.
        seen = []

        def second_warning(method: str, body: bytes) -> bool:
            if method == "chat.postMessage" and b"lc_keep_warm_1h" in body:
                seen.append(method)
                return len(seen) == 2
            return False

        hold.after_slack = gap.startswith("after")
        hold.hold_when = second_warning
        bot.start()
        assert hold.holding.wait(30), bot.log()[-2000:]
        bot.kill()
        CRASHES["crashes"] += 1
        hold.release.set()
        before = {d: len(warning_posts(ws, where[d], d)) for d in deps}
        assert sorted(before.values()) == ([0, 1, 1] if hold.after_slack else [0, 0, 1])

        bot.start()
        ws.wait_for(lambda: bot.db("SELECT COUNT(*) FROM warnings WHERE status = 'sent'") == [(3,)], timeout=30)
        time.sleep(2.5)  # more sweeps: nothing further may be posted
        posts = {d: len(warning_posts(ws, where[d], d)) for d in deps}
        rows = bot.db("SELECT deployment_id, COUNT(*) FROM warnings GROUP BY deployment_id")
        lost = sum(1 for n in posts.values() if n == 0)
        doubled = sum(n - 1 for n in posts.values() if n > 1)
        CRASHES["losses"] += lost
        CRASHES["doubles"] += doubled
        CRASHES.setdefault("warning posts in flight at the kill, posted again", 0)
        CRASHES["warning posts in flight at the kill, posted again"] += doubled
        assert sorted(rows) == [(d, 1) for d in deps]  # one warning per (deployment, timer, due)
        assert lost == 0
        # A post Slack accepted but fwbot never heard back about is found in the channel's
        # history by the key in its metadata, so not even that one appears twice.
        assert doubled == 0, posts
    finally:
        bot.stop()
        hold.stop()
        ws.stop()
        sim.stop()


def test_sigkill_during_a_keep_warm_revert(world):
    sim, ws, new_bot = world
    bot = new_bot()
    bot.start()
    deploy_and_wait(ws, bot, ["warm-1"])
    fw(ws, "keep warm-1 1h")
    ephemeral(ws, "warm")
    ws.wait_for(lambda: sim.state.get_deployment("warm-1")["minReplicaCount"] == 1, timeout=20)
    bot.stop()
    backdate(bot, "UPDATE bot_actions SET due_at = :at WHERE kind = 'keep_warm_revert'", {"at": iso_ago(1)})

    sim.faults.latency_ms = 1500
    started = time.time()
    patches = lambda since: [r for r in sim.state.requests  # noqa: E731
                             if r.method == "PATCH" and r.t >= since and r.status == 200]
    bot.start()
    # The revert reads the deployment, then PATCHes it: kill while the PATCH is in flight.
    ws.wait_for(lambda: len([r for r in sim.state.requests if r.method == "GET" and r.t >= started
                             and r.path.endswith("/deployments/warm-1")]) >= 3, timeout=30)
    time.sleep(0.4)
    bot.kill()
    CRASHES["crashes"] += 1
    sim.faults.latency_ms = 0
    time.sleep(1.6)
    restarted = time.time()
    bot.start()
    revert = "SELECT status, result FROM bot_actions WHERE kind = 'keep_warm_revert' AND payload LIKE '%restore_min%'"
    ws.wait_for(lambda: bot.db(revert)[0][0] == "done", timeout=30)
    time.sleep(2)
    notes = [m for m in ws.messages(CHANNEL) if m.is_reply and "keep-warm of `warm-1` ended" in message_text(m).lower()]
    min_now = sim.state.get_deployment("warm-1")["minReplicaCount"]
    total_patches = len(patches(started))
    lost = int(min_now != 0) + int(len(notes) == 0)
    doubled = int(len(notes) > 1) + int(len(patches(restarted)) > 0)
    CRASHES["losses"] += lost
    CRASHES["doubles"] += doubled
    assert min_now == 0
    assert "back to 0" in bot.db(revert)[0][1]
    assert bot.db("SELECT COUNT(*) FROM audit WHERE deployment_id = 'warm-1' AND action = 'update' "
                  "AND actor = 'fwbot'") == [(1,)]
    assert total_patches == 1 and patches(restarted) == []  # the dead run's PATCH landed; no second one
    assert len(notes) == 1, [message_text(m) for m in ws.messages(CHANNEL) if m.is_reply]


def test_sigkill_while_a_scheduled_scale_down_is_under_way_does_it_once(world):
    sim, ws, new_bot = world
    bot = new_bot(FWBOT_TIMEZONE="UTC")
    bot.start()
    deploy_and_wait(ws, bot, ["sched-1"], "--min-replica-count 1")
    # Owned by U_DEV (Europe/Berlin): a daily scale-down two minutes ago in Berlin's wall clock.
    from zoneinfo import ZoneInfo

    two_ago = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(ZoneInfo("Europe/Berlin"))
    fw(ws, f'schedule sched-1 --down "{two_ago:%H:%M} daily"')
    ephemeral(ws, "scheduled")
    bot.stop()
    # As if it had been set ten minutes ago: the scale-down two minutes ago is due at the start.
    backdate(bot, "UPDATE schedules SET set_at = :at WHERE deployment_id = 'sched-1'", {"at": iso_ago(600)})

    sim.faults.latency_ms = 1500
    started = time.time()
    calls = lambda since, what: [r for r in sim.state.requests  # noqa: E731
                                 if r.method == "PATCH" and r.t >= since and r.status == 200 and what(r.path)]
    bot.start()
    # The transition reads the deployment, PATCHes min replicas to 0, then scales: kill mid-PATCH.
    bot.wait_db("SELECT key FROM bot_actions WHERE kind = 'schedule_down' AND status = 'running'", timeout=30)
    ws.wait_for(lambda: any(r.method == "PATCH" for r in sim.state.requests if r.t >= started) or
                sim.state.get_deployment("sched-1")["minReplicaCount"] == 0, timeout=30)
    time.sleep(0.3)
    bot.kill()
    CRASHES["crashes"] += 1
    sim.faults.latency_ms = 0
    time.sleep(1.6)
    bot.start()
    action = "SELECT status, attempts FROM bot_actions WHERE kind = 'schedule_down'"
    ws.wait_for(lambda: bot.db(action) and bot.db(action)[0][0] == "done", timeout=30)
    time.sleep(2.5)  # more sweeps: nothing further may happen
    dep = sim.state.get_deployment("sched-1")
    notes = [m for m in ws.messages(CHANNEL) if m.is_reply and "to zero on its schedule" in message_text(m)
             and "fwbot scaled" in message_text(m)]
    scales = calls(started, lambda p: p.endswith(":scale"))
    lost = int((dep["minReplicaCount"], dep["replicaCount"]) != (0, 0)) + int(not notes)
    doubled = int(len(notes) > 1) + int(len(scales) > 1) + int(len(bot.db(action)) > 1)
    CRASHES["losses"] += lost
    CRASHES["doubles"] += doubled
    assert (dep["minReplicaCount"], dep["replicaCount"]) == (0, 0)
    assert len(bot.db(action)) == 1 and bot.db(action)[0][1] >= 2  # one transition, run again after the kill
    assert len(scales) == 1, scales
    assert len(notes) == 1, [message_text(m) for m in notes]
    assert bot.db("SELECT COUNT(*) FROM audit WHERE deployment_id = 'sched-1' AND action = 'scheduled scale-down'") \
        == [(1,)]
