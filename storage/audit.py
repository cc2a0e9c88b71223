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
        with self.db.write():
            entry = self.db.scalar(
                """INSERT INTO audit (at, actor, action, deployment_id, channel, request, result, detail)
                   VALUES (:at, :actor, :action, :deployment_id, :channel, :request, :result, :detail)
                   RETURNING id""",
                {
                    "at": iso(now),
                    "actor": actor,
                    "action": action,
                    "deployment_id": deployment_id,
                    "channel": channel,
                    "request": json.dumps(request, sort_keys=True, default=str) if request is not None else None,
                    "result": result,
                    "detail": detail,
                },
            )
        return int(entry)

    def audit_trail(self, deployment_id: str | None = None, limit: int = 50) -> list[dict]:
        if deployment_id:
            return self.db.query(
                "SELECT * FROM audit WHERE deployment_id = :deployment_id ORDER BY id DESC LIMIT :limit",
                {"deployment_id": deployment_id, "limit": int(limit)},
            )
        return self.db.query("SELECT * FROM audit ORDER BY id DESC LIMIT :limit", {"limit": int(limit)})
