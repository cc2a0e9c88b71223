"""Approval requests (``approvals``).

One row per request; ``id`` is the opaque token its buttons carry. ``status`` moves from
pending to exactly one final state by compare-and-set (``UPDATE ... WHERE status =
'pending'``), so the first decision wins. For approved rows, ``executed_at`` is when the run
started (set in the same statement as the approval, so the deciding click owns the run) and
``result`` is set once it finished. ``reason`` is the reason given for a rejection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.clock import iso
from storage.rows import Repository, decoded, where_matching


@dataclass
class ApprovalRecord:
    """One approval request as stored; times parsed, ``request``/``result`` decoded."""

    id: str
    kind: str
    requester: str
    channel: str
    deployment_id: str | None
    request: dict
    usd_per_hour: float | None
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    executed_at: datetime | None
    result: dict | None
    message_channel: str | None
    message_ts: str | None
    requester_ts: str | None
    created_at: datetime
    expires_at: datetime
    reminded_at: datetime | None
    run_by: str | None = None  # the replica carrying out an approved request

    @classmethod
    def from_row(cls, row: dict) -> ApprovalRecord:
        return cls(**decoded(cls, row, json_columns={"request": {}, "result": None},
                              times=("decided_at", "executed_at", "created_at", "expires_at", "reminded_at")))



class ApprovalsRepo(Repository):
    def create_approval(self, *, token: str, kind: str, requester: str, channel: str,
                        deployment_id: str | None, request: dict, usd_per_hour: float | None,
                        now: datetime, expires_at: datetime) -> ApprovalRecord:
        self.db.execute(
            """INSERT INTO approvals (id, kind, requester, channel, deployment_id, request, usd_per_hour,
                   status, created_at, expires_at)
               VALUES (:id, :kind, :requester, :channel, :deployment_id, :request, :usd_per_hour,
                   'pending', :now, :expires_at)""",
            {"id": token, "kind": kind, "requester": requester, "channel": channel, "deployment_id": deployment_id,
             "request": json.dumps(request, sort_keys=True, default=str),
             "usd_per_hour": float(usd_per_hour) if usd_per_hour is not None else None,
             "now": iso(now), "expires_at": iso(expires_at)},
        )
        record = self.approval(token)
        assert record is not None
        return record

    def approval(self, token: str) -> ApprovalRecord | None:
        row = self.db.one("SELECT * FROM approvals WHERE id = :id", {"id": token})
        return ApprovalRecord.from_row(row) if row else None

    def approvals(self, *, status: str | None = None, deployment_id: str | None = None) -> list[ApprovalRecord]:
        where, params = where_matching(status=status, deployment_id=deployment_id)
        sql = f"SELECT * FROM approvals WHERE {where} ORDER BY created_at, id"
        return [ApprovalRecord.from_row(r) for r in self.db.query(sql, params)]

    def set_approval_message(self, token: str, channel: str, ts: str) -> None:
        self.db.execute("UPDATE approvals SET message_channel = :channel, message_ts = :ts WHERE id = :id",
                        {"channel": channel, "ts": ts, "id": token})

    def decide_approval(self, token: str, *, status: str, by: str, now: datetime, reason: str | None = None,
                        check_expiry: bool = True, runner: str | None = None) -> bool:
        """Compare-and-set pending → ``status``; True only for the one call that made the change.

        An approval also starts the run (``executed_at``, by replica ``runner``) in the same
        statement. With ``check_expiry`` a request past its expiry cannot be decided any more.
        """
        sql = """UPDATE approvals SET status = :status, decided_by = :by, decided_at = :now, reason = :reason,
                     executed_at = CASE WHEN :status = 'approved' THEN :now ELSE executed_at END,
                     run_by = CASE WHEN :status = 'approved' THEN :runner ELSE run_by END
                 WHERE id = :id AND status = 'pending'"""
        if check_expiry:
            sql += " AND expires_at > :now"
        params: dict[str, Any] = {"status": status, "by": by, "now": iso(now), "reason": reason, "runner": runner,
                                  "id": token}
        return self.db.execute(sql, params).rowcount == 1

    def restart_approved_run(self, token: str, *, started: datetime | None, now: datetime,
                             runner: str | None = None) -> bool:
        """Compare-and-set the run start of an approved, unfinished request (the recovery claim):
        only the caller that still sees the start time ``started`` takes it over, as ``runner``."""
        cur = self.db.execute(
            """UPDATE approvals SET executed_at = :now, run_by = :runner WHERE id = :id AND status = 'approved'
                   AND result IS NULL AND executed_at IS NOT DISTINCT FROM :started""",
            {"now": iso(now), "runner": runner, "id": token, "started": iso(started)},
        )
        return cur.rowcount == 1

    def finish_approval(self, token: str, result: dict, now: datetime) -> bool:
        """Record what an approved run did; only the first result counts."""
        cur = self.db.execute(
            """UPDATE approvals SET result = :result, executed_at = COALESCE(executed_at, :now)
               WHERE id = :id AND status = 'approved' AND result IS NULL""",
            {"result": json.dumps(result, sort_keys=True), "now": iso(now), "id": token},
        )
        return cur.rowcount == 1

    def mark_approval_reminded(self, token: str, now: datetime) -> bool:
        """Claim the one reminder of a pending request."""
        cur = self.db.execute(
            "UPDATE approvals SET reminded_at = :now WHERE id = :id AND status = 'pending' AND reminded_at IS NULL",
            {"now": iso(now), "id": token},
        )
        return cur.rowcount == 1
