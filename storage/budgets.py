"""Channel budgets (``budgets``): dollars a month, who set them and when."""

from __future__ import annotations

from datetime import datetime

from bot.core.clock import iso
from storage.rows import Repository


class BudgetsRepo(Repository):
    def set_budget(self, channel: str, usd_per_month: float, set_by: str, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO budgets (channel, usd_per_month, set_by, set_at) VALUES (:channel, :usd, :by, :at)
               ON CONFLICT(channel) DO UPDATE SET usd_per_month = excluded.usd_per_month,
                   set_by = excluded.set_by, set_at = excluded.set_at""",
            {"channel": channel, "usd": float(usd_per_month), "by": set_by, "at": iso(now)},
        )

    def budget(self, channel: str) -> dict | None:
        return self.db.one("SELECT * FROM budgets WHERE channel = :channel", {"channel": channel})

    def budgets(self) -> list[dict]:
        return self.db.query("SELECT * FROM budgets ORDER BY channel")
