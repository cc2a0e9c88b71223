"""storage/deployments.py on a real SQLite file: owners and where each deployment is tracked, the
reads of the table, and records whose API object is parsed only when read."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from bot.core.clock import iso
from storage.deployments import DeploymentRecord, DeploymentsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def claim(deployments: DeploymentsRepo, dep: str, **kw) -> None:
    args = {"owner": "U1", "channel": "C1", "now": T0, "created_by_bot": False, **kw}
    deployments.claim_deployment(dep, f"accounts/a/deployments/{dep}", **args)


def test_a_claim_records_owner_and_channel_and_a_later_claim_keeps_what_it_does_not_say(db):
    deployments = DeploymentsRepo(db)
    claim(deployments, "d1", created_by_bot=True, unused_delete_s=3600.0, thread_ts="1.5")
    record = deployments.deployment("d1")
    assert (record.owner, record.channel, record.thread_ts, record.created_by_bot, record.unused_delete_s) == (
        "U1", "C1", "1.5", True, 3600.0)
    assert record.state is None and record.first_seen_at == iso(T0) and record.wire is None
    deployments.mark_gone("d1", T0 + MIN)
    claim(deployments, "d1", owner="U2", channel="C2", now=T0 + 2 * MIN)  # adopted again by someone else
    record = deployments.deployment("d1")
    assert (record.owner, record.channel, record.thread_ts, record.created_by_bot, record.unused_delete_s) == (
        "U2", "C2", "1.5", True, 3600.0)
    assert not record.gone and record.updated_at == iso(T0 + 2 * MIN)
    assert deployments.deployment("nope") is None


def test_only_a_record_fireworks_never_showed_is_forgotten(db):
    deployments = DeploymentsRepo(db)
    claim(deployments, "never")
    claim(deployments, "seen")
    deployments.set_deployment_fields("seen", T0, state="READY")
    deployments.forget_deployment("never")
    deployments.forget_deployment("seen")
    assert deployments.deployment("never") is None and deployments.deployment("seen").state == "READY"


def test_fields_are_set_with_the_time_of_the_change(db):
    deployments = DeploymentsRepo(db)
    claim(deployments, "d1")
    deployments.set_deployment_fields("d1", T0 + MIN)  # nothing to set: nothing changes
    assert deployments.deployment("d1").updated_at == iso(T0)
    deployments.set_deployment_fields("d1", T0 + MIN, ready_at=iso(T0), ready_announced=1, replicas=2)
    record = deployments.deployment("d1")
    assert (record.ready_at, record.ready_announced, record.replicas, record.updated_at) == (
        iso(T0), True, 2, iso(T0 + MIN))


def test_listings_filter_by_owner_and_channel_leave_out_the_gone_and_keep_their_order(db):
    deployments = DeploymentsRepo(db)
    claim(deployments, "b", now=T0)
    claim(deployments, "a", now=T0, owner="U2")
    claim(deployments, "c", now=T0 - MIN, channel="C2")
    claim(deployments, "unowned", now=T0 + MIN, owner=None)
    claim(deployments, "gone", now=T0 + MIN, owner="U3")
    deployments.set_deployment_fields("b", T0, state="READY")
    deployments.set_deployment_fields("gone", T0, state="READY")
    deployments.mark_gone("gone", T0 + 2 * MIN)
    deployments.mark_gone("gone", T0 + 3 * MIN)  # gone once: the first time stays
    assert deployments.deployment("gone").gone_at == iso(T0 + 2 * MIN)
    assert [r.id for r in deployments.deployments()] == ["c", "a", "b", "unowned"]
    assert [r.id for r in deployments.deployments(include_gone=True)] == ["c", "a", "b", "gone", "unowned"]
    assert [r.id for r in deployments.deployments(owner="U1")] == ["c", "b"]
    assert [r.id for r in deployments.deployments(owner="U1", channel="C1")] == ["b"]
    assert deployments.live_owners() == ["U1", "U2"]
    assert [t.id for t in deployments.timer_fields()] == ["c", "a", "b", "unowned"]
    assert deployments.timer_fields()[2].state == "READY"
    assert sorted(deployments.known_live_ids()) == ["b"]
    assert deployments.live_deployment_states() == {"c": None, "a": None, "b": "READY", "unowned": None}


def test_records_by_id_come_in_the_order_asked_across_chunks(db):
    deployments = DeploymentsRepo(db)
    ids = [f"d{i:04}" for i in range(1100)]
    with db.write():
        for dep in ids:
            claim(deployments, dep)
    asked = ids[::-1][:700] + ["unknown"] + ids[:3]
    assert [r.id for r in deployments.deployments_with_ids(asked)] == [i for i in asked if i != "unknown"]


def test_a_stored_api_object_is_parsed_when_first_read(db):
    deployments = DeploymentsRepo(db)
    claim(deployments, "d1")
    deployments.set_deployment_fields("d1", T0, wire='{"name": "x", "replicaCount": 2}')
    record = deployments.deployment("d1")
    assert "wire" not in record.__dict__
    assert record.wire == {"name": "x", "replicaCount": 2}
    assert record.__dict__["wire"] is record.wire  # parsed once, kept
    built = DeploymentRecord(**{f.name: None for f in fields(DeploymentRecord)} | {"wire": {"a": 1}})
    assert built.wire == {"a": 1}
