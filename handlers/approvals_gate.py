"""Where requests meet the approval policy (see bot/approvals.py)."""

from __future__ import annotations

from typing import Any

from bot.approvals import approval_reason
from bot.operations import UserError
from bot.services import Services


def needs_approval(services: Services, *, planned: Any = None, before_usd: float | None = None,
                   after_usd: float | None = None, foreign_delete: bool = False) -> str | None:
    s = services.settings
    return approval_reason(
        approvers=s.approvers,
        threshold=s.approval_threshold_usd_per_hour,
        new_usd=planned.usd_per_hour if planned is not None else after_usd,
        before_usd=before_usd,
        foreign_delete=foreign_delete,
    )


def request_approval(ctx, **request: Any):
    raise UserError("this request needs an approver, and approval requests are not available in this fwbot yet.")
