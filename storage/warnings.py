"""The lifecycle's warnings (``warnings``, ``warning_snapshots``).

A warning is claimed (``INSERT … ON CONFLICT DO NOTHING`` on its unique key, one statement on
both engines) before it is posted and marked sent
with its message afterwards, so a restart re-posts what was claimed but never sent and never
sends a key twice. It is resolved at most once (compare-and-set on ``status``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
        with self.db.write():
            # No row back: the key (or, vanishingly unlikely, the token) was taken before.
            warning_id = self.db.scalar(
                """INSERT INTO warnings (deployment_id, timer, due, lead_s, status, channel, token, claimed_at)
                   VALUES (:deployment_id, :timer, :due, :lead_s, 'claimed', :channel, :token, :now)
                   ON CONFLICT DO NOTHING RETURNING id""",
                {"deployment_id": deployment_id, "timer": timer, "due": due, "lead_s": float(lead_s),
                 "channel": channel, "token": new_token(), "now": iso(now)},
            )
            if warning_id is None:
                return None
            self.db.execute("INSERT INTO warning_snapshots (warning_id, body) VALUES (:id, :body)",
                            {"id": warning_id, "body": json.dumps(snapshot, sort_keys=True)})
            return self.warning(int(warning_id))

    def _warnings(self, where: str, params: dict[str, Any]) -> list[WarningRow]:
        rows = self.db.query(
            f"""SELECT w.*, s.body AS snapshot FROM warnings w
                LEFT JOIN warning_snapshots s ON s.warning_id = w.id WHERE {where} ORDER BY w.id""",
            params,
        )
        return [WarningRow.from_row(r) for r in rows]

    def warning(self, warning_id: int) -> WarningRow | None:
        found = self._warnings("w.id = :id", {"id": warning_id})
        return found[0] if found else None

    def warning_by_token(self, token: str) -> WarningRow | None:
        found = self._warnings("w.token = :token", {"token": token})
        return found[0] if found else None

    def warnings(self, *, deployment_id: str | None = None, statuses: tuple[str, ...] = ()) -> list[WarningRow]:
        where, params = "1=1", {}
        if deployment_id is not None:
            where += " AND w.deployment_id = :deployment_id"
            params["deployment_id"] = deployment_id
        if statuses:
            names = [f"status_{i}" for i in range(len(statuses))]
            where += f" AND w.status IN ({', '.join(':' + n for n in names)})"
            params.update(zip(names, statuses, strict=True))
        return self._warnings(where, params)

    def deployments_with_open_warnings(self) -> set[str]:
        """Ids of the deployments with a warning claimed or sent and not yet resolved."""
        return {r[0] for r in self.db.rows(
            "SELECT DISTINCT deployment_id FROM warnings WHERE status IN ('claimed', 'sent')")}

    def warnings_in_message(self, channel: str, ts: str) -> list[WarningRow]:
        return self._warnings("w.channel = :channel AND w.ts = :ts", {"channel": channel, "ts": ts})

    def warnings_about(self, dues: list[tuple[str, str, str]]) -> list[WarningRow]:
        """Every warning (any lead, any status) about these ``(deployment, timer, due)`` triples."""
        out: list[WarningRow] = []
        step = IN_CHUNK // 3  # three parameters per triple
        for i in range(0, len(dues), step):
            chunk = dues[i:i + step]
            where = " OR ".join(f"(w.deployment_id = :d{j} AND w.timer = :t{j} AND w.due = :u{j})"
                                for j in range(len(chunk)))
            params: dict[str, Any] = {}
            for j, (deployment_id, timer, due) in enumerate(chunk):
                params.update({f"d{j}": deployment_id, f"t{j}": timer, f"u{j}": due})
            out += self._warnings(where, params)
        return out

    def mark_warning_sent(self, warning_id: int, channel: str, ts: str, now: datetime,
                          snapshot: dict | None = None) -> None:
        """Record the message a claimed warning went out in (and what it said, when re-decided)."""
        with self.db.write():
            self.db.execute(
                """UPDATE warnings SET status = 'sent', channel = :channel, ts = :ts, sent_at = :now
                   WHERE id = :id AND status = 'claimed'""",
                {"channel": channel, "ts": ts, "now": iso(now), "id": warning_id},
            )
            if snapshot is not None:
                self.db.execute(
                    """INSERT INTO warning_snapshots (warning_id, body) VALUES (:id, :body)
                       ON CONFLICT (warning_id) DO UPDATE SET body = excluded.body""",
                    {"id": warning_id, "body": json.dumps(snapshot, sort_keys=True)})

    def resolve_warning(self, warning_id: int, resolution: str, now: datetime, *, status: str = "resolved") -> bool:
        """Close an open warning; True only for the one call that closed it (the first decision wins)."""
        cur = self.db.execute(
            """UPDATE warnings SET status = :status, resolution = :resolution, resolved_at = :now
               WHERE id = :id AND status IN ('claimed', 'sent')""",
            {"status": status, "resolution": resolution, "now": iso(now), "id": warning_id},
        )
        return cur.rowcount == 1
