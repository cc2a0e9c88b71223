"""Off-hours schedules of deployments (``schedules``): one per deployment, who set it and when.

The schedule itself is kept as the text ``/fw schedule`` took (``19:00 Mon-Fri``), which
:func:`bot.core.schedules.from_stored` reads back. Its transitions are ``bot_actions``
(``schedule_down``, ``schedule_up``); :meth:`SchedulesRepo.schedule_progress` says how far they got.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.clock import iso, parse_iso
from storage.rows import Repository, decoded

SCHEDULE_ACTIONS = ("schedule_down", "schedule_up")


@dataclass
class ScheduleRow:
    deployment_id: str
    down: str
    up: str | None
    up_min: int
    set_by: str
    set_at: datetime

    @classmethod
    def from_row(cls, row: dict) -> ScheduleRow:
        return cls(**decoded(cls, row, json_columns={}, times=("set_at",)))


class SchedulesRepo(Repository):
    def set_schedule(self, deployment_id: str, *, down: str, up: str | None, up_min: int, set_by: str,
                     now: datetime) -> None:
        """Set (or replace) a deployment's schedule; it counts from ``now``."""
        self.db.execute(
            """INSERT INTO schedules (deployment_id, down, up, up_min, set_by, set_at)
               VALUES (:id, :down, :up, :up_min, :by, :at)
               ON CONFLICT (deployment_id) DO UPDATE SET down = excluded.down, up = excluded.up,
                   up_min = excluded.up_min, set_by = excluded.set_by, set_at = excluded.set_at""",
            {"id": deployment_id, "down": down, "up": up, "up_min": int(up_min), "by": set_by, "at": iso(now)},
        )

    def schedule(self, deployment_id: str) -> ScheduleRow | None:
        row = self.db.one("SELECT * FROM schedules WHERE deployment_id = :id", {"id": deployment_id})
        return ScheduleRow.from_row(row) if row else None

    def schedules(self, deployment_id: str | None = None) -> dict[str, ScheduleRow]:
        """Every schedule (or the one of ``deployment_id``), by deployment."""
        where = "WHERE deployment_id = :id" if deployment_id else ""
        rows = self.db.query(f"SELECT * FROM schedules {where} ORDER BY deployment_id", {"id": deployment_id})
        return {r["deployment_id"]: ScheduleRow.from_row(r) for r in rows}

    def clear_schedule(self, deployment_id: str) -> bool:
        """Remove a deployment's schedule; False when it had none."""
        cur = self.db.execute("DELETE FROM schedules WHERE deployment_id = :id", {"id": deployment_id})
        return cur.rowcount == 1

    def schedule_progress(self, deployment_id: str | None = None) -> dict[str, datetime]:
        """``deployment → due time`` of the latest schedule transition fwbot started (running, done or
        failed). One only scheduled is still being decided (its re-check must still see it due), and
        a cancelled one is decided again."""
        where = "AND deployment_id = :id" if deployment_id else ""
        rows = self.db.query(
            f"""SELECT deployment_id, MAX(due_at) AS due FROM bot_actions
                WHERE kind IN ('schedule_down', 'schedule_up') AND status IN ('running', 'done', 'failed') {where}
                GROUP BY deployment_id""",
            {"id": deployment_id},
        )
        return {r["deployment_id"]: parse_iso(r["due"]) for r in rows}  # type: ignore[misc]

    def deployment_places(self) -> dict[str, tuple[str | None, str | None]]:
        """``deployment → (owner, channel)`` of every deployment not gone: whose policy rules apply
        to it, for a sweep that only needs to know which ones a policy schedule governs."""
        rows = self.db.rows("SELECT id, owner, channel FROM deployments WHERE gone_at IS NULL")
        return {r[0]: (r[1], r[2]) for r in rows}
