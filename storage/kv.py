"""Small named values (``kv``), such as the deploy form's claims on a deployment id."""

from __future__ import annotations

from datetime import datetime

from bot.core.clock import iso
from storage.rows import Repository


class KvRepo(Repository):
    def get_kv(self, key: str) -> str | None:
        return self.db.scalar("SELECT value FROM kv WHERE key = :key", {"key": key})

    def set_kv(self, key: str, value: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (:key, :value, :at) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            {"key": key, "value": value, "at": iso(now)},
        )

    def claim_kv(self, key: str, value: str, now: datetime) -> str:
        """Set ``key`` to ``value`` unless it has a value already; the value it holds either way
        (the first writer's, whichever replica that was)."""
        self.db.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (:key, :value, :at) ON CONFLICT(key) DO NOTHING",
            {"key": key, "value": value, "at": iso(now)},
        )
        stored = self.get_kv(key)
        return value if stored is None else stored
