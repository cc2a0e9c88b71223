"""Where requests meet the approval policy (see bot/approvals.py), and where approved ones run.

``request_approval`` stores a request with everything needed to run it after a restart, posts it
for the approvers and tells the requester it is waiting. ``carry_out`` runs an approved request on
behalf of its requester through the same operations a direct request uses, after re-validating
it, and reports the outcome; the approve button and the recovery sweep both call it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.approvals import APPROVED, approval_reason, expand_approvers, expires_at, is_usergroup
from bot.fireworks import AlreadyExists, FireworksError, NotFound
from bot.operations import Actor, Operations, UserError
from bot.outbox import Kind, Posted, Target
from bot.pricing import deployment_worst_case, format_usd
from bot.services import Services
from bot.spec import DeploymentChange, DeploymentSpec, format_accelerators
from bot.ui import approvals as ui
from bot.ui import kit
from bot.ui.kit import Message
from storage.store import ApprovalRecord, new_token

log = logging.getLogger("fwbot.approvals")

APPROVAL_POST = "approval"  # the outbox kind of approval requests
GROUP_CACHE_S = 60.0
# Re-validation tolerates rounding, not a price or shape that moved since the approval.
USD_TOLERANCE = 0.005


def needs_approval(services: Services, *, planned: Any = None, before_usd: float | None = None,
                   after_usd: float | None = None, foreign_delete: bool = False) -> str | None:
    """Why this request needs an approver, or ``None`` when it may run at once."""
    s = services.settings
    return approval_reason(
        approvers=s.approvers,
        threshold=s.approval_threshold_usd_per_hour,
        new_usd=planned.usd_per_hour if planned is not None else after_usd,
        before_usd=before_usd,
        foreign_delete=foreign_delete,
    )


class ApproverDirectory:
    """Who may decide now: configured users plus members of configured user groups.

    Group members come from ``usergroups.users.list`` and are cached briefly; a failed lookup
    counts the group as empty (never as "anyone") and is not cached.
    """

    def __init__(self, services: Services, ttl_s: float = GROUP_CACHE_S) -> None:
        self.services = services
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def _group(self, group_id: str) -> frozenset[str] | None:
        with self._lock:
            hit = self._cache.get(group_id)
            if hit and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
        try:
            resp = self.services.poster.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as e:
            log.warning("cannot list approver group %s: %s", group_id, e.response.get("error"))
            return None
        members = frozenset(str(u) for u in resp.get("users") or [])
        with self._lock:
            self._cache[group_id] = (time.monotonic(), members)
        return members

    def members(self) -> frozenset[str]:
        groups: dict[str, frozenset[str]] = {}
        for approver in self.services.settings.approvers:
            if is_usergroup(approver):
                found = self._group(approver)
                if found is not None:
                    groups[approver] = found
        return expand_approvers(self.services.settings.approvers, groups)


# -- asking ----------------------------------------------------------------------------------------
def request_approval(ctx, *, kind: str, reason: str, planned: Any = None, deployment_id: str | None = None,
                     change: DeploymentChange | None = None, diff: list[str] | None = None,
                     usd: float | None = None, before_usd: float | None = None, hard: bool = False) -> Message:
    """Store the request, post it for the approvers, and return the requester's "waiting" message."""
    s = ctx.services
    now = s.clock.now()
    request: dict[str, Any] = {"why": reason}
    if kind == "deploy":
        # The chosen id is fixed in the stored spec, so a re-run after a crash creates the same
        # deployment (a second create answers 409 and is read back) instead of a second one.
        spec = planned.spec.model_copy(update={"deployment_id": planned.deployment_id})
        deployment_id, usd = planned.deployment_id, planned.usd_per_hour
        shown = spec if spec.deployment_shape else spec.model_copy(
            update={"accelerator_type": planned.accelerator_type, "accelerator_count": planned.accelerator_count})
        summary = [list(pair) for pair in shown.describe()]
        if planned.shape:
            summary.append(["Hardware", format_accelerators(planned.accelerator_type, planned.accelerator_count)])
        request.update(spec=spec.model_dump(mode="json"), summary=summary)
    elif kind == "update":
        assert change is not None and deployment_id
        request.update(change=change.model_dump(mode="json", exclude_none=True), diff=list(diff or []),
                       usd_before=before_usd)
    elif kind == "delete":
        assert deployment_id
        try:
            wire = s.gateway.get_deployment(deployment_id)
        except NotFound:
            raise UserError(f"there is no deployment `{deployment_id}`.") from None
        record = s.store.deployment(deployment_id)
        usd = deployment_worst_case(wire, s.prices)
        request.update(hard=bool(hard), owner=record.owner if record else None)
    else:
        raise ValueError(f"unknown approval kind {kind!r}")
    where = s.settings.approval_channel or ctx.actor.channel_id
    if not where:
        raise UserError("there is no channel to ask the approvers in; set FWBOT_APPROVAL_CHANNEL.")
    token = new_token()
    # The request and its post are one intent, written together: a crash before the post is
    # finished by the outbox after the restart, never left pending with no message.
    with s.store.db.write():
        record = s.store.create_approval(
            token=token, kind=kind, requester=ctx.actor.user_id, channel=ctx.actor.channel_id or ctx.actor.user_id,
            deployment_id=deployment_id, request=request, usd_per_hour=usd, now=now,
            expires_at=expires_at(now, s.settings.approval_expiry),
        )
        s.outbox.enqueue(f"approval:{token}", APPROVAL_POST, [Target("approval channel", channel=where)],
                         args={"token": token, "reason": reason})
    delivery = s.outbox.deliver(f"approval:{token}")
    stored = s.store.approval(token)
    assert stored is not None
    if delivery.error:
        if stored.status == "cancelled":
            raise UserError(f"I could not post the approval request in <#{where}> (`{delivery.error}`); "
                            "invite me there or ask an admin. Nothing was requested.")
        raise UserError(f"the approval request could not be posted ({delivery.error}).")
    return ui.waiting_message(stored, approvers=s.settings.approvers, simulated=s.simulated,
                              queued_in=None if delivery.posted else where)


def effect_kinds() -> dict:
    """How the outbox posts approval requests: rendered when sent, remembered with the request
    (and audited) once Slack has it; a request no channel would take is cancelled, and the
    requester is told by DM."""

    def render(s: Services, args: dict) -> Message | None:
        record = s.store.approval(args["token"])
        if record is None:
            return None
        return ui.request_message(record, approvers=s.settings.approvers, simulated=s.simulated)

    def still_wanted(s: Services, args: dict) -> bool:
        record = s.store.approval(args["token"])
        return record is not None and record.status == "pending"

    def on_sent(s: Services, args: dict, posted: Posted) -> None:
        s.store.set_approval_message(args["token"], posted.channel, posted.ts)
        record = s.store.approval(args["token"])
        assert record is not None
        audit(s, record.requester, "approval request", "pending", record,
              detail=f"{record.kind}, worst case {format_usd(record.usd_per_hour)}: {args.get('reason')}")

    def on_failed(s: Services, args: dict, error: str) -> None:
        now = s.clock.now()
        if not s.store.decide_approval(args["token"], status="cancelled", by="fwbot", now=now,
                                       reason=f"could not be posted: {error}"):
            return
        record = s.store.approval(args["token"])
        assert record is not None
        audit(s, "fwbot", "approval request", "error", record, detail=f"could not post the request: {error}")
        text = (f":warning: Your request to {record.kind} `{record.deployment_id}` could not be shown to the "
                f"approvers ({kit.escape(error)}), so it was cancelled and nothing was done. Ask an admin to "
                "invite fwbot to the approval channel, then ask again.")
        s.outbox.enqueue(f"approval-unposted:{record.id}", "note", [Target("requester DM", user=record.requester)],
                         Message(text=text, blocks=[kit.section(text)]))

    return {APPROVAL_POST: Kind(render=render, still_wanted=still_wanted, on_sent=on_sent, on_failed=on_failed)}


def audit(services: Services, actor: str, action: str, result: str, record: ApprovalRecord,
          detail: str | None = None) -> None:
    """An audit row about an approval, on the deployment's trail so `/fw audit <id>` shows it."""
    services.store.audit(actor=actor, action=action, result=result, now=services.clock.now(),
                         deployment_id=record.deployment_id, channel=record.message_channel or record.channel,
                         request={"approval": record.id, "kind": record.kind, "requester": record.requester},
                         detail=detail)


# -- running an approved request -------------------------------------------------------------------
def _requester_context(services: Services, metrics, record: ApprovalRecord):
    from handlers.commands import Context

    # The approver acts on behalf of the requester: the requester stays the owner and the
    # operation is tracked in the channel they asked in.
    actor = Actor(record.requester, record.channel, services.is_admin(record.requester))
    return Context(services, Operations(services), actor, lambda *a, **k: None, services.poster.client, {},
                   metrics)


def _run_deploy(ctx, record: ApprovalRecord) -> str:
    from handlers.commands import execute_deploy

    s = ctx.services
    spec = DeploymentSpec.model_validate(record.request["spec"])
    planned = ctx.ops.plan_deploy(spec)  # re-validate: the model is still deployable, priced now
    approved_usd = record.usd_per_hour
    if approved_usd is not None and (planned.usd_per_hour is None
                                     or planned.usd_per_hour > approved_usd + USD_TOLERANCE):
        raise UserError(f"its worst case is now {format_usd(planned.usd_per_hour)}, more than the approved "
                        f"{format_usd(approved_usd)}; ask again.")
    try:
        ctx.ops.validate_deploy(planned)
    except AlreadyExists:
        mine = s.store.deployment(planned.deployment_id)
        if not (mine and mine.owner == record.requester and mine.created_by_bot):
            raise UserError(f"a deployment named `{planned.deployment_id}` exists now; ask again "
                            "with another --deployment-id.") from None
        # An earlier run of this same approval got as far as creating it; the create below
        # reads it back instead of making a second one.
    execute_deploy(ctx, planned, approved_by=record.decided_by)
    return f"created `{planned.deployment_id}`, owned by the requester (worst case {format_usd(planned.usd_per_hour)})."


def _run_update(ctx, record: ApprovalRecord) -> str:
    from handlers.commands import announce_in_thread

    s, dep_id = ctx.services, str(record.deployment_id)
    try:
        current = s.gateway.get_deployment(dep_id)
    except NotFound:
        raise UserError(f"`{dep_id}` no longer exists.") from None
    change = DeploymentChange.model_validate(record.request["change"])
    problem = change.problem_with(current)
    if problem:
        raise UserError(f"`{dep_id}` changed since the request: {problem}.")
    stored = s.store.deployment(dep_id)
    diff = change.diff(current, current_unused_auto_delete_s=stored.unused_delete_s if stored else None)
    if not diff:
        return f"`{dep_id}` already looks like that; nothing to change."
    after_usd = deployment_worst_case(change.apply_to(current), s.prices)
    if record.usd_per_hour is not None and (after_usd is None or after_usd > record.usd_per_hour + USD_TOLERANCE):
        raise UserError(f"`{dep_id}` changed since the request: the change would now cost {format_usd(after_usd)}, "
                        f"more than the approved {format_usd(record.usd_per_hour)}; ask again.")
    ctx.ops.update(ctx.actor, dep_id, change, approval_id=record.id)
    lines = [f"• *{label}:* {before} → {after}" for label, before, after in diff]
    announce_in_thread(ctx, dep_id, Message(text=f"{dep_id} updated", blocks=[
        kit.section(f":gear: {kit.mention(record.requester)} updated `{dep_id}` (approved by "
                       f"{kit.mention(record.decided_by)}):\n" + "\n".join(lines)),
        kit.footer_context(s.simulated)]))
    return f"updated `{dep_id}`: " + "; ".join(f"{label} {before} → {after}" for label, before, after in diff)


def _run_delete(ctx, record: ApprovalRecord) -> str:
    from handlers.actions import refresh_tracking
    from handlers.commands import announce_in_thread

    s, dep_id = ctx.services, str(record.deployment_id)
    hard = bool(record.request.get("hard"))
    try:
        wire = s.gateway.get_deployment(dep_id)
    except NotFound:
        raise UserError(f"`{dep_id}` no longer exists.") from None
    if wire.get("state") in ("DELETED", "DELETING") and not hard:
        return f"`{dep_id}` was already deleted."
    ctx.ops.delete(ctx.actor, dep_id, hard=hard, approval_id=record.id)
    announce_in_thread(ctx, dep_id, Message(text=f"{dep_id} deleted", blocks=[kit.section(
        f":wastebasket: {kit.mention(record.requester)} deleted `{dep_id}`"
        f"{' permanently' if hard else ''} (approved by {kit.mention(record.decided_by)}).")]))
    refresh_tracking(s, dep_id)
    return f"deleted `{dep_id}`" + (" permanently." if hard else "; `/fw undelete` brings it back until purged.")


RUNNERS = {"deploy": _run_deploy, "update": _run_update, "delete": _run_delete}


def carry_out(services: Services, metrics, token: str) -> ApprovalRecord | None:
    """Run an approved request whose run the caller has claimed, record the result, report it.

    Errors a user can act on become a "did not run" result, never a retry: the outcome is
    recorded exactly once (``finish_approval`` is a compare-and-set on ``result IS NULL``).
    """
    record = services.store.approval(token)
    if record is None or record.status != APPROVED or record.result is not None:
        return record
    ctx = _requester_context(services, metrics, record)
    try:
        result = {"ok": True, "text": RUNNERS[record.kind](ctx, record)}
    except UserError as e:
        result = {"ok": False, "text": e.message}
    except FireworksError as e:
        result = {"ok": False, "text": f"Fireworks says: {kit.escape(e.message)}"}
    except Exception:  # noqa: BLE001 - recorded and reported rather than retried forever
        log.exception("approved request %s failed", token)
        result = {"ok": False, "text": "fwbot hit an internal error; see its log."}
    if not services.store.finish_approval(token, result, services.clock.now()):
        return services.store.approval(token)
    audit(services, record.decided_by or "fwbot", "approved run", "ok" if result["ok"] else "error", record,
          detail=f"{record.kind} requested by {record.requester}: {result['text']}")
    done = services.store.approval(token)
    assert done is not None
    report(services, done, tell_requester=True)
    return done


def report(services: Services, record: ApprovalRecord, *, tell_requester: bool) -> None:
    """Edit the request message to its decided form (buttons gone) and tell the requester."""
    if record.message_channel and record.message_ts:
        try:
            services.poster.update(record.message_channel, record.message_ts,
                                   ui.decided_message(record, simulated=services.simulated))
        except SlackApiError as e:
            log.warning("could not edit approval message %s: %s", record.id, e.response.get("error"))
    if tell_requester:
        services.outbox.send(f"approval-outcome:{record.id}", "note", [Target("requester DM", user=record.requester)],
                             ui.outcome_for_requester(record, simulated=services.simulated))
