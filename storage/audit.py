"""The ``audit`` trail: who asked for what, on which deployment, and how it went."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.clock import iso
from storage.rows import Repository


class AuditRepo(Repository):
    def audit(
        self,
        *,
        actor: str,
        action: str,
        result: str,
        now: datetime,
        deployment_id: str | None = None,
        channel: str | None = None,
        request: Any = None,
        detail: str | None = None,
    ) -> int:
        cur = self.db.execute(
            """INSERT INTO audit (at, actor, action, deployment_id, channel, request, result, detail)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                iso(now),
                actor,
                action,
                deployment_id,
                channel,
                json.dumps(request, sort_keys=True, default=str) if request is not None else None,
                result,
                detail,
            ),
        )
        return int(cur.lastrowid or 0)

    def audit_trail(self, deployment_id: str | None = None, limit: int = 50) -> list[dict]:
        if deployment_id:
            return self.db.query(
                "SELECT * FROM audit WHERE deployment_id = ? ORDER BY id DESC LIMIT ?", (deployment_id, limit)
            )
        return self.db.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
