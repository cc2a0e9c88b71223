"""storage/renewals.py on a real database: every renewal kept, the latest one per deployment read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.renewals import RenewalsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_the_latest_renewal_of_each_deployment_is_the_one_that_counts(db):
    renewals = RenewalsRepo(db)
    assert renewals.latest_renewals() == {}
    renewals.record_renewal("a", "U1", T0 + DAY, limit_s=3 * 86400, due_at=T0 + 4 * DAY)
    renewals.record_renewal("b", "U2", T0, limit_s=86400, due_at=T0 + DAY)
    renewals.record_renewal("a", "U2", T0 + 2 * DAY, limit_s=3 * 86400, due_at=T0 + 5 * DAY)
    assert renewals.latest_renewals() == {"a": (T0 + 2 * DAY, "U2"), "b": (T0, "U2")}
    assert renewals.latest_renewals("a") == {"a": (T0 + 2 * DAY, "U2")}
    assert renewals.latest_renewals("nobody") == {}
    rows = db.query("SELECT deployment_id, renewed_by, due_at FROM lifetime_renewals ORDER BY id")
    assert [(r["deployment_id"], r["renewed_by"]) for r in rows] == [("a", "U1"), ("b", "U2"), ("a", "U2")]
    assert rows[-1]["due_at"] == "2026-11-07T09:00:00.000000Z"


def test_two_renewals_in_the_same_second_keep_the_later_recorded(db):
    renewals = RenewalsRepo(db)
    renewals.record_renewal("a", "U1", T0, limit_s=60, due_at=T0 + timedelta(seconds=60))
    renewals.record_renewal("a", "U2", T0, limit_s=60, due_at=T0 + timedelta(seconds=60))
    assert renewals.latest_renewals() == {"a": (T0, "U2")}
