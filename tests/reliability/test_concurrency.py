"""Many people at once against one SQLite file, with the scheduler's writers running alongside.

Thirty users deploy, keep warm, hand over and look at deployments at the same moment while the
reconcile loop and the lifecycle sweep write the same rows in a tight loop. Nothing may be
refused for ``database is locked``, and no write may be lost (owners, audit rows, reverts).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.services.lifecycle import LifecycleEngine
from tests.harness import start_stack
from tests.reliability.conftest import LogCapture

pytestmark = pytest.mark.slow

MODEL = "llama-v3p1-8b-instruct"
USERS = [f"UC{i:03d}" for i in range(30)]


def channel_of(uid: str) -> str:
    return "C" + uid

@pytest.fixture
def stack(tmp_path):
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.5})
    for uid in USERS:
        s.ws.add_user(uid, uid.lower())
        # One channel each: Slack's one-post-per-second-per-channel pacing is not under test here.
        s.ws.add_channel(channel_of(uid), f"team-{uid.lower()}")
    yield s
    s.stop()


class Background:
    """The scheduler's writers (sync and sweep), looping until stopped."""

    def __init__(self, stack) -> None:
        self.stack, self.stop, self.runs, self.failures = stack, threading.Event(), 0, []
        self.engine = LifecycleEngine(stack.services)
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.stack.sync()
                self.engine.sweep()
                self.runs += 1
                self.stop.wait(0.01)
            except Exception as e:  # noqa: BLE001 - collected and asserted on
                self.failures.append(repr(e))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def burst(fn, items) -> list:
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def test_many_users_at_once_with_the_scheduler_writing(stack, errors):
    capture = LogCapture()
    capture.setLevel(logging.WARNING)
    logging.getLogger().addHandler(capture)
    ws, store = stack.ws, stack.services.store
    dep = {uid: f"c-{uid.lower()}" for uid in USERS}
    try:
        with Background(stack) as bg:
            deliveries = burst(lambda u: stack.fw(f"deploy {MODEL} --deployment-id {dep[u]} --max-replica-count 1",
                                                  user=u, channel=channel_of(u)), USERS)
            assert {d.status for d in deliveries} == {200}
            ws.wait_for(lambda: all(store.db.scalar("SELECT COUNT(*) FROM audit WHERE deployment_id = :d",
                                                    {"d": dep[u]}) for u in USERS), timeout=60)
            ws.wait_for(lambda: all((r := store.deployment(dep[u])) and r.state == "READY" for u in USERS)
                        or stack.sync() and False, timeout=60)

            # Everyone at once: keep warm, hand over to the next person, and look.
            nxt = {u: USERS[(i + 1) % len(USERS)] for i, u in enumerate(USERS)}
            burst(lambda u: stack.fw(f"keep {dep[u]} 2h", user=u, channel=channel_of(u)), USERS)
            ws.wait_for(lambda: all(any(a.kind == "keep_warm_revert" for a in store.bot_actions(deployment_id=dep[u]))
                                    for u in USERS), timeout=60)
            burst(lambda u: stack.fw(f"owner {dep[u]} <@{nxt[u]}>", user=u, channel=channel_of(u)), USERS)
            burst(lambda u: stack.fw(f"get {dep[nxt[u]]}", user=u, channel=channel_of(u)), USERS)
            burst(lambda u: stack.fw("list all", user=u, channel=channel_of(u)), USERS)
            ws.wait_for(lambda: all(store.deployment(dep[u]).owner == nxt[u] for u in USERS), timeout=60)
            runs = bg.runs
            ws.wait_for(lambda: bg.runs >= runs + 2, timeout=60)  # writers kept going throughout
        assert bg.failures == []
    finally:
        logging.getLogger().removeHandler(capture)

    # nothing lost, nothing doubled
    names = [d.name.rsplit("/", 1)[-1] for d in stack.sdk().deployments.list()]
    assert sorted(names) == sorted(dep.values())
    for u in USERS:
        record = store.deployment(dep[u])
        assert record.owner == nxt[u] and record.channel == channel_of(u) and record.created_by_bot
        rows = [(r["actor"], r["action"], r["result"]) for r in reversed(store.audit_trail(dep[u], limit=50))]
        assert rows.count((u, "deploy", "ok")) == 1
        assert rows.count((u, "keep warm", "ok")) == 1
        assert rows.count((u, "owner", "ok")) == 1
        reverts = store.bot_actions(deployment_id=dep[u], kind="keep_warm_revert", statuses=("scheduled",))
        assert len(reverts) == 1 and reverts[0].payload["restore_min"] == 0
        assert stack.sim.state.get_deployment(dep[u])["minReplicaCount"] == 1
    assert "database is locked" not in capture.text
    assert errors.take() == []
    print(f"\nconcurrency: {len(USERS)} users × 5 commands with {bg.runs} sync+sweep passes alongside")
