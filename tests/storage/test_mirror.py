"""storage/mirror.py on a real SQLite file: Fireworks' view mirrored into ``deployments`` (never an
older view over a newer one), a page that shows nothing new only bumps sightings, and remembered
listing pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.clock import iso
from storage.mirror import MirrorRepo, compared_values, wire_signature

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
H100 = "NVIDIA_H100_80GB"


def view(dep: str = "d1", state: str = "READY", replicas: int = 1, **kw: Any) -> dict[str, Any]:
    """A deployment as the sync hands it to the mirror."""
    return {"name": f"accounts/a/deployments/{dep}", "state": state, "replicas": replicas,
            "desired_replicas": replicas, "min_replicas": 0, "max_replicas": 2, "accelerator_type": H100,
            "accelerator_count": 1, "base_model": "m", "display_name": dep, "scale_to_zero_s": 3600.0,
            "delete_time": None, "single_region": False, "create_time": iso(T0),
            "wire": {"name": dep, "state": state, "replicaCount": replicas}, **kw}


def settled(mirror: MirrorRepo, dep: str = "d1", **kw: Any) -> None:
    """Owned, mirrored READY and announced: nothing left for the reconcile loop to do."""
    mirror.claim_deployment(dep, f"accounts/a/deployments/{dep}", owner="U1", channel="C1", now=T0,
                            created_by_bot=True)
    mirror.mirror(dep, view(dep, **kw), T0)
    mirror.set_deployment_fields(dep, T0, ready_at=iso(T0), ready_announced=1)


def test_a_first_view_is_inserted_and_a_later_one_updates_it(db):
    mirror = MirrorRepo(db)
    before, after = mirror.mirror("d1", view(state="CREATING", replicas=0), T0)
    assert before is None and after.state == "CREATING" and after.first_seen_at == iso(T0)
    assert after.wire == {"name": "d1", "state": "CREATING", "replicaCount": 0} and after.single_region is False
    assert db.scalar("SELECT wire FROM deployments") == '{"name": "d1", "replicaCount": 0, "state": "CREATING"}'
    before, after = mirror.mirror("d1", view(), T0 + MIN)
    assert before.state == "CREATING" and after.state == "READY" and after.replicas == 1
    assert after.ready_at == iso(T0 + MIN) and after.last_seen_at == iso(T0 + MIN)  # came up: idle from now


def test_a_view_older_than_the_stored_one_is_ignored(db):
    mirror = MirrorRepo(db)
    mirror.mirror("d1", view(replicas=2), T0 + 10 * MIN)
    before, after = mirror.mirror("d1", view(state="CREATING", replicas=0), T0 + 11 * MIN, observed_at=T0 + 5 * MIN)
    assert before == after and after.state == "READY" and after.replicas == 2


def test_a_page_showing_nothing_new_only_bumps_sightings(db):
    mirror = MirrorRepo(db)
    settled(mirror, "same")
    settled(mirror, "scaled")
    later = T0 + 5 * MIN
    changed = mirror.mirror_many([("same", view("same")), ("scaled", view("scaled", replicas=2)),
                                  ("new", view("new"))], later)
    assert [(before and before.id, after.id, after.replicas) for before, after in changed] == [
        ("scaled", "scaled", 2), (None, "new", 1)]
    assert db.query("SELECT deployment_id, seen_at FROM deployment_sightings") == [
        {"deployment_id": "same", "seen_at": iso(later)}]
    assert mirror.deployment("same").last_seen_at == iso(T0)  # its wide row is not rewritten
    # Seen at ``later``: a view observed before that is older than what is known.
    before, after = mirror.mirror("same", view("same", replicas=5), later, observed_at=later - MIN)
    assert after.replicas == 1


def test_a_deployment_the_reconcile_loop_still_has_work_for_is_not_confirmed(db):
    mirror = MirrorRepo(db)
    mirror.mirror("unowned", view("unowned"), T0)  # nobody owns it and no adoption was offered
    mirror.set_deployment_fields("unowned", T0, ready_at=iso(T0), ready_announced=1)
    settled(mirror, "unannounced")
    mirror.set_deployment_fields("unannounced", T0, ready_announced=0)
    changed = mirror.mirror_many([("unowned", view("unowned")), ("unannounced", view("unannounced"))], T0 + MIN)
    assert [after.id for _, after in changed] == ["unowned", "unannounced"]


def test_a_remembered_page_is_confirmed_only_while_its_deployments_are_stored_as_it_showed_them(db):
    mirror = MirrorRepo(db)
    settled(mirror, "d1")
    settled(mirror, "d2", single_region=True)
    items = [("d1", view("d1")), ("d2", view("d2", single_region=True))]
    mirror.remember_page(b"page-1", "token-2", items, T0)
    assert mirror.known_pages() == {b"page-1": "token-2"}
    entries = mirror.page_entries(b"page-1")
    assert entries == [("d1", compared_values(view("d1"))), ("d2", compared_values(view("d2", single_region=True)))]
    assert mirror.page_entries(b"other") is None

    later = T0 + 5 * MIN
    assert mirror.confirm_unchanged(b"page-1", entries, later)
    assert db.scalar("SELECT seen_at FROM sync_pages") == iso(later)
    assert {r["deployment_id"]: r["seen_at"] for r in db.query("SELECT * FROM deployment_sightings")} == {
        "d1": iso(later), "d2": iso(later)}
    assert [(r["deployment_id"], r["replicas"], r["single_region"]) for r in mirror.replica_history()] == [
        ("d1", 1, 0), ("d2", 1, 1)]

    mirror.set_deployment_fields("d2", later, replicas=3)  # changed behind the page
    assert not mirror.confirm_unchanged(b"page-1", entries, later + MIN)
    assert db.scalar("SELECT seen_at FROM sync_pages") == iso(later)
    mirror.forget_pages_before(later + MIN)
    assert mirror.known_pages() == {}


def test_equal_objects_have_equal_signatures():
    assert wire_signature(None) is None
    assert wire_signature({"a": 1, "b": [1, 2]}) == wire_signature({"a": 1, "b": [1, 2]})
    assert wire_signature({"a": 1}) != wire_signature({"a": 2})
    assert len(wire_signature({})) == 16
    values = compared_values(view(single_region=True))
    assert values[-1] == wire_signature(view()["wire"])
