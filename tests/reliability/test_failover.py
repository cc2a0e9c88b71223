"""Three ``fwbot run`` replicas on one SQLite file: exactly one leads. SIGKILL it, or SIGSTOP it
past its lease, while the sweep has warnings and actions due, and measure: how long until another
replica leads and has swept, how many warnings went out twice, how many actions were lost.

The simulator and the Slack stand-in live in the test process; each replica reaches Slack through
its own pass-through, so every Web API call is known by the replica that made it.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import iso
from tests.fixtures.databases import database_url
from tests.fixtures.lifecycle import MODEL, is_warning
from tests.harness import message_text
from tests.reliability.crashing import BotProcess, SlackHold, outside_world

pytestmark = pytest.mark.slow

LEASE_S = 3.0
ENV = {"FWBOT_SYNC_INTERVAL": "1s", "FWBOT_LEADER_LEASE": f"{LEASE_S:g}s", "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "10s"}
# Deployments whose scale-to-zero warning falls due (10 s before a window of 22 s to 30 s runs
# out): two together, as the failure strikes, and two while and after another replica takes over.
# A warning the new leader could post only after Fireworks acted would be no warning: the lead
# is longer than a take-over.
WARNED = {"w-a": "22s", "w-b": "22s", "w-c": "26s", "w-d": "30s"}
KEPT_WARM = ["k-a", "k-b"]  # each with a keep-warm whose revert falls due as the failure strikes
FIGURES: dict[str, dict] = {}


@dataclass
class Replica:
    bot: BotProcess
    slack: SlackHold
    calls: list[tuple[float, str]] = field(default_factory=list)  # (time, Web API method)

    def get(self, path: str, timeout: float = 0.5) -> str | None:
        try:
            with urllib.request.urlopen(f"{self.bot.url}{path}", timeout=timeout) as resp:
                return resp.read().decode()
        except OSError:
            return None  # dead, paused, or too slow to answer: no answer

    def health(self) -> dict | None:
        text = self.get("/healthz")
        return json.loads(text) if text else None

    def metric(self, name: str, **labels: str) -> float:
        """A sample of this replica's /metrics (0 when it has none)."""
        text = self.get("/metrics", timeout=2) or ""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+]+)"
        found = re.search(r"^" + pattern + "$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def spy(self, method: str, body: bytes) -> bool:
        """The pass-through's hook: sees every call, holds none."""
        self.calls.append((time.monotonic(), method))
        return False

    def posts_since(self, t: float) -> list[float]:
        return [at for at, method in self.calls if method == "chat.postMessage" and at >= t]


class Cluster:
    def __init__(self, tmp_path) -> None:
        self.tmp = tmp_path
        self.sim, self.ws = outside_world(create_seconds=1.0, relaxed=True)
        self.db_path = database_url(tmp_path)  # one database for the three: a SQLite file, or PostgreSQL
        self.replicas: list[Replica] = []
        for i in range(3):
            slack = SlackHold(self.ws)
            replica = Replica(BotProcess(tmp_path, self.sim, self.ws, env={**ENV, "SLACK_API_URL": slack.api_url},
                                         name=f"replica-{i}", db_path=self.db_path), slack)
            slack.hold_when = replica.spy
            self.replicas.append(replica)

    def start(self) -> None:
        failures: list[BaseException] = []

        def start(r: Replica) -> None:
            try:
                r.bot.start(timeout=60)
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)

        threads = [threading.Thread(target=start, args=(r,)) for r in self.replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]

    def stop(self) -> None:
        for r in self.replicas:
            if r.bot.proc is not None and r.bot.proc.poll() is None:
                r.bot.proc.send_signal(signal.SIGCONT)
            r.bot.stop()
            r.slack.stop()
        self.ws.stop()
        self.sim.stop()

    def db(self, sql: str, params: dict | None = None) -> list[tuple]:
        return self.replicas[0].bot.db(sql, params)

    def write(self, sql: str, params: dict | None = None) -> None:
        self.replicas[0].bot.write(sql, params)

    def leaders(self, among: list[Replica]) -> list[Replica]:
        return [r for r in among if (h := r.health()) is not None and h.get("role") == "leader"]

    def wait_for_a_leader(self, among: list[Replica], timeout: float) -> Replica:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.leaders(among)
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no leader among {[r.bot.name for r in among]} within {timeout}s\n"
                             + "\n".join(r.bot.log()[-1500:] for r in among))

    def fw(self, text: str, channel: str) -> None:
        assert self.ws.slash_command(user="U_DEV", channel=channel, text=text).status == 200

    def thread(self, dep_id: str) -> list:
        channel = f"C0{dep_id.upper().replace('-', '')}"
        parent = next(m for m in self.ws.messages(channel) if not m.is_reply and m.ephemeral_to is None
                      and m.is_bot and f"{dep_id}:" in m.text)
        return [m for m in self.ws.thread(channel, parent.ts) if m.ts != parent.ts]

    def warnings(self, dep_id: str) -> list:
        try:
            return [m for m in self.thread(dep_id) if is_warning(m)]
        except StopIteration:
            return []

    def revert_notes(self, dep_id: str) -> list:
        try:
            return [m for m in self.thread(dep_id) if f"Keep-warm of `{dep_id}` ended" in message_text(m)]
        except StopIteration:
            return []


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module", autouse=True)
def report_figures():
    yield
    for name, figures in FIGURES.items():
        print(f"\n{name}: {figures}")


def set_up_due_work(c: Cluster) -> Replica:
    """Three replicas, one leader; deployments whose warnings and keep-warm reverts fall due next."""
    c.start()
    leaders = c.leaders(c.replicas)
    assert len(leaders) == 1, [r.health() for r in c.replicas]
    leader = leaders[0]
    healths = [r.health() for r in c.replicas]
    assert {h["leader"] for h in healths} == {h["replica"] for h in healths if h["role"] == "leader"}
    assert sorted(h["role"] for h in healths) == ["follower", "follower", "leader"]
    assert leader.metric("fwbot_leader") == 1.0
    assert [r.metric("fwbot_leader") for r in c.replicas if r is not leader] == [0.0, 0.0]
    # Slack's requests go to a follower: followers serve Slack.
    c.ws.events_url = f"{next(r for r in c.replicas if r is not leader).bot.url}/slack/events"
    for dep_id in [*WARNED, *KEPT_WARM]:
        channel = c.ws.add_channel(f"C0{dep_id.upper().replace('-', '')}", dep_id).id
        window = WARNED.get(dep_id, "1h")
        c.fw(f"deploy {MODEL} --deployment-id {dep_id} --accelerator-type h100 --scale-to-zero-window {window}",
             channel)
    c.ws.wait_for(lambda: all(c.db("SELECT state FROM deployments WHERE id = :id", {"id": d}) == [("READY",)]
                              for d in [*WARNED, *KEPT_WARM]), timeout=30)
    for dep_id in KEPT_WARM:
        c.fw(f"keep {dep_id} 1h", f"C0{dep_id.upper().replace('-', '')}")
    c.ws.wait_for(lambda: all(c.sim.state.get_deployment(d)["minReplicaCount"] == 1 for d in KEPT_WARM)
                  and len(c.db("SELECT 1 FROM bot_actions WHERE kind = 'keep_warm_revert'")) == 2, timeout=20)
    return leader


def fail_when_the_sweep_is_busy(c: Cluster, leader: Replica, how: signal.Signals) -> float:
    """At the first of two warnings due together, with one revert due and one due a moment later:
    SIGKILL or SIGSTOP the leader. Returns when (monotonic)."""
    c.ws.wait_for(lambda: c.warnings("w-a") or c.warnings("w-b") or leader.slack.holding.is_set(), timeout=30)
    now = datetime.now(UTC)
    for dep_id, due in zip(KEPT_WARM, (now - timedelta(seconds=1), now + timedelta(seconds=2)), strict=True):
        c.write("UPDATE bot_actions SET due_at = :at WHERE kind = 'keep_warm_revert' AND deployment_id = :id",
                {"at": iso(due), "id": dep_id})
    time.sleep(0.3)  # the leader's next sweep (every second) takes the due revert in hand
    failed_at = time.monotonic()
    leader.bot.proc.send_signal(how)  # type: ignore[union-attr]
    if how == signal.SIGKILL:
        leader.bot.proc.wait(timeout=10)  # type: ignore[union-attr]
    return failed_at


def take_over(c: Cluster, leader: Replica, failed_at: float) -> tuple[Replica, dict]:
    """Wait for another replica to lead and to finish its first sweep; the times it took."""
    others = [r for r in c.replicas if r is not leader]
    new = c.wait_for_a_leader(others, timeout=4 * LEASE_S + 10)
    took_over = time.monotonic() - failed_at
    deadline = time.monotonic() + 20
    while new.metric("fwbot_job_runs_total", job="lifecycle", result="ok") < 1:
        assert time.monotonic() < deadline, new.bot.log()[-2000:]
        time.sleep(0.05)
    swept = time.monotonic() - failed_at
    assert len(c.leaders(others)) == 1
    [(holder, token)] = c.db("SELECT holder, token FROM leases WHERE name = 'scheduler'")
    assert new.health()["replica"] == holder and token == 2  # type: ignore[index]
    assert new.metric("fwbot_lease_takeovers_total") == 1.0
    return new, {"take-over s": round(took_over, 2), "first sweep s": round(swept, 2)}


def count_outcomes(c: Cluster) -> dict:
    """Wait until every due warning and revert has had its chance; count what went out twice or not at all."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = c.db("SELECT COUNT(*) FROM bot_actions WHERE kind = 'keep_warm_revert' AND status = 'done'")
        if all(c.warnings(d) for d in WARNED) and done == [(2,)] and all(c.revert_notes(d) for d in KEPT_WARM):
            break
        time.sleep(0.1)
    time.sleep(2.0)  # more sweeps: nothing further may be posted
    warnings = {d: len(c.warnings(d)) for d in WARNED}
    notes = {d: len(c.revert_notes(d)) for d in KEPT_WARM}
    reverted = {d: c.sim.state.get_deployment(d)["minReplicaCount"] for d in KEPT_WARM}
    patches = {d: c.sim.state.count_requests("PATCH", rf".*/deployments/{d}", status=200) for d in KEPT_WARM}
    actions = dict(c.db("SELECT deployment_id, status FROM bot_actions WHERE kind = 'keep_warm_revert'"))
    rows = dict(c.db("SELECT deployment_id, COUNT(*) FROM warnings GROUP BY deployment_id"))
    return {
        "duplicate warnings": sum(n - 1 for n in warnings.values() if n > 1),
        "lost warnings": sum(1 for n in warnings.values() if n == 0),
        # Each keep-warm PATCHes once to raise min replicas and once to put it back.
        "duplicate actions": sum(n - 1 for n in notes.values() if n > 1) + sum(max(0, n - 2) for n in patches.values()),
        "lost actions": sum(1 for d in KEPT_WARM if actions.get(d) != "done" or reverted[d] != 0 or notes[d] == 0),
        "warning rows": rows,
    }


def test_sigkill_the_leader_while_it_sweeps_another_replica_takes_over(cluster):
    c = cluster
    leader = set_up_due_work(c)
    failed_at = fail_when_the_sweep_is_busy(c, leader, signal.SIGKILL)
    new, figures = take_over(c, leader, failed_at)
    figures.update(count_outcomes(c))
    FIGURES["SIGKILL of the leader"] = figures
    assert figures["take-over s"] <= 2 * LEASE_S + 3, figures
    assert figures["warning rows"] == dict.fromkeys(WARNED, 1)  # one warning per (deployment, timer, due)
    assert figures["duplicate warnings"] == 0 and figures["lost warnings"] == 0, figures
    assert figures["duplicate actions"] == 0 and figures["lost actions"] == 0, figures
    assert c.ws.rate_violations == []


def test_a_paused_leader_that_wakes_after_losing_the_lease_does_nothing(cluster):
    c = cluster
    leader = set_up_due_work(c)

    def first_warning(method: str, body: bytes) -> bool:
        leader.spy(method, body)
        return method == "chat.postMessage" and b"lc_keep_warm_1h" in body

    # The leader is paused in the middle of its sweep: Slack has taken its first warning post, and
    # the answer is held back from it until it is resumed.
    leader.slack.after_slack = True
    leader.slack.hold_when = first_warning
    paused_at = fail_when_the_sweep_is_busy(c, leader, signal.SIGSTOP)
    assert leader.slack.holding.is_set()
    leader.slack.hold_when = leader.spy
    new, figures = take_over(c, leader, paused_at)
    time.sleep(max(0.0, paused_at + LEASE_S + 0.5 - time.monotonic()))  # paused longer than a whole lease
    resumed_at = time.monotonic()
    leader.bot.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    leader.slack.release.set()  # the post it was waiting for is answered now
    # It wakes up believing it leads; its own clock and the lease say otherwise.
    deadline = time.monotonic() + 3 * LEASE_S
    while (leader.health() or {}).get("role") != "follower":
        assert time.monotonic() < deadline, leader.bot.log()[-2000:]
        time.sleep(0.05)
    figures["follower again after resume s"] = round(time.monotonic() - resumed_at, 2)
    figures.update(count_outcomes(c))
    figures["posts by the resumed replica"] = len(leader.posts_since(resumed_at))
    FIGURES["SIGSTOP of the leader past its lease"] = figures
    assert leader.metric("fwbot_leader") == 0.0 and new.metric("fwbot_leader") == 1.0
    assert len(c.leaders(c.replicas)) == 1
    assert figures["posts by the resumed replica"] == 0, figures
    assert figures["warning rows"] == dict.fromkeys(WARNED, 1)
    assert figures["duplicate warnings"] == 0 and figures["lost warnings"] == 0, figures
    assert figures["duplicate actions"] == 0 and figures["lost actions"] == 0, figures
    assert "Traceback" not in leader.bot.log()
