"""Renewals of a deployment's maximum lifetime (``lifetime_renewals``): who, when, until when.

A renewal is one row, written before anything is said about it; the latest one per deployment
restarts its lifetime (bot/core/lifecycle.py ``lifetime_due``).
"""

from __future__ import annotations

from datetime import datetime

from bot.core.clock import iso, parse_iso
from storage.rows import Repository


class RenewalsRepo(Repository):
    def record_renewal(self, deployment_id: str, renewed_by: str, now: datetime, *, limit_s: float,
                       due_at: datetime) -> None:
        """Record that ``renewed_by`` renewed the deployment's lifetime at ``now`` until ``due_at``."""
        self.db.execute(
            """INSERT INTO lifetime_renewals (deployment_id, renewed_by, renewed_at, limit_s, due_at)
               VALUES (:deployment_id, :by, :at, :limit_s, :due_at)""",
            {"deployment_id": deployment_id, "by": renewed_by, "at": iso(now), "limit_s": float(limit_s),
             "due_at": iso(due_at)},
        )

    def latest_renewals(self, deployment_id: str | None = None) -> dict[str, tuple[datetime, str]]:
        """``deployment → (renewed_at, renewed_by)`` of the latest renewal of each (or of one)."""
        where = "WHERE deployment_id = :deployment_id" if deployment_id else ""
        rows = self.db.query(
            f"""SELECT deployment_id, renewed_at, renewed_by FROM lifetime_renewals {where}
                ORDER BY deployment_id, renewed_at, id""",
            {"deployment_id": deployment_id},
        )
        out: dict[str, tuple[datetime, str]] = {}
        for r in rows:  # ordered: the last row of each deployment is its latest renewal
            at = parse_iso(r["renewed_at"])
            if at is not None:
                out[r["deployment_id"]] = (at, r["renewed_by"])
        return out
