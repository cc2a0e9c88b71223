"""The lifecycle's warnings (``warnings``, ``warning_snapshots``).

A warning is claimed (INSERT OR IGNORE on its unique key) before it is posted and marked sent
with its message afterwards, so a restart re-posts what was claimed but never sent and never
sends a key twice. It is resolved at most once (compare-and-set on ``status``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.core.clock import iso
from storage.rows import IN_CHUNK, Repository, decoded, new_token


@dataclass
class WarningRow:
    """One claimed or sent warning; ``key`` is its unique (deployment, timer, due, lead)."""

    id: int
    deployment_id: str
    timer: str
    due: str
    lead_s: float
    status: str
    channel: str | None
    ts: str | None
    token: str
    claimed_at: datetime
    sent_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    snapshot: dict | None

    @classmethod
    def from_row(cls, row: dict) -> WarningRow:
        return cls(**decoded(cls, row, json_columns={"snapshot": None}, times=("claimed_at", "sent_at", "resolved_at")))

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.deployment_id, self.timer, self.due, float(self.lead_s))

    @property
    def is_open(self) -> bool:
        return self.status in ("claimed", "sent")


class WarningsRepo(Repository):
    def claim_warning(self, deployment_id: str, timer: str, due: str, lead_s: float, *, channel: str | None,
                      snapshot: dict, now: datetime) -> WarningRow | None:
        """Claim one warning before posting it; ``None`` when its key was claimed before."""
        with self.db.write() as conn:
            cur = conn.execute(
                """INSERT OR IGNORE INTO warnings (deployment_id, timer, due, lead_s, status, channel, token, claimed_at)
                   VALUES (?, ?, ?, ?, 'claimed', ?, ?, ?)""",
                (deployment_id, timer, due, float(lead_s), channel, new_token(), iso(now)),
            )
            if cur.rowcount != 1:
                return None
            conn.execute("INSERT INTO warning_snapshots (warning_id, body) VALUES (?, ?)",
                         (cur.lastrowid, json.dumps(snapshot, sort_keys=True)))
            return self.warning(int(cur.lastrowid or 0))

    def _warnings(self, where: str, params: tuple) -> list[WarningRow]:
        rows = self.db.query(
            f"""SELECT w.*, s.body AS snapshot FROM warnings w
                LEFT JOIN warning_snapshots s ON s.warning_id = w.id WHERE {where} ORDER BY w.id""",
            params,
        )
        return [WarningRow.from_row(r) for r in rows]

    def warning(self, warning_id: int) -> WarningRow | None:
        found = self._warnings("w.id = ?", (warning_id,))
        return found[0] if found else None

    def warning_by_token(self, token: str) -> WarningRow | None:
        found = self._warnings("w.token = ?", (token,))
        return found[0] if found else None

    def warnings(self, *, deployment_id: str | None = None, statuses: tuple[str, ...] = ()) -> list[WarningRow]:
        where, params = "1=1", []
        if deployment_id is not None:
            where += " AND w.deployment_id = ?"
            params.append(deployment_id)
        if statuses:
            where += f" AND w.status IN ({', '.join('?' for _ in statuses)})"
            params += list(statuses)
        return self._warnings(where, tuple(params))

    def deployments_with_open_warnings(self) -> set[str]:
        """Ids of the deployments with a warning claimed or sent and not yet resolved."""
        return {r[0] for r in self.db.conn.execute(
            "SELECT DISTINCT deployment_id FROM warnings WHERE status IN ('claimed', 'sent')").fetchall()}

    def warnings_in_message(self, channel: str, ts: str) -> list[WarningRow]:
        return self._warnings("w.channel = ? AND w.ts = ?", (channel, ts))

    def warnings_about(self, dues: list[tuple[str, str, str]]) -> list[WarningRow]:
        """Every warning (any lead, any status) about these ``(deployment, timer, due)`` triples."""
        out: list[WarningRow] = []
        step = IN_CHUNK // 3  # three parameters per triple
        for i in range(0, len(dues), step):
            chunk = dues[i:i + step]
            where = " OR ".join("(w.deployment_id = ? AND w.timer = ? AND w.due = ?)" for _ in chunk)
            out += self._warnings(where, tuple(x for triple in chunk for x in triple))
        return out

    def mark_warning_sent(self, warning_id: int, channel: str, ts: str, now: datetime,
                          snapshot: dict | None = None) -> None:
        """Record the message a claimed warning went out in (and what it said, when re-decided)."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE warnings SET status = 'sent', channel = ?, ts = ?, sent_at = ? WHERE id = ? AND status = 'claimed'",
                (channel, ts, iso(now), warning_id),
            )
            if snapshot is not None:
                conn.execute("INSERT OR REPLACE INTO warning_snapshots (warning_id, body) VALUES (?, ?)",
                             (warning_id, json.dumps(snapshot, sort_keys=True)))

    def resolve_warning(self, warning_id: int, resolution: str, now: datetime, *, status: str = "resolved") -> bool:
        """Close an open warning; True only for the one call that closed it (the first decision wins)."""
        cur = self.db.execute(
            """UPDATE warnings SET status = ?, resolution = ?, resolved_at = ?
               WHERE id = ? AND status IN ('claimed', 'sent')""",
            (status, resolution, iso(now), warning_id),
        )
        return cur.rowcount == 1
