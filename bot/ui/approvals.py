"""Block Kit for approvals: the request, its decided form, the requester's wait, reminders, expiry.

Every button carries only the request's opaque token; the handlers look everything else up, so a
button cannot carry (or be forged to carry) an operation. Everything is rendered from the stored
request, so a message rebuilt after a restart reads the same as the first one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.core.approvals import APPROVED, CANCELLED, EXPIRED, PENDING, REJECTED, ClickOutcome, is_usergroup
from bot.core.pricing import format_usd, usd_per_day
from bot.ui import kit
from bot.ui.deployments import DELETE_ANYWAY
from bot.ui.kit import Message
from storage.approvals import ApprovalRecord

APPROVE = "approval_approve"
REJECT = "approval_reject"
CANCEL = "approval_cancel"
REJECT_VIEW = "approval_reject_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "v"

STATUS_EMOJI = {
    PENDING: ":raised_hand:",
    APPROVED: ":white_check_mark:",
    REJECTED: ":no_entry:",
    EXPIRED: ":hourglass:",
    CANCELLED: ":heavy_multiplication_x:",
}


def approver_mention(approver_id: str) -> str:
    """A user or a user group, as Slack renders mentions of each."""
    return f"<!subteam^{approver_id}>" if is_usergroup(approver_id) else kit.mention(approver_id)


def approvers_text(approvers: Sequence[str]) -> str:
    return ", ".join(approver_mention(a) for a in approvers) or "nobody"


def who(user_id: str | None) -> str:
    """A person as Slack shows them (a mention renders as their name); fwbot itself by name."""
    if user_id == "fwbot":
        return "fwbot"
    return kit.mention(user_id)


def deciders_text(record: ApprovalRecord, approvers: Sequence[str]) -> str:
    """Who can decide this request: as worked out when it was asked (the requester left out, admins
    standing in when nobody else is an approver); ``approvers`` for requests stored before that."""
    named = record.request.get("deciders")
    if named is None:
        return approvers_text([a for a in approvers if a != record.requester])
    text = approvers_text(named)
    if record.request.get("admin_fallback"):
        text += (" (fwbot admins stand in: nobody on the approver list but the requester could "
                 "approve it)")
    return text


def when(moment: datetime | None) -> str:
    return kit.slack_date(moment) if moment else "an unknown time"


def what(record: ApprovalRecord) -> str:
    """The operation in a few words: ``deploy `web-1```, ``permanently delete `web-1```."""
    dep = f"`{kit.escape(record.deployment_id or '?')}`"
    if record.kind == "delete":
        anyway = " even while it is in use" if record.request.get("ignore_checks") else ""
        return f"{'permanently ' if record.request.get('hard') else ''}delete {dep}{anyway}"
    return f"{record.kind} {dep}"


def money(record: ApprovalRecord) -> str:
    """Worst case per hour and per day; for an update, from what it is now."""
    usd = record.usd_per_hour
    text = f"{format_usd(usd)} · {format_usd(usd_per_day(usd), '/day')}" if usd is not None else format_usd(None)
    if record.kind == "update" and "usd_before" in record.request:
        return f"*Worst case:* {format_usd(record.request.get('usd_before'))} → {text}"
    if record.kind == "delete":
        return f"*Worst case it stops:* {text}"
    return f"*Worst case:* {text}"


def details(record: ApprovalRecord) -> str:
    """Exactly what will run: the full spec of a deploy, the diff of an update, the delete."""
    req = record.request
    if record.kind == "deploy":
        lines = [f"*{kit.escape(k)}:* {kit.escape(v)}" for k, v in req.get("summary") or []]
    elif record.kind == "update":
        lines = [str(line) for line in req.get("diff") or []]
    else:
        how = ("permanently (cannot be undone)" if req.get("hard")
               else "(can be undone with `/fw undelete` until Fireworks purges it)")
        lines = [f"Delete {how}.", f"*Owner:* {kit.mention(req.get('owner'))}"]
        if req.get("ignore_checks"):
            lines.insert(1, "Even while it is in use: Fireworks' check that it serves no traffic is skipped "
                            "(`--ignore-checks`), so requests to it fail.")
    return "\n".join(lines) or "_(no details)_"


def _head(record: ApprovalRecord) -> list:
    return [
        kit.section(f"{kit.mention(record.requester)} asks to *{what(record)}* "
                    f"(asked in {kit.channel_link(record.channel)}).\n"
                    f"*Why it needs approval:* {kit.escape(record.request.get('why') or '?')}"),
        kit.section(details(record)),
        kit.section(money(record)),
    ]


def request_message(record: ApprovalRecord, *, approvers: Sequence[str], simulated: bool) -> Message:
    """The request in the approval channel: who, what exactly, the money, Approve / Reject."""
    blocks = [
        kit.header(f"Approval needed: {record.kind} {record.deployment_id or ''}".strip()),
        *_head(record),
        kit.context(f"Who can decide: {deciders_text(record, approvers)} · expires {when(record.expires_at)} · "
                    "the requester cannot approve their own request"),
        kit.actions(
            kit.button("Approve", APPROVE, record.id, style="primary"),
            kit.button("Reject", REJECT, record.id, style="danger"),
            block_id="approval",
        ),
        kit.footer_context(simulated),
    ]
    return Message(text=f"Approval needed: {kit.mention(record.requester)} asks to {what(record)}", blocks=blocks)


def decision_line(record: ApprovalRecord) -> str:
    """Who decided and when, in one line (no buttons any more)."""
    emoji = STATUS_EMOJI.get(record.status, "")
    if record.status == APPROVED:
        return f"{emoji} Approved by {kit.mention(record.decided_by)} · {when(record.decided_at)}"
    if record.status == REJECTED:
        reason = f": _{kit.escape(kit.clip(record.reason or '', 500))}_" if record.reason else ""
        return f"{emoji} Rejected by {kit.mention(record.decided_by)} · {when(record.decided_at)}{reason}"
    if record.status == EXPIRED:
        return f"{emoji} Expired {when(record.expires_at)}: nobody decided in time."
    if record.status == CANCELLED:
        why = f": {kit.escape(kit.clip(record.reason, 500))}" if record.reason and record.decided_by == "fwbot" else ""
        return f"{emoji} Cancelled by {who(record.decided_by)} · {when(record.decided_at)}{why}"
    return f"{emoji} Waiting for an approver (expires {when(record.expires_at)})"


def run_line(record: ApprovalRecord) -> str | None:
    """What the approved operation did, or that it is running."""
    if record.status != APPROVED:
        return None
    if record.result is None:
        return ":gear: Running it now…"
    # Result texts are fwbot's own mrkdwn; Fireworks' words in them were escaped when recorded.
    text = kit.clip(str(record.result.get("text") or ""), 1500)
    return f":rocket: Ran: {text}" if record.result.get("ok") else f":x: Did not run: {text}"


def decided_message(record: ApprovalRecord, *, simulated: bool) -> Message:
    """The request message after a decision: same facts, who decided when, what ran; no buttons."""
    line = decision_line(record)
    blocks = [
        kit.header(f"{record.status.capitalize()}: {record.kind} {record.deployment_id or ''}".strip()),
        *_head(record),
        kit.section(line),
        kit.section(run_line(record)) if run_line(record) else None,
        kit.footer_context(simulated),
    ]
    return Message(text=f"{line} — {what(record)} for {kit.mention(record.requester)}", blocks=blocks)


def waiting_message(record: ApprovalRecord, *, approvers: Sequence[str], simulated: bool,
                    queued_in: str | None = None, again: bool = False) -> Message:
    """What the requester sees: waiting for approval, where, with a Cancel button. ``queued_in``:
    the request is not in that channel yet (its 1-message-per-second turn is coming). ``again``:
    they had asked for exactly this already, and this is that request."""
    where = kit.channel_link(queued_in or record.message_channel or record.channel)
    asked = f"It goes to {where} in a moment" if queued_in else f"Asked in {where}"
    if again:
        asked = f"You asked for this already {when(record.created_at)}, in {where}; nothing new was requested"
    text = (f":hourglass_flowing_sand: Waiting for approval — *{what(record)}* needs an approver because "
            f"{kit.escape(record.request.get('why') or '?')}. {asked}; who can approve it: "
            f"{deciders_text(record, approvers)}. It expires {when(record.expires_at)}; I'll message you the outcome "
            "and update this message.")
    return Message(text=text, blocks=[
        kit.section(text),
        kit.section(money(record)),
        kit.actions(kit.button("Cancel request", CANCEL, record.id,
                               confirm_with=kit.confirm("Cancel request?", f"Withdraw your request to {what(record)}?",
                                                        ok="Withdraw", deny="Keep it")),
                    block_id="approval_wait"),
        kit.footer_context(simulated),
    ])


def cancelled_for_requester(record: ApprovalRecord) -> Message:
    text = f":heavy_multiplication_x: You withdrew your request to {what(record)}. Nothing ran."
    return Message(text=text, blocks=[kit.section(text)])


def settled_for_requester(record: ApprovalRecord, *, simulated: bool) -> Message:
    """The requester's "waiting for approval" message once the request is decided: the decision,
    who and when, and what ran; no Cancel button any more."""
    ran = run_line(record)
    text = f"Your request to *{what(record)}*: {decision_line(record)}"
    blocks = [kit.section(text)]
    if record.status == REJECTED and record.reason:
        blocks = [kit.section(f"Your request to *{what(record)}*: {STATUS_EMOJI[REJECTED]} Rejected by "
                              f"{who(record.decided_by)} · {when(record.decided_at)}"),
                  kit.section(f"*Reason:* {kit.escape(kit.clip(record.reason, 1500))}")]
    if ran:
        blocks.append(kit.section(ran))
    blocks.append(kit.footer_context(simulated))
    return Message(text=f"Your request to {what(record)}: {record.status}", blocks=blocks)


def stale_cancel(record: ApprovalRecord, *, now: datetime) -> Message:
    """The answer to a Cancel click on a request that is no longer waiting: what happened to it, by
    whom and when. It replaces the stale "waiting" message, so its button goes away."""
    if record.status == PENDING and now >= record.expires_at:
        head = f"{STATUS_EMOJI[EXPIRED]} It expired {when(record.expires_at)}: nobody decided in time. Nothing ran."
    elif record.status == APPROVED and record.result is None:
        head = (f"{STATUS_EMOJI[APPROVED]} Already approved by {who(record.decided_by)} · {when(record.decided_at)}, "
                "and it is running now, so it can no longer be cancelled.")
    elif record.status == PENDING:
        head = f"{STATUS_EMOJI[PENDING]} It is still waiting for an approver."
    else:
        verb = {EXPIRED: "expired", CANCELLED: "cancelled"}.get(record.status, record.status)
        by = f" by {who(record.decided_by)}" if record.status != EXPIRED and record.decided_by else ""
        at = record.expires_at if record.status == EXPIRED else record.decided_at
        head = f"{STATUS_EMOJI.get(record.status, '')} Already {verb}{by} · {when(at)}."
    text = f"Your request to *{what(record)}* was not cancelled now. {head} Your click changed nothing."
    blocks = [kit.section(text)]
    if record.status == REJECTED and record.reason:
        blocks.append(kit.section(f"*Reason:* {kit.escape(kit.clip(record.reason, 1500))}"))
    ran = run_line(record)
    if ran and record.result is not None:
        blocks.append(kit.section(ran))
    return Message(text=text, blocks=blocks)


def nobody_can_approve(*, kind: str, deployment_id: str | None, requester_is_approver: bool,
                       owner: str | None, threshold_text: str) -> str:
    """Why a request was not made at all: nobody but the requester could ever approve it. What to
    do instead depends on the request."""
    dep = f"`{kit.escape(deployment_id or '?')}`"
    who_else = ("you are the only approver (`FWBOT_APPROVERS`)" if requester_is_approver
                else "there is no approver (`FWBOT_APPROVERS`) who could be read")
    text = (f"nobody but you can approve this: {who_else}, and no fwbot admin (`FWBOT_ADMINS`) other than you "
            "can stand in. So nothing was requested and nothing ran (a request would only have waited and "
            "expired).\n*What you can do:* ")
    if kind == "delete":
        text += (f"ask its owner {kit.mention(owner)} to delete {dep}, or to hand it to you "
                 f"(`/fw owner {kit.escape(deployment_id or '<id>')} @you`); ")
    elif kind == "update":
        text += f"change {dep} so its worst case stays at or under {threshold_text} (e.g. fewer max replicas); "
    else:
        text += f"ask for a deployment whose worst case is at or under {threshold_text} (e.g. fewer max replicas); "
    return text + "or ask whoever runs fwbot to add a second approver or an admin."


def owner_notice(record: ApprovalRecord, *, approvers: Sequence[str], simulated: bool,
                 where: str | None = None) -> Message:
    """The owner's DM when someone else asks to delete their deployment: who, what, and the
    request's state as it is when the DM is sent (rendered then). ``where``: the approval channel."""
    where = kit.channel_link(record.message_channel or where or record.channel)
    how = ("permanently (it cannot be undone)" if record.request.get("hard")
           else "(a soft delete: `/fw undelete` brings it back until Fireworks purges it)")
    head = (f":warning: {kit.mention(record.requester)} asked to delete your deployment "
            f"`{kit.escape(record.deployment_id or '?')}` {how}.")
    if record.status == PENDING:
        state = (f"*State:* waiting for approval in {where} by {deciders_text(record, approvers)}; it expires "
                 f"{when(record.expires_at)}. Nothing has been deleted.")
        you = record.request.get("owner")
        if you and you in (record.request.get("deciders") or ()):
            state += " You can approve or reject it there yourself."
        else:
            state += (" If you still need it, tell the approvers in the request's thread; you can also hand it over "
                      f"(`/fw owner {kit.escape(record.deployment_id or '<id>')} @someone`).")
    else:
        state = f"*State:* {decision_line(record)}"
        ran = run_line(record)
        if ran:
            state += f"\n{ran}"
    return Message(text=head, blocks=[kit.section(head), kit.section(state), kit.footer_context(simulated)])


def outcome_for_requester(record: ApprovalRecord, *, simulated: bool) -> Message:
    """The requester is told the outcome: decision, who, when, and what ran."""
    head = {
        APPROVED: f":white_check_mark: {kit.mention(record.decided_by)} approved your request to {what(record)}.",
        REJECTED: f":no_entry: {kit.mention(record.decided_by)} rejected your request to {what(record)}.",
        EXPIRED: f":hourglass: Your request to {what(record)} expired: no approver decided in time. "
                 "Nothing ran; ask again if you still need it.",
        CANCELLED: f":heavy_multiplication_x: Your request to {what(record)} was cancelled. Nothing ran.",
    }.get(record.status, f"Your request to {what(record)} is {record.status}.")
    blocks = [kit.section(head)]
    if record.reason and (record.status == REJECTED or (record.status == CANCELLED and record.decided_by == "fwbot")):
        blocks.append(kit.section(f"*Reason:* {kit.escape(kit.clip(record.reason, 1500))}"))
    ran = run_line(record)
    if ran:
        blocks.append(kit.section(ran))
    if record.kind == "delete" and (record.result or {}).get("in_use") and record.deployment_id:
        # Fireworks refused: it is in use. Delete anyway asks for that (an approver decides again).
        hard = bool(record.request.get("hard"))
        blocks.append(kit.actions(kit.button(
            "Delete anyway", DELETE_ANYWAY, {"d": record.deployment_id, "h": int(hard)}, style="danger",
            confirm_with=kit.confirm("Delete anyway?", f"Delete `{record.deployment_id}` although it is serving "
                                     "traffic? Requests to it will fail. Unless it is yours, an approver is asked "
                                     "first.", ok="Delete anyway"))))
    blocks.append(kit.footer_context(simulated, f"asked {when(record.created_at)} in {kit.channel_link(record.channel)}"))
    return Message(text=head, blocks=blocks)


def reminder_message(record: ApprovalRecord, *, approvers: Sequence[str], simulated: bool) -> Message:
    """The one reminder, in the request's thread, to the approvers."""
    text = (f":bell: {deciders_text(record, approvers)}: {kit.mention(record.requester)}'s request to {what(record)} "
            f"is still waiting. It expires {when(record.expires_at)}.")
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def expired_notice(record: ApprovalRecord, *, approvers: Sequence[str], simulated: bool) -> Message:
    """Told in the request's thread when nobody decided in time."""
    text = (f":hourglass: {deciders_text(record, approvers)}: {kit.mention(record.requester)}'s request to {what(record)} "
            f"expired {when(record.expires_at)} without a decision. Nothing ran.")
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def late_click(outcome: ClickOutcome) -> Message:
    """A click that did not decide anything: who decided and when, or why not."""
    if outcome.kind == "expired":
        text = f":hourglass: This request expired {when(outcome.decided_at)}; it can no longer be decided."
    elif outcome.kind == "decided":
        text = (f":information_source: Already {outcome.status} by {who(outcome.decided_by)} · "
                f"{when(outcome.decided_at)}. Your click changed nothing.")
    else:
        text = ":warning: fwbot knows no such request. Nothing was done."
    return Message(text=text, blocks=[kit.section(text)])


def refusal(text: str) -> Message:
    body = f":no_entry_sign: Not allowed: {text}"
    return Message(text=body, blocks=[kit.section(body)])


def reject_modal(record: ApprovalRecord) -> dict:
    """Asks the approver why; the token travels in private_metadata, not in any input."""
    return kit.modal(
        "Reject request",
        [
            kit.section(f"Reject {kit.mention(record.requester)}'s request to *{what(record)}*?\n{money(record)}"),
            kit.input_block("Reason (the requester sees it)",
                            kit.text_input(REASON_ACTION, placeholder="e.g. use 2 replicas; 8 is more than we need"),
                            block_id=REASON_BLOCK),
        ],
        callback_id=REJECT_VIEW,
        submit="Reject",
        private_metadata=record.id,
    )
