"""storage/kv.py on a real database (SQLite, and PostgreSQL when given): a named value, set and replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.kv import KvRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_value_is_set_replaced_and_emptied(db):
    kv = KvRepo(db)
    assert kv.get_kv("form:abc") is None
    kv.set_kv("form:abc", "dep-1", T0)
    assert kv.get_kv("form:abc") == "dep-1"
    kv.set_kv("form:abc", "", T0 + timedelta(seconds=5))
    assert kv.get_kv("form:abc") == ""
    assert db.query("SELECT key, updated_at FROM kv") == [{"key": "form:abc", "updated_at": "2026-11-02T09:00:05.000000Z"}]


def test_a_claimed_value_is_the_first_writers_and_stays(db):
    kv = KvRepo(db)
    assert kv.claim_kv("policy-schedule-since:defaults:down 19:00 daily", "2026-11-02T09:00:00.000000Z", T0) == \
        "2026-11-02T09:00:00.000000Z"
    later = T0 + timedelta(hours=3)
    assert kv.claim_kv("policy-schedule-since:defaults:down 19:00 daily", "2026-11-02T12:00:00.000000Z", later) == \
        "2026-11-02T09:00:00.000000Z"
    assert kv.get_kv("policy-schedule-since:defaults:down 19:00 daily") == "2026-11-02T09:00:00.000000Z"
