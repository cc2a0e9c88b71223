"""storage/audit.py on a real SQLite file: entries, their JSON request, the trail newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from storage.audit import AuditRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_an_entry_keeps_what_was_asked_and_the_trail_is_newest_first(db):
    audit = AuditRepo(db)
    first = audit.audit(actor="U1", action="scale", result="ok", now=T0, deployment_id="d1", channel="C1",
                        request={"replicas": 2, "at": T0}, detail="2 replicas")
    second = audit.audit(actor="fwbot", action="delete", result="error", now=T0 + timedelta(minutes=1),
                         deployment_id="d2")
    assert second > first > 0
    assert [r["id"] for r in audit.audit_trail()] == [second, first]
    row = audit.audit_trail("d1")[0]
    assert (row["actor"], row["action"], row["result"], row["channel"], row["detail"]) == (
        "U1", "scale", "ok", "C1", "2 replicas")
    assert row["request"] == '{"at": "2026-11-02 09:00:00+00:00", "replicas": 2}'  # sorted, times as text
    assert json.loads(row["request"])["replicas"] == 2
    assert audit.audit_trail("d2")[0]["request"] is None
    assert audit.audit_trail("nobody") == []


def test_the_trail_is_cut_at_the_limit(db):
    audit = AuditRepo(db)
    ids = [audit.audit(actor="U1", action="scale", result="ok", now=T0, deployment_id="d1") for _ in range(5)]
    assert [r["id"] for r in audit.audit_trail("d1", limit=2)] == ids[:-3:-1]
    assert len(audit.audit_trail(limit=3)) == 3
