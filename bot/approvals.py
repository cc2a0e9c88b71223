"""Approval policy: which requests need a second person (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.pricing import format_usd


def approval_reason(*, approvers: Sequence[str], threshold: float, new_usd: float | None,
                    before_usd: float | None = None, foreign_delete: bool = False) -> str | None:
    """Why a request needs approval, or ``None`` when it can run at once.

    No approvers configured means approvals are off. An unknown price needs approval, since its
    worst case cannot be bounded.
    """
    if not approvers:
        return None
    if foreign_delete:
        return "deleting someone else's deployment"
    if new_usd is None:
        return "its accelerator has no known price, so its worst case cannot be bounded"
    if new_usd > threshold and (before_usd is None or before_usd <= threshold or new_usd > before_usd):
        if before_usd is not None and before_usd > threshold:
            return f"it raises the worst case from {format_usd(before_usd)} to {format_usd(new_usd)}"
        return f"its worst case, {format_usd(new_usd)}, is above the {format_usd(threshold)} threshold"
    return None
