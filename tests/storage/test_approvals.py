"""storage/approvals.py on a real database (SQLite, and PostgreSQL when given): the first decision
wins, an approval starts its run in the same statement, a run is taken over only by whoever still
sees its start, one result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.approvals import ApprovalRecord, ApprovalsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def ask(approvals: ApprovalsRepo, token: str = "t1", *, deployment_id: str | None = None, now=T0) -> ApprovalRecord:
    return approvals.create_approval(token=token, kind="deploy", requester="U1", channel="C1",
                                     deployment_id=deployment_id, request={"model": "m", "replicas": 2},
                                     usd_per_hour=12.5, now=now, expires_at=now + HOUR)


def test_a_request_is_stored_pending_with_its_request_decoded(db):
    record = ask(ApprovalsRepo(db))
    assert (record.id, record.kind, record.status, record.requester, record.usd_per_hour) == (
        "t1", "deploy", "pending", "U1", 12.5)
    assert record.request == {"model": "m", "replicas": 2} and record.result is None
    assert record.created_at == T0 and record.expires_at == T0 + HOUR
    assert record.decided_at is None and record.executed_at is None and record.reminded_at is None


def test_the_first_decision_wins_and_an_approval_starts_the_run(db):
    approvals = ApprovalsRepo(db)
    ask(approvals)
    at = T0 + timedelta(minutes=5)
    assert approvals.decide_approval("t1", status="approved", by="U2", now=at)
    assert not approvals.decide_approval("t1", status="rejected", by="U3", now=at, reason="too late")
    record = approvals.approval("t1")
    assert (record.status, record.decided_by, record.decided_at, record.executed_at, record.reason) == (
        "approved", "U2", at, at, None)


def test_a_rejection_keeps_its_reason_and_starts_nothing(db):
    approvals = ApprovalsRepo(db)
    ask(approvals)
    assert approvals.decide_approval("t1", status="rejected", by="U2", now=T0, reason="too big")
    record = approvals.approval("t1")
    assert (record.status, record.reason, record.executed_at) == ("rejected", "too big", None)
    assert not approvals.finish_approval("t1", {"ok": True}, T0)  # only an approved run has a result


def test_a_request_past_its_expiry_is_decided_only_without_the_check(db):
    approvals = ApprovalsRepo(db)
    ask(approvals)
    late = T0 + 2 * HOUR
    assert not approvals.decide_approval("t1", status="approved", by="U2", now=late)
    assert approvals.approval("t1").status == "pending"
    assert approvals.decide_approval("t1", status="expired", by="fwbot", now=late, check_expiry=False)
    assert approvals.approval("t1").status == "expired"


def test_a_run_is_taken_over_only_by_whoever_still_sees_its_start_and_finishes_once(db):
    approvals = ApprovalsRepo(db)
    ask(approvals)
    approvals.decide_approval("t1", status="approved", by="U2", now=T0, runner="replica-1")
    started = approvals.approval("t1").executed_at
    assert approvals.approval("t1").run_by == "replica-1"  # the replica the approval's click reached
    again = T0 + timedelta(minutes=10)
    assert approvals.restart_approved_run("t1", started=started, now=again, runner="replica-2")
    assert not approvals.restart_approved_run("t1", started=started, now=again)  # another recoverer, too late
    assert approvals.approval("t1").executed_at == again and approvals.approval("t1").run_by == "replica-2"
    assert approvals.finish_approval("t1", {"deployment": "d1"}, again)
    assert not approvals.finish_approval("t1", {"deployment": "d2"}, again)
    assert approvals.approval("t1").result == {"deployment": "d1"}
    assert not approvals.restart_approved_run("t1", started=again, now=again)  # finished: nothing to recover


def test_one_reminder_and_the_message_it_lives_in(db):
    approvals = ApprovalsRepo(db)
    ask(approvals)
    approvals.set_approval_message("t1", "C9", "1.25")
    assert approvals.mark_approval_reminded("t1", T0)
    assert not approvals.mark_approval_reminded("t1", T0)
    record = approvals.approval("t1")
    assert (record.message_channel, record.message_ts, record.reminded_at) == ("C9", "1.25", T0)
    ask(approvals, "t2")
    approvals.decide_approval("t2", status="cancelled", by="U1", now=T0)
    assert not approvals.mark_approval_reminded("t2", T0)  # decided: no reminder


def test_requests_are_listed_oldest_first_by_status_and_deployment(db):
    approvals = ApprovalsRepo(db)
    ask(approvals, "b", deployment_id="d1", now=T0)
    ask(approvals, "a", deployment_id="d2", now=T0)
    ask(approvals, "c", deployment_id="d1", now=T0 - HOUR)
    approvals.decide_approval("a", status="approved", by="U2", now=T0)
    assert [r.id for r in approvals.approvals()] == ["c", "a", "b"]
    assert [r.id for r in approvals.approvals(status="pending")] == ["c", "b"]
    assert [r.id for r in approvals.approvals(deployment_id="d1")] == ["c", "b"]
    assert approvals.approval("nope") is None
