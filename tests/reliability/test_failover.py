"""Three ``fwbot run`` replicas on one database (the run's engine: a SQLite file, or PostgreSQL):
exactly one leads. SIGKILL it, or SIGSTOP it past its lease, while its sweep is posting warnings,
deleting unused deployments and reverting keep-warms, and while Slack sends a stream of commands
and approval clicks to the others; then measure how long until another replica leads and has
swept, and count warnings posted twice or lost, actions (deletes, reverts) done twice or lost,
and approvals lost.

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
from tests.harness import APPROVALS, message_text
from tests.reliability.crashing import BotProcess, SlackHold, outside_world

pytestmark = pytest.mark.slow

LEASE_S = 3.0
ENV = {"FWBOT_SYNC_INTERVAL": "1s", "FWBOT_LEADER_LEASE": f"{LEASE_S:g}s", "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "10s",
       "FWBOT_WARN_BEFORE_DELETE": "8s", "FWBOT_APPROVERS": "U_APPROVER",
       "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20", "FWBOT_APPROVAL_CHANNEL": APPROVALS}
# Deployments whose scale-to-zero warning falls due (10 s before a window of 22 s to 30 s runs
# out): two together, as the failure strikes, and two while and after another replica takes over.
# A warning the new leader could post only after Fireworks acted would be no warning: the lead
# is longer than a take-over.
WARNED = {"w-a": "22s", "w-b": "22s", "w-c": "26s", "w-d": "30s"}
KEPT_WARM = ["k-a", "k-b"]  # each with a keep-warm whose revert falls due as the failure strikes
# Deployments fwbot deletes once unused this long: due around the failure and the take-over.
DELETED = {"d-a": "26s", "d-b": "30s"}
COSTLY = "--accelerator-type h100 --accelerator-count 4"  # $32/h: above the $20/h approval threshold
APPROVED = ["c-1", "c-2", "c-3"]  # asked for before (two) and during (one) the take-over, approved during it
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

    def ask_approval(self, dep_id: str) -> None:
        self.fw(f"deploy {MODEL} --deployment-id {dep_id} {COSTLY}", "C0MLPLAT")

    def approval_message(self, dep_id: str):
        return next((m for m in self.ws.messages(APPROVALS) if not m.is_reply and m.is_bot
                     and f"`{dep_id}`" in message_text(m)), None)

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

    def deleted_notes(self, dep_id: str) -> list:
        try:
            # The notice of the delete (the warning before it is edited to say so too: not a notice).
            return [m for m in self.thread(dep_id) if m.text.startswith(f"{dep_id} was deleted")]
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
    for dep_id, unused in DELETED.items():
        channel = c.ws.add_channel(f"C0{dep_id.upper().replace('-', '')}", dep_id).id
        c.fw(f"deploy {MODEL} --deployment-id {dep_id} --accelerator-type h100 --unused-auto-delete-duration {unused}",
             channel)
    c.ws.wait_for(lambda: all(c.db("SELECT state FROM deployments WHERE id = :id", {"id": d}) == [("READY",)]
                              for d in DELETED), timeout=30)
    for dep_id in APPROVED[:2]:  # two requests wait for an approver as the failure strikes
        c.ask_approval(dep_id)
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


class Stream:
    """Slack keeps talking while the leader fails: commands to the replica Slack reaches (a
    follower), one more approval request, and an approver's click on every request."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.statuses: list[int] = []
        self.clicked: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slack-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        c = self.c
        c.ask_approval(APPROVED[2])
        commands = ["list all", "get w-a", "get d-a", "list"]
        i = 0
        while not self._stop.is_set():
            delivery = c.ws.slash_command(user="U_OTHER", channel="C0MLPLAT", text=commands[i % len(commands)])
            self.statuses.append(delivery.status)
            for dep_id in APPROVED:
                msg = c.approval_message(dep_id) if dep_id not in self.clicked else None
                if msg is not None:
                    self.statuses.append(c.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve").status)
                    self.clicked.add(dep_id)
            i += 1
            self._stop.wait(0.1)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=30)
        return {"requests sent": len(self.statuses), "requests not acked": sum(1 for s in self.statuses if s != 200)}


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
        approved = c.db("SELECT COUNT(*) FROM approvals WHERE status = 'approved' AND result IS NOT NULL")
        if (all(c.warnings(d) for d in WARNED) and done == [(2,)] and all(c.revert_notes(d) for d in KEPT_WARM)
                and approved == [(len(APPROVED),)] and all(c.deleted_notes(d) for d in DELETED)):
            break
        time.sleep(0.1)
    time.sleep(2.0)  # more sweeps: nothing further may be posted
    warnings = {d: len(c.warnings(d)) for d in WARNED}
    notes = {d: len(c.revert_notes(d)) for d in KEPT_WARM}
    reverted = {d: c.sim.state.get_deployment(d)["minReplicaCount"] for d in KEPT_WARM}
    patches = {d: c.sim.state.count_requests("PATCH", rf".*/deployments/{d}", status=200) for d in KEPT_WARM}
    actions = dict(c.db("SELECT deployment_id, status FROM bot_actions WHERE kind = 'keep_warm_revert'"))
    rows = {d: n for d, n in c.db("SELECT deployment_id, COUNT(*) FROM warnings WHERE timer = 'scale_to_zero' "
                                  "GROUP BY deployment_id") if d in WARNED}
    deletes = {d: c.sim.state.count_requests("DELETE", rf".*/deployments/{d}", status=200) for d in DELETED}
    deleted_notes = {d: len(c.deleted_notes(d)) for d in DELETED}
    gone = {d: (w := c.sim.state.get_deployment(d)) is None or w.get("state") in ("DELETED", "DELETING")
            for d in DELETED}
    approvals = {r[0]: r[1:] for r in c.db("SELECT deployment_id, status, result FROM approvals")}
    # An approved request is carried out once: one 'approved run' in the audit, one deployment.
    creates = {d: len(c.db("SELECT 1 FROM audit WHERE action = 'approved run' AND deployment_id = :d", {"d": d}))
               if c.sim.state.get_deployment(d) is not None else 0 for d in APPROVED}
    return {
        "duplicate warnings": sum(n - 1 for n in warnings.values() if n > 1),
        "lost warnings": sum(1 for n in warnings.values() if n == 0),
        # Each keep-warm PATCHes once to raise min replicas and once to put it back.
        "duplicate actions": sum(n - 1 for n in notes.values() if n > 1) + sum(max(0, n - 2) for n in patches.values()),
        "lost actions": sum(1 for d in KEPT_WARM if actions.get(d) != "done" or reverted[d] != 0 or notes[d] == 0),
        "duplicate deletes": sum(max(0, n - 1) for n in deletes.values()) + sum(max(0, n - 1) for n in deleted_notes.values()),
        "lost deletes": sum(1 for d in DELETED if not gone[d] or deleted_notes[d] == 0),
        "lost approvals": sum(1 for d in APPROVED if approvals.get(d, ("", None))[0] != "approved"
                              or approvals[d][1] is None or creates[d] != 1),
        "duplicate approved runs": sum(max(0, n - 1) for n in creates.values()),
        "warning rows": rows,
        "DELETE calls": deletes,
        "deleted notes": deleted_notes,
    }


def test_sigkill_the_leader_while_it_sweeps_another_replica_takes_over(cluster):
    c = cluster
    leader = set_up_due_work(c)
    failed_at = fail_when_the_sweep_is_busy(c, leader, signal.SIGKILL)
    stream = Stream(c)
    new, figures = take_over(c, leader, failed_at)
    figures.update(count_outcomes(c))
    figures.update(stream.stop())
    FIGURES["SIGKILL of the leader"] = figures
    assert figures["take-over s"] <= 2 * LEASE_S + 3, figures
    assert figures["warning rows"] == dict.fromkeys(WARNED, 1)  # one warning per (deployment, timer, due)
    assert figures["duplicate warnings"] == 0 and figures["lost warnings"] == 0, figures
    assert figures["duplicate actions"] == 0 and figures["lost actions"] == 0, figures
    assert figures["duplicate deletes"] == 0 and figures["lost deletes"] == 0, figures
    assert figures["lost approvals"] == 0 and figures["duplicate approved runs"] == 0, figures
    assert figures["requests not acked"] == 0, figures
    # Each replica paces its own posts (one a second per channel); two replicas may post to one
    # channel within a second of each other (README: Running several replicas). Counted, not hidden.
    figures["posts <1 s apart in a channel"] = len(c.ws.rate_violations)


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
    stream = Stream(c)
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
    figures.update(stream.stop())
    figures["posts by the resumed replica"] = len(leader.posts_since(resumed_at))
    FIGURES["SIGSTOP of the leader past its lease"] = figures
    assert leader.metric("fwbot_leader") == 0.0 and new.metric("fwbot_leader") == 1.0
    assert len(c.leaders(c.replicas)) == 1
    assert figures["posts by the resumed replica"] == 0, figures
    assert figures["warning rows"] == dict.fromkeys(WARNED, 1)
    assert figures["duplicate warnings"] == 0 and figures["lost warnings"] == 0, figures
    assert figures["duplicate actions"] == 0 and figures["lost actions"] == 0, figures
    assert figures["duplicate deletes"] == 0 and figures["lost deletes"] == 0, figures
    assert figures["lost approvals"] == 0 and figures["duplicate approved runs"] == 0, figures
    assert figures["requests not acked"] == 0, figures
    assert "Traceback" not in leader.bot.log()
