"""storage/actions.py on a real SQLite file: an action is scheduled once per key, runs again after
a crash, keeps its progress, and is closed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.actions import ActionsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_a_key_is_scheduled_once_and_run_when_due(db):
    actions = ActionsRepo(db)
    assert actions.schedule_action("auto_delete:d1", "auto_delete", "d1", T0 + MIN, T0, {"reason": "unused"})
    assert not actions.schedule_action("auto_delete:d1", "auto_delete", "d1", T0 + 9 * MIN, T0)
    row = actions.bot_action("auto_delete:d1")
    assert (row.kind, row.deployment_id, row.due_at, row.payload, row.status, row.attempts) == (
        "auto_delete", "d1", T0 + MIN, {"reason": "unused"}, "scheduled", 0)
    assert actions.runnable_actions(T0) == []
    assert [a.key for a in actions.runnable_actions(T0 + MIN)] == ["auto_delete:d1"]
    assert actions.bot_action("none") is None


def test_a_running_action_runs_again_after_a_crash_and_is_closed_once(db):
    actions = ActionsRepo(db)
    actions.schedule_action("k", "keep_warm_revert", "d1", T0, T0, {"min_replicas": 0})
    assert actions.start_action("k", T0)
    actions.note_action_progress("k", T0, reverted=True, at=T0)
    assert actions.runnable_actions(T0)[0].status == "running"  # interrupted: runnable again
    assert actions.start_action("k", T0 + MIN)
    row = actions.bot_action("k")
    assert row.attempts == 2 and row.payload == {"min_replicas": 0, "reverted": True, "at": "2026-11-02 09:00:00+00:00"}
    assert actions.finish_action("k", "done", "reverted", T0 + MIN)
    assert not actions.finish_action("k", "failed", "late", T0 + MIN)
    assert not actions.start_action("k", T0 + MIN)
    row = actions.bot_action("k")
    assert (row.status, row.result, row.updated_at) == ("done", "reverted", T0 + MIN)
    assert actions.runnable_actions(T0 + MIN) == []
    actions.note_action_progress("unknown", T0, x=1)  # nothing to note it on


def test_actions_are_listed_due_first_and_their_statuses_read_in_chunks(db):
    actions = ActionsRepo(db)
    actions.schedule_action("b", "snooze", "d1", T0 + 2 * MIN, T0)
    actions.schedule_action("a", "auto_delete", "d1", T0 + MIN, T0)
    actions.schedule_action("c", "snooze", "d2", T0, T0)
    actions.finish_action("c", "cancelled", "owner deleted it", T0)
    assert [a.key for a in actions.bot_actions()] == ["c", "a", "b"]
    assert [a.key for a in actions.bot_actions(deployment_id="d1", kind="snooze")] == ["b"]
    assert [a.key for a in actions.bot_actions(statuses=("scheduled",))] == ["a", "b"]
    keys = [f"k{i}" for i in range(1200)]
    for key in keys[::2]:
        actions.schedule_action(key, "snooze", "d3", T0, T0)
    statuses = actions.action_statuses(keys + ["c"])
    assert len(statuses) == 601 and statuses["k0"] == "scheduled" and statuses["c"] == "cancelled"
    assert "k1" not in statuses


def test_postponements_are_the_latest_snooze_and_keep_warm_not_cancelled(db):
    actions = ActionsRepo(db)
    actions.schedule_action("s1", "snooze", "d1", T0 + MIN, T0)
    actions.schedule_action("s2", "snooze", "d1", T0 + 5 * MIN, T0)
    actions.schedule_action("s3", "snooze", "d1", T0 + 9 * MIN, T0)
    actions.finish_action("s3", "cancelled", "unsnoozed", T0)
    actions.schedule_action("w1", "keep_warm_revert", "d2", T0 + 3 * MIN, T0)
    actions.schedule_action("x1", "auto_delete", "d2", T0 + 7 * MIN, T0)
    assert actions.postponements() == {("d1", "snooze"): T0 + 5 * MIN, ("d2", "keep_warm_revert"): T0 + 3 * MIN}
    assert actions.postponements("d2") == {("d2", "keep_warm_revert"): T0 + 3 * MIN}
