"""Approval buttons: Approve, Reject (a modal asks why), and the requester's Cancel.

Each listener reads like the same story: ack, find the request the button's token names, check it
belongs to the message clicked and that the clicker may decide, decide by compare-and-set (the
first decision wins), then act and report. A click that loses the race is told who decided when.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.adapters.outbox import Target
from bot.core.approvals import (
    APPROVED,
    CANCELLED,
    PENDING,
    REJECTED,
    button_binding_problem,
    click_outcome,
    decision_refusal,
)
from bot.services.approvals import audit, carry_out, directory_for, report
from bot.services.container import Services
from bot.ui import approvals as ui
from bot.ui.kit import Message
from handlers.acking import acked_first
from storage.approvals import ApprovalRecord
from storage.rows import new_token

log = logging.getLogger("fwbot.approvals")


def _clicked(body: dict) -> tuple[str, str | None, str | None]:
    """(token, channel, message ts) of a button click."""
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return str(action.get("value") or ""), channel, container.get("message_ts")


def register(app: App, services: Services, metrics) -> None:
    store = services.store
    directory = directory_for(services)

    def tell(channel: str | None, user: str, message: Message) -> None:
        """An answer only the clicker sees, where they clicked (or, through the outbox, in a DM)."""
        if channel and services.poster.ephemeral(channel, user, message):
            return
        services.outbox.send(f"approval-answer:{new_token()}", "note", [Target("clicker DM", user=user)], message)

    def bound_request(body: dict, user: str) -> ApprovalRecord | None:
        """The request this click names, if the token exists and belongs to the clicked message."""
        token, channel, ts = _clicked(body)
        record = store.approval(token) if token else None
        problem = button_binding_problem(record_exists=record is not None,
                                         record_message_ts=record.message_ts if record else None,
                                         clicked_message_ts=ts)
        if problem:
            log.warning("refused approval click by %s: %s", user, problem)
            services.store.audit(actor=user, action="approval click", result="refused", now=services.clock.now(),
                                 channel=channel, request={"token_known": record is not None}, detail=problem)
            tell(channel, user, ui.refusal(problem))
            return None
        return record

    def may_decide(record: ApprovalRecord, user: str, channel: str | None) -> bool:
        refusal = decision_refusal(user, requester=record.requester, approvers=directory.may_decide(record))
        if refusal:
            metrics.operations.labels(verb="approval", result="refused").inc()
            audit(services, user, "approval click", "refused", record, detail=refusal)
            tell(channel, user, ui.refusal(refusal))
            return False
        return True

    def lost(token: str, user: str, channel: str | None) -> None:
        """Tell a click that did not decide anything who did, and when."""
        current = store.approval(token)
        outcome = click_outcome(won=False, status=current.status if current else None,
                                decided_by=current.decided_by if current else None,
                                decided_at=current.decided_at if current else None,
                                expires=current.expires_at if current else None, now=services.clock.now())
        assert outcome is not None
        tell(channel, user, ui.late_click(outcome))

    @app.action(ui.APPROVE)
    @acked_first(services)
    def approve(body) -> None:
        user = body["user"]["id"]
        _, channel, _ = _clicked(body)
        record = bound_request(body, user)
        if record is None or not may_decide(record, user, channel):
            return
        # The compare-and-set also starts the run, so this click alone carries it out.
        if not store.decide_approval(record.id, status=APPROVED, by=user, now=services.clock.now(),
                                     runner=services.replica):
            metrics.operations.labels(verb="approval", result="too late").inc()
            lost(record.id, user, channel)
            return
        metrics.operations.labels(verb="approval", result="approved").inc()
        decided = store.approval(record.id)
        assert decided is not None
        audit(services, user, "approve", "ok", decided,
              detail=f"approved {decided.kind} requested by {decided.requester}")
        report(services, decided, tell_requester=False)  # buttons gone at once; "running…"
        carry_out(services, metrics, record.id)

    @app.action(ui.REJECT)
    @acked_first(services, opens_view=True)
    def reject(body, client) -> None:
        user = body["user"]["id"]
        _, channel, _ = _clicked(body)
        record = bound_request(body, user)
        if record is None or not may_decide(record, user, channel):
            return
        if record.status != PENDING or record.expires_at <= services.clock.now():
            lost(record.id, user, channel)
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=ui.reject_modal(record))
        except SlackApiError as e:
            log.warning("could not open the reject modal: %s", e.response.get("error"))
            tell(channel, user, ui.refusal("Slack did not open the form in time; click Reject again."))

    @app.view(ui.REJECT_VIEW)
    def reject_with_reason(ack, body) -> None:
        user = body["user"]["id"]
        token = str(body["view"].get("private_metadata") or "")
        values = body["view"]["state"]["values"]
        reason = str(((values.get(ui.REASON_BLOCK) or {}).get(ui.REASON_ACTION) or {}).get("value") or "").strip()
        record = store.approval(token) if token else None
        if record is None:
            ack(response_action="errors", errors={ui.REASON_BLOCK: "fwbot knows no such request."})
            return
        refusal = decision_refusal(user, requester=record.requester, approvers=directory.may_decide(record))
        if refusal:
            audit(services, user, "approval click", "refused", record, detail=refusal)
            ack(response_action="errors", errors={ui.REASON_BLOCK: refusal})
            return
        if not reason:
            ack(response_action="errors", errors={ui.REASON_BLOCK: "Say why, so the requester knows what to change."})
            return
        if not store.decide_approval(token, status=REJECTED, by=user, now=services.clock.now(), reason=reason):
            current = store.approval(token)
            outcome = click_outcome(won=False, status=current.status if current else None,
                                    decided_by=current.decided_by if current else None,
                                    decided_at=current.decided_at if current else None,
                                    expires=current.expires_at if current else None, now=services.clock.now())
            assert outcome is not None
            ack(response_action="errors", errors={ui.REASON_BLOCK: ui.late_click(outcome).text[:150]})
            return
        ack()
        metrics.operations.labels(verb="approval", result="rejected").inc()
        decided = store.approval(token)
        assert decided is not None
        audit(services, user, "reject", "ok", decided,
              detail=f"rejected {decided.kind} requested by {decided.requester}: {reason}")
        services.after_ack(lambda: report(services, decided, tell_requester=True))

    @app.action(ui.CANCEL)
    @acked_first(services)
    def cancel(body, respond) -> None:
        user = body["user"]["id"]
        token, channel, _ = _clicked(body)
        record = store.approval(token) if token else None
        if record is None or record.requester != user:
            problem = ("only the person who asked can cancel a request." if record
                       else "fwbot knows no such request. Nothing was done.")
            services.store.audit(actor=user, action="approval cancel", result="refused", now=services.clock.now(),
                                 deployment_id=record.deployment_id if record else None, channel=channel,
                                 detail=problem)
            tell(channel, user, ui.refusal(problem))
            return
        if not store.decide_approval(token, status=CANCELLED, by=user, now=services.clock.now(), check_expiry=False):
            # A stale "waiting" message: answer with what did happen, in its place (no Cancel any more).
            current = store.approval(token)
            assert current is not None
            respond(replace_original=True, **ui.stale_cancel(current, now=services.clock.now()).payload())
            return
        decided = store.approval(token)
        assert decided is not None
        audit(services, user, "approval cancel", "ok", decided, detail=f"withdrew the {decided.kind} request")
        report(services, decided, tell_requester=False)
        respond(replace_original=True, **ui.cancelled_for_requester(decided).payload())
