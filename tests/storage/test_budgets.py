"""storage/budgets.py on a real SQLite file: one budget per channel, replaced by the next one set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.budgets import BudgetsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_channel_has_one_budget_the_last_set(db):
    budgets = BudgetsRepo(db)
    assert budgets.budget("C2") is None and budgets.budgets() == []
    budgets.set_budget("C2", 500, "U1", T0)
    budgets.set_budget("C1", 120.5, "U1", T0)
    budgets.set_budget("C2", 800, "U2", T0 + timedelta(days=1))
    assert budgets.budget("C2") == {"channel": "C2", "usd_per_month": 800.0, "set_by": "U2",
                                    "set_at": "2026-11-03T09:00:00.000000Z"}
    assert [(b["channel"], b["usd_per_month"]) for b in budgets.budgets()] == [("C1", 120.5), ("C2", 800.0)]
