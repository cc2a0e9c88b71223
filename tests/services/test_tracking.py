"""The reconcile loop on a quiet account: listing pages that come back byte for byte are
confirmed from what SQLite remembers instead of being decoded and compared again, and anything
that changed, in Fireworks or behind the page's back in SQLite, still takes the full path.

Real HTTP to the simulator (the official SDK makes the deployments), a real SQLite file, the
Slack stand-in for tracking messages.
"""

from __future__ import annotations

import pytest

from bot.core.clock import FakeClock
from bot.services import tracking as reconcile
from bot.ui.kit import Message
from tests.harness import CHANNEL, start_stack

MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
IDS = [f"quiet-{i}" for i in range(5)]


@pytest.fixture
def quiet(tmp_path, monkeypatch):
    # Two deployments a page, so five make three pages.
    monkeypatch.setattr(reconcile, "MIRROR_BATCH", 2)
    clock = FakeClock()
    stack = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 1.0})
    sdk, services = stack.sdk(), stack.services
    for dep_id in IDS:
        sdk.deployments.create(base_model=MODEL, deployment_id=dep_id, min_replica_count=1, max_replica_count=2,
                               accelerator_type="NVIDIA_H100_80GB", accelerator_count=1)
        posted = services.poster.post(CHANNEL, Message(text=f"tracking {dep_id}"))
        services.store.claim_deployment(dep_id, f"accounts/demo/deployments/{dep_id}", owner="U_DEV",
                                        channel=CHANNEL, now=clock.now(), created_by_bot=True,
                                        thread_ts=posted["ts"])
    clock.advance(5)
    stack.sync()  # creating → READY: everything mirrored and announced
    clock.advance(5)
    stack.sync()
    yield stack, clock
    stack.stop()


@pytest.fixture
def mirrored_pages(monkeypatch):
    """How many pages took the full path (a spy: the real method still runs)."""
    from storage.store import Store

    calls = []
    real = Store.mirror_many

    def spy(self, items, *args, **kwargs):
        calls.append([dep_id for dep_id, _ in items])
        return real(self, items, *args, **kwargs)

    monkeypatch.setattr(Store, "mirror_many", spy)
    return calls


def rows(stack, sql, params=None):
    return stack.services.store.db.query(sql, params)


def updates(stack) -> int:
    return sum(1 for c in stack.ws.calls if c.method == "chat.update")


def test_an_unchanged_account_is_confirmed_without_mirroring(quiet, mirrored_pages):
    stack, clock = quiet
    assert len(rows(stack, "SELECT digest FROM sync_pages")) == 3
    written = {r["id"]: r["updated_at"] for r in rows(stack, "SELECT id, updated_at FROM deployments")}
    edits = updates(stack)
    clock.advance(30)
    report = stack.sync()
    assert report.seen == 5
    assert mirrored_pages == []
    # Every deployment was seen now, none was written, and nothing was said.
    seen = {r["deployment_id"]: r["seen_at"] for r in rows(stack, "SELECT * FROM deployment_sightings")}
    assert set(seen) == set(IDS) and len(set(seen.values())) == 1
    assert {r["id"]: r["updated_at"] for r in rows(stack, "SELECT id, updated_at FROM deployments")} == written
    assert updates(stack) == edits
    assert len(rows(stack, "SELECT digest FROM sync_pages")) == 3


def test_a_change_in_fireworks_takes_the_full_path(quiet, mirrored_pages):
    stack, clock = quiet
    edits = updates(stack)
    stack.sdk().deployments.scale(IDS[2], replica_count=2)
    clock.advance(30)
    stack.sync()
    assert len(mirrored_pages) == 1 and IDS[2] in mirrored_pages[0]
    record = stack.services.store.deployment(IDS[2])
    assert record is not None and record.desired_replicas == 2
    assert updates(stack) == edits + 1  # its tracking message, and only its
    # The page that changed is remembered as it is now; the old one is forgotten.
    assert len(rows(stack, "SELECT digest FROM sync_pages")) == 3


def test_a_change_behind_the_page_in_sqlite_takes_the_full_path(quiet, mirrored_pages):
    stack, clock = quiet
    store = stack.services.store
    edits = updates(stack)
    # The READY edit of one tracking message failed (Slack was down): the page is byte for byte
    # the same, but the deployment still has something to do.
    store.set_deployment_fields(IDS[4], clock.now(), ready_announced=0)
    # Another was mirrored from an older view by some other path.
    store.db.execute("UPDATE deployments SET replicas = 0 WHERE id = :id", {"id": IDS[0]})
    clock.advance(30)
    stack.sync()
    assert len(mirrored_pages) == 2  # the pages of IDS[0] and IDS[4]; the middle one is confirmed
    assert updates(stack) == edits + 2
    assert store.deployment(IDS[4]).ready_announced
    assert store.deployment(IDS[0]).replicas == 1


def test_a_deployment_gone_from_a_confirmed_listing_is_still_noticed(quiet):
    stack, clock = quiet
    stack.sim.state.deployments.pop(IDS[3])  # gone without a trace (purged)
    clock.advance(30)
    report = stack.sync()
    assert report.vanished == [IDS[3]]
    assert report.seen == 4
    assert {r.id for r in stack.services.store.deployments()} == set(IDS) - {IDS[3]}


def test_a_create_another_replica_sent_is_settled_only_once_that_replica_is_gone(tmp_path):
    """A replica that sent a create and died without the answer: while it is present its create
    may still be in flight, so nothing is decided; once its presence has run out, the sync
    settles it: one Fireworks has is confirmed, one it never made is dropped and its requester told."""
    from datetime import timedelta

    from storage.leases import presence_name

    clock = FakeClock()
    stack = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 1.0})
    try:
        services, store = stack.services, stack.services.store
        store.acquire_or_renew(presence_name("other"), "other", clock.now(), timedelta(seconds=15))
        stack.sdk().deployments.create(base_model=MODEL, deployment_id="landed", min_replica_count=0,
                                       max_replica_count=1, accelerator_type="NVIDIA_H100_80GB", accelerator_count=1)
        for dep_id in ("landed", "never-sent"):
            store.claim_deployment(dep_id, f"accounts/demo/deployments/{dep_id}", owner="U_DEV", channel=CHANNEL,
                                   now=clock.now(), created_by_bot=True, creator="other")
        # Our own claim, a create this replica has in flight, is never another's to settle.
        store.claim_deployment("ours", "accounts/demo/deployments/ours", owner="U_DEV", channel=CHANNEL,
                               now=clock.now(), created_by_bot=True, creator=services.replica)
        assert reconcile.recover_interrupted_creates(services) == []
        clock.advance(5)
        stack.sync()
        assert store.pending_creates() == {"never-sent": "other", "ours": services.replica}
        assert store.deployment("landed").state is not None  # mirrored by the sync as usual

        clock.advance(11)  # "other" has not renewed its presence: it is gone
        report = stack.sync()
        assert store.pending_creates() == {"ours": services.replica}
        assert store.deployment("never-sent") is None and report.forgotten == []
        trail = store.db.query("SELECT deployment_id, result, detail FROM audit WHERE action = 'deploy' "
                               "ORDER BY deployment_id")
        assert trail == [{"deployment_id": "never-sent", "result": "error",
                          "detail": "not created: fwbot stopped before Fireworks answered the create"}]
        told = stack.ws.wait_for(lambda: [m for m in stack.ws.messages(stack.ws.dm_channel("U_DEV"))
                                          if "never-sent" in m.text])
        assert len(told) == 1
        stack.sync()
        assert len(store.db.query("SELECT 1 FROM audit WHERE action = 'deploy'")) == 1  # settled once
    finally:
        stack.stop()
