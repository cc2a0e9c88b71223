"""storage/schedules.py on the run's engine: one schedule per deployment, replaced by the next one
set; how far its transitions got counts only the ones fwbot started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_deployment_has_one_schedule_the_last_set_until_cleared(db):
    store = Store(db)
    assert store.schedule("d1") is None and store.schedules() == {}
    store.set_schedule("d1", down="19:00 Mon-Fri", up="08:00 Mon-Fri", up_min=1, set_by="U1", now=T0)
    store.set_schedule("d2", down="22:00 daily", up=None, up_min=1, set_by="U1", now=T0)
    store.set_schedule("d1", down="20:00 Mon-Fri", up="07:00 Mon-Fri", up_min=2, set_by="U2", now=T0 + timedelta(1))
    row = store.schedule("d1")
    assert (row.down, row.up, row.up_min, row.set_by, row.set_at) == ("20:00 Mon-Fri", "07:00 Mon-Fri", 2, "U2",
                                                                      T0 + timedelta(1))
    assert list(store.schedules()) == ["d1", "d2"] and list(store.schedules("d2")) == ["d2"]
    assert store.clear_schedule("d1") is True and store.clear_schedule("d1") is False
    assert list(store.schedules()) == ["d2"]


def test_progress_is_the_latest_transition_started_not_one_scheduled_or_cancelled(db):
    store = Store(db)
    at = [T0 + timedelta(hours=h) for h in range(4)]
    store.schedule_action("schedule_down:d1:a", "schedule_down", "d1", at[1], T0)
    store.schedule_action("schedule_up:d1:b", "schedule_up", "d1", at[2], T0)
    store.schedule_action("schedule_down:d1:c", "schedule_down", "d1", at[3], T0)
    store.schedule_action("keep_warm_revert:d2:x", "keep_warm_revert", "d2", at[3], T0)
    assert store.schedule_progress() == {}  # only scheduled: still being decided
    store.start_action("schedule_down:d1:a", T0)
    store.finish_action("schedule_up:d1:b", "done", "ok", T0)
    store.finish_action("schedule_down:d1:c", "cancelled", "kept warm", T0)
    assert store.schedule_progress() == {"d1": at[2]}
    assert store.schedule_progress("d2") == {}


def test_the_places_of_deployments_not_gone_say_whose_policy_governs_them(db):
    store = Store(db)
    for dep, owner, channel in (("d1", "U1", "C1"), ("d2", None, "C2"), ("d3", "U3", "C3")):
        store.claim_deployment(dep, f"accounts/a/deployments/{dep}", owner=owner, channel=channel, now=T0,
                               created_by_bot=False)
    store.mark_gone("d3", T0 + timedelta(minutes=1))
    assert store.deployment_places() == {"d1": ("U1", "C1"), "d2": (None, "C2")}
