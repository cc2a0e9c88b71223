"""The ``effects`` table: Slack posts fwbot intends, kept until confirmed or handed to a human.

A row is written in the same transaction as the intent it carries out (a claimed warning, a new
approval request, a deployment's owner claim). Its status moves ``pending`` → ``sending`` (an
attempt whose outcome is unknown until Slack answers) → ``done`` (Slack's ts kept in
``result``), ``failed`` (no target would take it; a human was told where possible) or
``cancelled`` (no longer wanted when its turn came). Every status change is a compare-and-set
on the row, so two deliverers never both finish one effect.

Replicas sharing the database claim an attempt as they start it (``claimed_by``): while the
replica that claimed it is present (its presence lease, storage/leases.py) and for at most
:data:`ATTEMPT_HOLD`, no other replica attempts it again or cancels it. A claim that lapsed is an
attempt of unknown outcome, to be looked up in Slack first, as one a crash left behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import iso, parse_iso
from storage.db import Database
from storage.leases import PRESENCE

OPEN = ("pending", "sending")
# The longest one attempt may take (Slack's 15 s timeout, retried on dropped connections and 429s):
# a claim older than this is given up even while its replica is present.
ATTEMPT_HOLD = timedelta(minutes=5)
# Whether the row's claim leaves it to others: no claim, the asker's own, run out, or made by a
# replica that is no longer present. (Parameters :by and :now.)
_FREE = f"""(effects.claimed_by IS NULL OR effects.claimed_by = :by OR effects.claimed_until <= :now
    OR NOT EXISTS (SELECT 1 FROM leases WHERE leases.name = '{PRESENCE}' || effects.claimed_by
                   AND leases.expires_at > :now))"""


@dataclass(frozen=True)
class EffectRow:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_at: datetime
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    claimed_by: str | None = None  # the replica whose attempt is (or was last) under way

    @classmethod
    def from_row(cls, row: dict) -> EffectRow:
        next_at, created_at = parse_iso(row["next_at"]), parse_iso(row["created_at"])
        assert next_at is not None and created_at is not None
        return cls(id=row["id"], key=row["key"], kind=row["kind"], payload=json.loads(row["payload"]),
                   status=row["status"], attempts=row["attempts"], next_at=next_at,
                   result=json.loads(row["result"]) if row["result"] else None, error=row["error"],
                   created_at=created_at, claimed_by=row.get("claimed_by"))

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


class Effects:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, key: str, kind: str, payload: dict[str, Any], now: datetime,
            not_before: datetime | None = None) -> bool:
        """Record an intended effect; False when one with this key already exists (it is the same one)."""
        cur = self.db.execute(
            "INSERT INTO effects (key, kind, payload, status, attempts, next_at, created_at, updated_at) "
            "VALUES (:key, :kind, :payload, 'pending', 0, :next_at, :now, :now) ON CONFLICT(key) DO NOTHING",
            {"key": key, "kind": kind, "payload": json.dumps(payload, default=str), "next_at": iso(not_before or now),
             "now": iso(now)})
        return cur.rowcount == 1

    def get(self, key: str) -> EffectRow | None:
        row = self.db.one("SELECT * FROM effects WHERE key = :key", {"key": key})
        return EffectRow.from_row(row) if row else None

    def due(self, now: datetime, limit: int = 200, *, by: str | None = None) -> list[EffectRow]:
        """Open effects whose time has come, oldest first; not those another replica than ``by``
        is posting right now."""
        rows = self.db.query(f"SELECT * FROM effects WHERE next_at <= :now AND (status = 'pending' "
                             f"OR (status = 'sending' AND {_FREE})) ORDER BY id LIMIT :limit",
                             {"now": iso(now), "by": by, "limit": limit})
        return [EffectRow.from_row(r) for r in rows]

    def held_by_other(self, effect_id: int, now: datetime, *, by: str | None) -> bool:
        """Whether another replica than ``by`` has an attempt of this effect under way."""
        return self.db.scalar(f"SELECT 1 FROM effects WHERE id = :id AND status = 'sending' AND NOT {_FREE}",
                              {"id": effect_id, "now": iso(now), "by": by}) is not None

    def open(self, kind: str | None = None) -> list[EffectRow]:
        where = "AND kind = :kind" if kind else ""
        rows = self.db.query(f"SELECT * FROM effects WHERE status IN ('pending', 'sending') {where} ORDER BY id",
                             {"kind": kind})
        return [EffectRow.from_row(r) for r in rows]

    def next_due_at(self) -> datetime | None:
        return parse_iso(self.db.scalar("SELECT MIN(next_at) FROM effects WHERE status IN ('pending', 'sending')"))

    def start_attempt(self, effect_id: int, now: datetime, *, by: str | None = None) -> bool:
        """Mark an attempt as under way, claimed by replica ``by`` (committed before Slack is
        called: a crash leaves it ``sending``, an outcome to look up, never a post to make blindly
        again). False when it is closed, or another replica's attempt is under way."""
        cur = self.db.execute(
            f"""UPDATE effects SET status = 'sending', attempts = attempts + 1, updated_at = :now,
                    claimed_by = :by, claimed_until = :until
                WHERE id = :id AND (status = 'pending' OR (status = 'sending' AND {_FREE}))""",
            {"id": effect_id, "now": iso(now), "by": by, "until": iso(now + ATTEMPT_HOLD)})
        return cur.rowcount == 1

    def retry_at(self, effect_id: int, when: datetime, error: str, now: datetime) -> bool:
        cur = self.db.execute(
            "UPDATE effects SET status = 'pending', next_at = :next_at, error = :error, updated_at = :now, "
            "claimed_until = NULL WHERE id = :id AND status IN ('pending', 'sending')",
            {"next_at": iso(when), "error": error, "now": iso(now), "id": effect_id})
        return cur.rowcount == 1

    def cancel(self, effect_id: int, now: datetime, error: str, *, by: str | None = None) -> bool:
        """Cancel an open effect, unless another replica than ``by`` is posting it right now."""
        cur = self.db.execute(
            f"""UPDATE effects SET status = 'cancelled', error = :error, updated_at = :now
                WHERE id = :id AND (status = 'pending' OR (status = 'sending' AND {_FREE}))""",
            {"id": effect_id, "now": iso(now), "by": by, "error": error})
        return cur.rowcount == 1

    def finish(self, effect_id: int, status: str, now: datetime, *, result: dict[str, Any] | None = None,
               error: str | None = None) -> bool:
        """Close an open effect (compare-and-set: only the first close counts)."""
        cur = self.db.execute(
            "UPDATE effects SET status = :status, result = :result, error = COALESCE(:error, error), updated_at = :now "
            "WHERE id = :id AND status IN ('pending', 'sending')",
            {"status": status, "result": json.dumps(result) if result is not None else None, "error": error,
             "now": iso(now), "id": effect_id})
        return cur.rowcount == 1

    def recent_posts(self, since: datetime) -> dict[str, datetime]:
        """The latest post (or attempt) per channel since a time, as recorded."""
        out: dict[str, datetime] = {}
        for r in self.db.query("SELECT result, updated_at FROM effects WHERE updated_at >= :since "
                               "AND result IS NOT NULL", {"since": iso(since)}):
            channel, at = json.loads(r["result"]).get("channel"), parse_iso(r["updated_at"])
            if channel and at is not None and (channel not in out or at > out[channel]):
                out[channel] = at
        return out

    def prune(self, before: datetime) -> int:
        """Drop finished effects last touched before ``before`` (open ones are never dropped)."""
        cur = self.db.execute("DELETE FROM effects WHERE status IN ('done', 'failed', 'cancelled') "
                              "AND updated_at < :before", {"before": iso(before)})
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        return {r["status"]: r["n"] for r in self.db.query("SELECT status, COUNT(*) AS n FROM effects GROUP BY status")}
