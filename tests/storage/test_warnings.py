"""storage/warnings.py on a real database (SQLite, and PostgreSQL when given): a warning's key is
claimed once, sent once, resolved once, and what it said is kept beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.warnings import WarningsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DUE = "2026-11-03T09:00:00.000000Z"


def claim(warnings: WarningsRepo, dep: str = "d1", timer: str = "auto_delete", lead_s: float = 3600, **kw):
    return warnings.claim_warning(dep, timer, kw.get("due", DUE), lead_s, channel=kw.get("channel", "C1"),
                                  snapshot=kw.get("snapshot", {"timer": timer}), now=T0)


def test_a_key_is_claimed_once_with_what_it_says(db):
    warnings = WarningsRepo(db)
    row = claim(warnings)
    assert row is not None and row.status == "claimed" and row.is_open
    assert row.key == ("d1", "auto_delete", DUE, 3600.0) and row.snapshot == {"timer": "auto_delete"}
    assert row.claimed_at == T0 and row.sent_at is None and len(row.token) == 22
    assert claim(warnings) is None  # the same key again
    other = claim(warnings, lead_s=600)  # another lead of the same due time is another warning
    assert other is not None and other.token != row.token
    assert warnings.warning_by_token(row.token) == row and warnings.warning(row.id) == row


def test_a_sent_warning_is_found_by_its_message_and_resolved_once(db):
    warnings = WarningsRepo(db)
    row = claim(warnings)
    later = T0 + timedelta(seconds=3)
    warnings.mark_warning_sent(row.id, "C1", "1.5", later, snapshot={"timer": "auto_delete", "lead": "1h"})
    sent = warnings.warning(row.id)
    assert (sent.status, sent.channel, sent.ts, sent.sent_at) == ("sent", "C1", "1.5", later)
    assert sent.snapshot == {"timer": "auto_delete", "lead": "1h"}
    assert warnings.warnings_in_message("C1", "1.5") == [sent]
    assert warnings.deployments_with_open_warnings() == {"d1"}
    assert warnings.resolve_warning(row.id, "kept", later)
    assert not warnings.resolve_warning(row.id, "deleted", later, status="stale")
    done = warnings.warning(row.id)
    assert (done.status, done.resolution, done.resolved_at, done.is_open) == ("resolved", "kept", later, False)
    assert warnings.deployments_with_open_warnings() == set()


def test_warnings_are_listed_by_deployment_and_status(db):
    warnings = WarningsRepo(db)
    a = claim(warnings, "d1")
    b = claim(warnings, "d2")
    c = claim(warnings, "d1", timer="scale_to_zero")
    warnings.resolve_warning(c.id, "scaled", T0, status="stale")
    assert [w.id for w in warnings.warnings()] == [a.id, b.id, c.id]
    assert [w.id for w in warnings.warnings(deployment_id="d1")] == [a.id, c.id]
    assert [w.id for w in warnings.warnings(deployment_id="d1", statuses=("claimed", "sent"))] == [a.id]
    assert [w.id for w in warnings.warnings(statuses=("stale",))] == [c.id]


def test_warnings_about_many_due_times_are_read_in_chunks(db):
    warnings = WarningsRepo(db)
    dues = [(f"d{i}", "auto_delete", DUE) for i in range(400)]  # more triples than one query may carry
    for dep, timer, due in dues:
        claim(warnings, dep, timer, due=due)
    claim(warnings, "d0", lead_s=60)
    claim(warnings, "d0", timer="scale_to_zero")
    found = warnings.warnings_about(dues + [("d0", "auto_delete", "2027-01-01T00:00:00.000000Z")])
    assert len(found) == 401  # every lead of each (deployment, timer, due); nothing else
    assert {w.deployment_id for w in found} == {f"d{i}" for i in range(400)}
    assert warnings.warnings_about([]) == []
