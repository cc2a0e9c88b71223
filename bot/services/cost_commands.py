"""``/fw cost``, ``/fw budget`` and the Scale to zero / Delete buttons of owner digests, as use cases."""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from bot.adapters.fireworks import FireworksError, NotFound
from bot.core import requests
from bot.core.costs import PeriodError, cost_report, period_window, previous_window
from bot.services import costs as cost_data
from bot.services.approvals import ask_to_delete, may_delete_now
from bot.services.changes import announce_in_thread, delete_deployment
from bot.services.container import Services
from bot.services.context import Context
from bot.services.deployments import UserError
from bot.ui import costs as cost_ui
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui.kit import Message

log = logging.getLogger("fwbot.costs")

# A disagreement with billingUsage above this is worth a line per deployment.
BILLING_TOLERANCE_PCT = 1.0
MAX_BILLING_LINES = 5


# -- /fw cost --------------------------------------------------------------------------------
def do_cost(ctx: Context, cmd: requests.CostCommand) -> Message:
    """Totals, idle dollars, the top five and the change against the previous period."""
    s = ctx.services
    now, tz = s.clock.now(), s.settings.tz
    period = cmd.period
    try:
        if period.kind == "range":
            assert period.date_from is not None and period.date_to is not None
            window = period_window((period.date_from, period.date_to), now, tz)
        else:
            window = period_window(period.kind, now, tz)
    except PeriodError as e:
        raise UserError(str(e)) from None
    if window.start >= now:
        raise UserError(f"{window.label} has not started yet; nothing has run in it.")
    previous = previous_window(window.start, min(window.end, now), tz)
    meta = cost_data.deployment_meta(s.store)
    results = cost_data.costs_between(s, window.start, window.end)
    before = cost_data.costs_between(s, previous.start, previous.end)
    report = cost_report(results, meta, by=cmd.by, previous=before, label=window.label)
    message = cost_ui.render_cost_report(report, simulated=s.simulated)
    note = billing_note(s, window.start, window.end, meta)
    # The footer stays last.
    message.blocks[-1:-1] = [note]
    return message


def billing_note(services: Services, start: datetime, end: datetime, meta: dict) -> Block:
    """What Fireworks' billingUsage says for the same days, and how far our count is from it."""
    try:
        check = cost_data.billing_check(services, start, end, meta)
    except FireworksError as e:
        return kit.context(f":receipt: Fireworks billingUsage could not be read ({kit.escape(e.message)}); "
                           "the figures above are fwbot's own count.")
    return kit.context(*billing_lines(check))


def _gpu_s(seconds: float) -> str:
    return f"{seconds:,.0f} GPU-s ({seconds / 3600:,.2f} GPU-h)"


def billing_lines(check: cost_data.BillingCheck) -> list[str]:
    """mrkdwn lines comparing fwbot's count with billingUsage (authoritative)."""
    if not check.theirs_s and not check.ours_s:
        return [":receipt: Fireworks billingUsage shows no GPU time on these days either."]
    billed = f", ≈ {cost_ui.usd(check.billed_usd)} at list price" if check.billed_usd is not None else ""
    pct = check.diff_pct
    diff = f"difference {pct:+.1f}%" if pct is not None else "Fireworks billed nothing"
    lines = [
        f":receipt: *Fireworks billingUsage* (authoritative, whole days): {_gpu_s(check.theirs_s)}{billed}; "
        f"counted here {_gpu_s(check.ours_s)} — {diff}."
    ]
    off = [r for r in check.rows if r.diff_pct is None or abs(r.diff_pct) > BILLING_TOLERANCE_PCT]
    for r in off[:MAX_BILLING_LINES]:
        rel = f"{r.diff_pct:+.1f}%" if r.diff_pct is not None else "not billed"
        lines.append(f"`{kit.escape(r.deployment_id)}`: counted {r.ours_s / 3600:,.2f} GPU-h, "
                     f"billed {r.theirs_s / 3600:,.2f} GPU-h ({rel})")
    if off:
        lines.append("fwbot counts from replica changes seen every sync interval; billingUsage is what is invoiced.")
    return lines


# -- /fw budget ------------------------------------------------------------------------------
def do_budget(ctx: Context, cmd: requests.BudgetCommand) -> Message:
    """Set a channel's monthly budget; alerts go to that channel at 80 % and 100 % of the projection."""
    s = ctx.services
    if s.settings.admins and not ctx.actor.is_admin:
        raise UserError("only an fwbot admin can set budgets (see `FWBOT_ADMINS`).")
    now = s.clock.now()
    s.store.set_budget(cmd.channel_id, cmd.usd_per_month, ctx.actor.user_id, now)
    ctx.ops.audit(ctx.actor.user_id, "budget", "ok", channel=cmd.channel_id,
                  request={"channel": cmd.channel_id, "usd_per_month": cmd.usd_per_month})
    month = cost_data.channel_month(s, cmd.channel_id)
    status = cost_ui.budget_line(cmd.usd_per_month, month.projected)
    spent = cost_ui.partial_usd(month.spent, month.price_known)
    text = (f":moneybag: {kit.mention(ctx.actor.user_id)} set the GPU budget of {kit.channel_link(cmd.channel_id)} "
            f"to {cost_ui.usd(cmd.usd_per_month)} per month. Spent in {month.label} so far: {spent}.")
    note = Message(text=text, blocks=[
        kit.section(text),
        kit.context(status, "Alerts go to the channel at 80% and 100% of the projected monthly spend, "
                    "each once a month."),
        kit.footer_context(s.simulated),
    ])
    try:
        s.poster.post(cmd.channel_id, note)
    except SlackApiError as e:
        # The reply below still says it; the channel just does not hear it from us.
        log.info("could not announce the budget in %s: %s", cmd.channel_id, e.response.get("error"))
    return note


# -- digest buttons --------------------------------------------------------------------------
def _value(body: dict) -> str:
    return str((body.get("actions") or [{}])[0].get("value") or "")


def scale_to_zero(ctx: Context, deployment_id: str) -> Message:
    """The digest's "Scale to zero": drop a minimum replica count to 0 if needed, then scale to 0.

    Idle deployments that cost money mostly have a minimum of 1 or more (with 0, Fireworks scales
    them down by itself), so the button lowers it; the reply says how to put it back.
    """
    s = ctx.services
    record = ctx.ops.authorize_change(ctx.actor, deployment_id)
    if record is not None and (record.gone or record.state in ("DELETED", "DELETING")):
        return ui.plain(f"`{deployment_id}` is already deleted; nothing to scale.")
    try:
        current = s.gateway.get_deployment(deployment_id)
    except NotFound:
        raise UserError(f"there is no deployment `{deployment_id}` any more.") from None
    floor = int(current.get("minReplicaCount") or 0)
    if floor == 0 and int(current.get("replicaCount") or 0) == 0:
        return ui.plain(f"`{deployment_id}` is already scaled to zero; it costs nothing until the next request.")
    if floor > 0:
        ctx.ops.update(ctx.actor, deployment_id, requests.DeploymentChange(min_replica_count=0))
    ctx.ops.scale(ctx.actor, deployment_id, 0)
    text = (f":arrow_down: {kit.mention(ctx.actor.user_id)} scaled `{deployment_id}` to zero from the cost digest. "
            "The next request waits for a cold start.")
    if floor > 0:
        text += (f" Its min replica count went from {floor} to 0; "
                 f"`/fw update {deployment_id} --min-replica-count {floor}` puts it back.")
    note = ui.plain(text, simulated=s.simulated)
    announce_in_thread(ctx, deployment_id, note)
    return note


def delete_idle(ctx: Context, deployment_id: str) -> Message:
    """The digest's "Delete" (Slack already asked for confirmation, once). The same rule as every
    delete: the owner or an admin deletes; anyone else asks an approver."""
    s = ctx.services
    record = s.store.deployment(deployment_id)
    if record is not None and (record.gone or record.state in ("DELETED", "DELETING")):
        return ui.plain(f"`{deployment_id}` is already deleted.")
    if not may_delete_now(ctx, deployment_id):
        return ask_to_delete(ctx, deployment_id)
    try:
        return delete_deployment(ctx, deployment_id, via=" from the cost digest")
    except NotFound:
        raise UserError(f"there is no deployment `{deployment_id}` any more.") from None
