"""The bot's own scheduled actions (``bot_actions``): keep-warm reverts, auto-deletes, snoozes' ends.

An action is keyed by its idempotency key and moves scheduled → running → done | cancelled | failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, text

from bot.core.clock import iso, parse_iso
from storage.rows import IN_CHUNK, Repository, decoded, where_matching

# The statuses of a chunk of action keys (``:keys``, a list of at most IN_CHUNK).
_STATUSES = text("SELECT key, status FROM bot_actions WHERE key IN :keys").bindparams(
    bindparam("keys", expanding=True, type_=Text()))


@dataclass
class BotActionRow:
    """Something the bot does itself (a keep-warm revert, an auto-delete, a snooze's end)."""

    id: int
    key: str
    kind: str
    deployment_id: str
    due_at: datetime
    payload: dict
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    result: str | None

    @classmethod
    def from_row(cls, row: dict) -> BotActionRow:
        return cls(**decoded(cls, row, json_columns={"payload": {}}, times=("due_at", "created_at", "updated_at")))


class ActionsRepo(Repository):
    def schedule_action(self, key: str, kind: str, deployment_id: str, due_at: datetime, now: datetime,
                        payload: dict | None = None) -> bool:
        """Record an action the bot will carry out; False when ``key`` was scheduled before."""
        cur = self.db.execute(
            """INSERT INTO bot_actions (key, kind, deployment_id, due_at, payload, status, created_at, updated_at)
               VALUES (:key, :kind, :deployment_id, :due_at, :payload, 'scheduled', :now, :now)
               ON CONFLICT (key) DO NOTHING""",
            {"key": key, "kind": kind, "deployment_id": deployment_id, "due_at": iso(due_at),
             "payload": json.dumps(payload or {}, sort_keys=True), "now": iso(now)},
        )
        return cur.rowcount == 1

    def bot_action(self, key: str) -> BotActionRow | None:
        row = self.db.one("SELECT * FROM bot_actions WHERE key = :key", {"key": key})
        return BotActionRow.from_row(row) if row else None

    def bot_actions(self, *, deployment_id: str | None = None, kind: str | None = None,
                    statuses: tuple[str, ...] = ()) -> list[BotActionRow]:
        where, params = where_matching(deployment_id=deployment_id, kind=kind, status=statuses or None)
        sql = f"SELECT * FROM bot_actions WHERE {where} ORDER BY due_at, id"
        return [BotActionRow.from_row(r) for r in self.db.query(sql, params)]

    def action_statuses(self, keys: list[str]) -> dict[str, str]:
        """The status of each of these action keys that was ever scheduled."""
        out: dict[str, str] = {}
        for i in range(0, len(keys), IN_CHUNK):
            chunk = keys[i:i + IN_CHUNK]
            out.update((key, status) for key, status in self.db.rows(_STATUSES, {"keys": chunk}))
        return out

    def postponements(self, deployment_id: str | None = None) -> dict[tuple[str, str], datetime]:
        """``(deployment, kind) → until`` of the latest snooze and keep-warm (cancelled ones aside)."""
        where = "AND deployment_id = :deployment_id" if deployment_id else ""
        rows = self.db.query(
            f"""SELECT deployment_id, kind, MAX(due_at) AS until FROM bot_actions
                WHERE kind IN ('snooze', 'keep_warm_revert') AND status != 'cancelled' {where}
                GROUP BY deployment_id, kind""",
            {"deployment_id": deployment_id},
        )
        return {(r["deployment_id"], r["kind"]): parse_iso(r["until"]) for r in rows}  # type: ignore[misc]

    def runnable_actions(self, now: datetime) -> list[BotActionRow]:
        """Scheduled actions that are due, and running ones a crash interrupted."""
        rows = self.db.query(
            "SELECT * FROM bot_actions WHERE status IN ('scheduled', 'running') AND due_at <= :now ORDER BY due_at, id",
            {"now": iso(now)},
        )
        return [BotActionRow.from_row(r) for r in rows]

    def start_action(self, key: str, now: datetime) -> bool:
        """Mark an action running (again, after a crash) and count the attempt."""
        cur = self.db.execute(
            """UPDATE bot_actions SET status = 'running', attempts = attempts + 1, updated_at = :now
               WHERE key = :key AND status IN ('scheduled', 'running')""",
            {"now": iso(now), "key": key},
        )
        return cur.rowcount == 1

    def note_action_progress(self, key: str, now: datetime, **progress: Any) -> None:
        """Merge what a running action has done so far into its payload, so a re-run skips it."""
        with self.db.write():  # the read and the write in one (serialised) transaction: no update lost
            row = self.db.one("SELECT payload FROM bot_actions WHERE key = :key", {"key": key})
            if row is None:
                return
            payload = {**json.loads(row["payload"] or "{}"), **progress}
            self.db.execute("UPDATE bot_actions SET payload = :payload, updated_at = :now WHERE key = :key",
                            {"payload": json.dumps(payload, sort_keys=True, default=str), "now": iso(now), "key": key})

    def finish_action(self, key: str, status: str, result: str, now: datetime) -> bool:
        """Close an action (done, cancelled or failed); False when it was closed before."""
        cur = self.db.execute(
            """UPDATE bot_actions SET status = :status, result = :result, updated_at = :now
               WHERE key = :key AND status IN ('scheduled', 'running')""",
            {"status": status, "result": result, "now": iso(now), "key": key},
        )
        return cur.rowcount == 1
