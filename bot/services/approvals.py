"""Where requests meet the approval policy (see bot/core/approvals.py), and where approved ones run.

``request_approval`` stores a request with everything needed to run it after a restart, posts it
for the approvers and tells the requester it is waiting. ``carry_out`` runs an approved request on
behalf of its requester through the same operations a direct request uses, after re-validating
it, and reports the outcome; the approve button and the recovery sweep both call it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.adapters.fireworks import AlreadyExists, FireworksError, NotFound, QuotaExceeded
from bot.adapters.outbox import Kind, Posted, Target
from bot.core.approvals import (
    APPROVED,
    CANCELLED,
    FINAL,
    PENDING,
    Deciders,
    approval_reason,
    deciders_for,
    expand_approvers,
    expires_at,
    is_usergroup,
)
from bot.core.pricing import deployment_worst_case, format_usd
from bot.core.requests import DeploymentChange, DeploymentSpec, format_accelerators
from bot.services import guardrails
from bot.services.changes import announce_in_thread, delete_deployment, execute_deploy
from bot.services.container import Services
from bot.services.context import Context
from bot.services.deployments import Actor, DeploymentInUse, Operations, UserError
from bot.services.guardrails import Governing
from bot.services.people import groups_for
from bot.services.policy import PolicyRefusal
from bot.ui import approvals as ui
from bot.ui import kit
from bot.ui.kit import Message
from storage.approvals import ApprovalRecord
from storage.rows import new_token

log = logging.getLogger("fwbot.approvals")

APPROVAL_POST = "approval"  # the outbox kind of approval requests
OWNER_NOTICE = "approval_owner"  # the owner's DM about a request to delete their deployment
# Re-validation tolerates rounding, not a price or shape that moved since the approval.
USD_TOLERANCE = 0.005
# A response_url that does not answer in this long is given up on (the requester gets a DM anyway).
RESPONSE_URL_TIMEOUT_S = 5.0


def needs_approval(services: Services, *, planned: Any = None, before_usd: float | None = None,
                   after_usd: float | None = None, foreign_delete: bool = False,
                   governing: Governing | None = None) -> str | None:
    """Why this request needs an approver, or ``None`` when it may run at once.

    Where the team policy sets ``max_usd_per_hour_without_approval`` (``governing``), it replaces
    the global threshold; a request above it with nobody configured to approve is refused.
    """
    s = services.settings
    new_usd = planned.usd_per_hour if planned is not None else after_usd
    if governing is not None and governing.effective.max_usd_per_hour_without_approval.is_set and not foreign_delete:
        reason = guardrails.approval_threshold_reason(services, governing, new_usd=new_usd, before_usd=before_usd)
        if reason and not s.approvers:
            raise PolicyRefusal(f"this needs approval here: {reason}; but no approvers are configured "
                                "(FWBOT_APPROVERS), so it cannot be asked for. Nothing was changed.")
        return reason
    return approval_reason(
        approvers=s.approvers,
        threshold=s.approval_threshold_usd_per_hour,
        new_usd=new_usd,
        before_usd=before_usd,
        foreign_delete=foreign_delete,
    )


def may_delete_now(ctx, deployment_id: str) -> bool:
    """The one rule every delete entry point follows (``/fw delete``, its confirmation, the
    tracking message's and the cost digest's Delete buttons): the owner or an admin confirms once
    and deletes (True); anyone else asks an approver (False: :func:`ask_to_delete`). With approvals
    off, or a deployment nobody owns, anyone else is refused with who owns it (``UserError``)."""
    s = ctx.services
    record = s.store.deployment(deployment_id)
    if ctx.actor.is_admin or (record is not None and record.owner == ctx.actor.user_id):
        return True
    if needs_approval(s, foreign_delete=True) and record is not None and record.owner:
        return False
    ctx.ops.authorize_change(ctx.actor, deployment_id)  # raises with who owns it, or how to claim it
    return True


def ask_to_delete(ctx, deployment_id: str, *, hard: bool = False, ignore_checks: bool = False,
                  reply_url: str | None = None) -> Message:
    """Someone other than the owner asks to delete a deployment: an approval request.
    ``ignore_checks``: to delete it even while it is in use (``--ignore-checks``, *Delete anyway*)."""
    reason = needs_approval(ctx.services, foreign_delete=True)
    assert reason is not None
    return request_approval(ctx, kind="delete", deployment_id=deployment_id, reason=reason, hard=hard,
                            ignore_checks=ignore_checks, reply_url=reply_url)


class ApproverDirectory:
    """Who may decide now: configured users plus members of configured user groups.

    Group members come from bot/services/people.py (``usergroups.users.list``, kept a minute); a
    group that could not be read counts as empty (never as "anyone").
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    def _group(self, group_id: str) -> frozenset[str] | None:
        return groups_for(self.services).members(group_id)

    def _groups(self) -> tuple[dict[str, frozenset[str]], set[str]]:
        """Members of the configured groups that could be read, and the groups that could not."""
        groups: dict[str, frozenset[str]] = {}
        unread: set[str] = set()
        for approver in self.services.settings.approvers:
            if is_usergroup(approver):
                found = self._group(approver)
                if found is None:
                    unread.add(approver)
                else:
                    groups[approver] = found
        return groups, unread

    def members(self) -> frozenset[str]:
        groups, _ = self._groups()
        return expand_approvers(self.services.settings.approvers, groups)

    def deciders(self, requester: str) -> Deciders:
        """Who may decide a request by ``requester`` now: approvers other than them, else the admins."""
        s = self.services.settings
        groups, unread = self._groups()
        return deciders_for(requester, configured=s.approvers, groups=groups, admins=s.admins, unread=unread)

    def may_decide(self, record: ApprovalRecord) -> frozenset[str]:
        """Everyone who may decide this request now. Admins who were named as stand-ins when it was
        asked keep that right even if an approver turned up since."""
        allowed = set(self.deciders(record.requester).users)
        if record.request.get("admin_fallback"):
            allowed |= {a for a in self.services.settings.admins if a != record.requester}
        return frozenset(allowed)


def directory_for(services: Services) -> ApproverDirectory:
    """The one approver directory (and its group cache) of these services."""
    return services.shared(ApproverDirectory)


# -- asking ----------------------------------------------------------------------------------------
def request_approval(ctx, *, kind: str, reason: str, planned: Any = None, deployment_id: str | None = None,
                     change: DeploymentChange | None = None, diff: list[str] | None = None,
                     usd: float | None = None, before_usd: float | None = None, hard: bool = False,
                     ignore_checks: bool = False, reply_url: str | None = None,
                     override: str | None = None) -> Message:
    """Store the request, post it for the approvers, and return the requester's "waiting" message.

    Who can decide it is worked out now and named: the approvers other than the requester, else
    the admins standing in. When nobody else at all could, nothing is stored and the requester is
    told at once what to do instead (raised as ``UserError``). A delete of someone else's
    deployment is also told to its owner by DM. ``reply_url``: a response_url whose "original" is
    the waiting message (a slash command's, or a click's whose message the waiting message
    replaces), kept so the waiting message can be replaced by the outcome; a slash command's is
    taken from the request by default.
    """
    s = ctx.services
    now = s.clock.now()
    requester = ctx.actor.user_id
    request: dict[str, Any] = {"why": reason}
    if override is not None:  # an admin's policy override, applied again when it runs
        request["override"] = override
    owner: str | None = None
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
        if wire.get("state") in ("DELETED", "DELETING") and not hard:
            raise UserError(f"`{deployment_id}` is already deleted; there is nothing to ask for.")
        record = s.store.deployment(deployment_id)
        owner = record.owner if record else None
        usd = deployment_worst_case(wire, s.prices)
        request.update(hard=bool(hard), owner=owner)
        if ignore_checks:
            request["ignore_checks"] = True
        asked = _already_asked(s, requester, deployment_id, bool(hard), bool(ignore_checks))
        if asked is not None:  # a second click or command for the same delete: the same request
            return ui.waiting_message(asked, approvers=s.settings.approvers, simulated=s.simulated, again=True)
    else:
        raise ValueError(f"unknown approval kind {kind!r}")
    where = s.settings.approval_channel or ctx.actor.channel_id
    if not where:
        raise UserError("there is no channel to ask the approvers in; set FWBOT_APPROVAL_CHANNEL.")
    directory = directory_for(s)
    deciders = directory.deciders(requester)
    if deciders.nobody:
        # A request nobody could decide would only wait and expire: say so now, with what to do.
        s.store.audit(actor=requester, action="approval request", result="refused", now=now,
                      deployment_id=deployment_id, channel=ctx.actor.channel_id,
                      request={"kind": kind, "requester": requester},
                      detail=f"{kind}: nobody but the requester can approve it (no other approver, no other admin)")
        raise UserError(ui.nobody_can_approve(
            kind=kind, deployment_id=deployment_id, requester_is_approver=requester in directory.members(),
            owner=owner, threshold_text=format_usd(s.settings.approval_threshold_usd_per_hour)))
    request.update(deciders=list(deciders.shown), admin_fallback=deciders.admins)
    if reply_url is None and (ctx.body or {}).get("command"):
        reply_url = ctx.body.get("response_url")
    if reply_url:
        request["response_url"] = reply_url
    tell_owner = kind == "delete" and owner is not None and owner != requester
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
        if tell_owner:
            s.outbox.enqueue(f"approval-owner:{token}", OWNER_NOTICE, [Target("owner DM", user=owner)],
                             args={"token": token, "where": where})
    delivery = s.outbox.deliver(f"approval:{token}")
    if tell_owner:
        s.outbox.deliver(f"approval-owner:{token}")
    stored = s.store.approval(token)
    assert stored is not None
    if delivery.error:
        if stored.status == "cancelled":
            raise UserError(f"I could not post the approval request in <#{where}> (`{delivery.error}`); "
                            "invite me there or ask an admin. Nothing was requested.")
        raise UserError(f"the approval request could not be posted ({delivery.error}).")
    return ui.waiting_message(stored, approvers=s.settings.approvers, simulated=s.simulated,
                              queued_in=None if delivery.posted else where)


def _already_asked(services: Services, requester: str, deployment_id: str, hard: bool,
                   ignore_checks: bool = False) -> ApprovalRecord | None:
    """The same person's pending request to delete the same deployment the same way, if any."""
    now = services.clock.now()
    for record in services.store.approvals(status=PENDING, deployment_id=deployment_id):
        if (record.kind == "delete" and record.requester == requester and record.expires_at > now
                and bool(record.request.get("hard")) == hard
                and bool(record.request.get("ignore_checks")) == ignore_checks):
            return record
    return None


def effect_kinds() -> dict:
    """How the outbox posts approval requests: rendered when sent, remembered with the request
    (and audited) once Slack has it; a request no channel would take is cancelled, and the
    requester is told by DM. The owner's DM about a delete request is rendered when sent, so it
    shows the request's state of that moment."""

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

    def render_owner_notice(s: Services, args: dict) -> Message | None:
        record = s.store.approval(args["token"])
        if record is None:
            return None
        return ui.owner_notice(record, approvers=s.settings.approvers, simulated=s.simulated, where=args.get("where"))

    def owner_notice_wanted(s: Services, args: dict) -> bool:
        # A request that never reached the approvers (fwbot cancelled it) is nothing to worry the owner about.
        record = s.store.approval(args["token"])
        return record is not None and not (record.status == CANCELLED and record.decided_by == "fwbot"
                                           and not record.message_ts)

    return {APPROVAL_POST: Kind(render=render, still_wanted=still_wanted, on_sent=on_sent, on_failed=on_failed),
            OWNER_NOTICE: Kind(render=render_owner_notice, still_wanted=owner_notice_wanted)}


def audit(services: Services, actor: str, action: str, result: str, record: ApprovalRecord,
          detail: str | None = None) -> None:
    """An audit row about an approval, on the deployment's trail so `/fw audit <id>` shows it."""
    services.store.audit(actor=actor, action=action, result=result, now=services.clock.now(),
                         deployment_id=record.deployment_id, channel=record.message_channel or record.channel,
                         request={"approval": record.id, "kind": record.kind, "requester": record.requester},
                         detail=detail)


# -- running an approved request -------------------------------------------------------------------
def _requester_context(services: Services, metrics, record: ApprovalRecord):

    # The approver acts on behalf of the requester: the requester stays the owner and the
    # operation is tracked in the channel they asked in.
    actor = Actor(record.requester, record.channel, services.is_admin(record.requester))
    return Context(services, Operations(services), actor, lambda *a, **k: None, services.poster.client, {},
                   metrics)


def _run_deploy(ctx, record: ApprovalRecord) -> str:

    s = ctx.services
    spec = DeploymentSpec.model_validate(record.request["spec"])
    planned = ctx.ops.plan_deploy(spec)  # re-validate: the model is still deployable, priced now
    approved_usd = record.usd_per_hour
    if approved_usd is not None and (planned.usd_per_hour is None
                                     or planned.usd_per_hour > approved_usd + USD_TOLERANCE):
        raise UserError(f"its worst case is now {format_usd(planned.usd_per_hour)}, more than the approved "
                        f"{format_usd(approved_usd)}; ask again.")
    override = record.request.get("override")
    gov = guardrails.guard_create(ctx, planned, override=override)  # the policy of now, not of the request
    try:
        ctx.ops.validate_deploy(planned)
    except AlreadyExists:
        mine = s.store.deployment(planned.deployment_id)
        if not (mine and mine.owner == record.requester and mine.created_by_bot):
            raise UserError(f"a deployment named `{planned.deployment_id}` exists now; ask again "
                            "with another --deployment-id.") from None
        # An earlier run of this same approval got as far as creating it; the create below
        # reads it back instead of making a second one.
    execute_deploy(ctx, planned, approved_by=record.decided_by, governing=gov, override=override)
    return f"created `{planned.deployment_id}`, owned by the requester (worst case {format_usd(planned.usd_per_hour)})."


def _run_update(ctx, record: ApprovalRecord) -> str:

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
    override = record.request.get("override")
    gov, before_ask, after_ask = guardrails.guarded_update(
        ctx, dep_id, stored, current, change.apply_to(current), change, deployment_worst_case(current, s.prices),
        after_usd, override=override)
    guardrails.apply_update(ctx, gov, dep_id, change, before_ask, after_ask, override=override, approval_id=record.id)
    lines = [f"• *{label}:* {before} → {after}" for label, before, after in diff]
    announce_in_thread(ctx, dep_id, Message(text=f"{dep_id} updated", blocks=[
        kit.section(f":gear: {kit.mention(record.requester)} updated `{dep_id}` (approved by "
                       f"{kit.mention(record.decided_by)}):\n" + "\n".join(lines)),
        kit.footer_context(s.simulated)]))
    return f"updated `{dep_id}`: " + "; ".join(f"{label} {before} → {after}" for label, before, after in diff)


def _run_delete(ctx, record: ApprovalRecord) -> str:

    s, dep_id = ctx.services, str(record.deployment_id)
    hard = bool(record.request.get("hard"))
    try:
        wire = s.gateway.get_deployment(dep_id)
    except NotFound:
        raise UserError(f"`{dep_id}` no longer exists.") from None
    if wire.get("state") in ("DELETED", "DELETING") and not hard:
        return f"`{dep_id}` was already deleted."
    ignore_checks = bool(record.request.get("ignore_checks"))
    delete_deployment(ctx, dep_id, hard=hard, ignore_checks=ignore_checks, approval_id=record.id,
                      approved_by=record.decided_by)
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
    except DeploymentInUse as e:
        # Told to the requester with a Delete anyway offer (a request of its own, by the same rule).
        result = {"ok": False, "text": e.message, "in_use": True}
    except UserError as e:
        result = {"ok": False, "text": e.message}
    except QuotaExceeded as e:
        result = {"ok": False, "text": kit.escape(e.sentence(record.kind))}
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
    """Edit the request message to its decided form (buttons gone), replace the requester's
    "waiting" message, tell the requester, and tell the owner of a deployment someone else asked
    to delete how it ended."""
    if record.message_channel and record.message_ts:
        try:
            services.poster.update(record.message_channel, record.message_ts,
                                   ui.decided_message(record, simulated=services.simulated))
        except SlackApiError as e:
            log.warning("could not edit approval message %s: %s", record.id, e.response.get("error"))
    settle_waiting(services, record)
    if tell_requester:
        services.outbox.send(f"approval-outcome:{record.id}", "note", [Target("requester DM", user=record.requester)],
                             ui.outcome_for_requester(record, simulated=services.simulated))
    settled = record.status in FINAL and (record.status != APPROVED or record.result is not None)
    owner = record.request.get("owner") if record.kind == "delete" else None
    never_asked = record.status == CANCELLED and record.decided_by == "fwbot" and not record.message_ts
    if settled and owner and owner not in (record.requester, record.decided_by) and not never_asked:
        services.outbox.send(f"approval-owner-outcome:{record.id}", "note", [Target("owner DM", user=owner)],
                             ui.owner_notice(record, approvers=services.settings.approvers,
                                             simulated=services.simulated))


def settle_waiting(services: Services, record: ApprovalRecord) -> None:
    """Replace the requester's ephemeral "waiting for approval" message (its Cancel button with it)
    by the request's state, through the response_url kept with the request. Slack keeps a
    response_url for 30 minutes: later, the DM tells the requester, and a click on the stale
    Cancel button is answered with what happened (handlers/approvals.py)."""
    url = record.request.get("response_url")
    if not url or record.status == PENDING:
        return
    message = ui.settled_for_requester(record, simulated=services.simulated)
    try:
        resp = WebhookClient(url=url, timeout=RESPONSE_URL_TIMEOUT_S,  # type: ignore[arg-type]
                             retry_handlers=[]).send_dict(
            {"replace_original": True, "response_type": "ephemeral", **message.payload()})
    except Exception as e:  # noqa: BLE001 - best effort: the outcome DM is the durable word
        log.info("could not replace the waiting message of approval %s: %s", record.id, type(e).__name__)
        return
    if not 200 <= resp.status_code < 300:
        log.info("could not replace the waiting message of approval %s: HTTP %s", record.id, resp.status_code)
