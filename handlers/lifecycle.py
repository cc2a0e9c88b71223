"""Lifecycle listeners: warning buttons (Renew among them), Undelete, the hand-over form, ``/fw keep``, owners leaving.

Every warning button carries only its warning's opaque token. A click looks the warning up,
reads the deployment from Fireworks again and asks ``stale_reason`` whether the warning still
holds: a stale click (traffic resumed, the deployment is gone, someone already acted) is
answered, never executed. Each listener reads as: ack, check, act, report.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt import App

from bot.adapters.fireworks import FireworksError
from bot.core.errors import UserFacingError
from bot.core.lifecycle import GONE_STATES, deletion_from_audit, stale_reason
from bot.services.approvals import ask_to_delete, may_delete_now
from bot.services.commands import kept_warm_message, problem_reply
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.deployments import Actor, UserError
from bot.services.guardrails import undelete as undelete_within_quota
from bot.services.lifecycle import SNOOZE_S, engine_for
from bot.services.tracking import deletion_key, deletion_message
from bot.ui import deployments as dui
from bot.ui import kit
from bot.ui import lifecycle as ui
from bot.ui.kit import Message
from handlers.acking import acked_first, then
from storage.deployments import DeploymentRecord
from storage.warnings import WarningRow

log = logging.getLogger("fwbot.lifecycle")

USER_ID = re.compile(r"[UW][A-Z0-9_]{1,30}")
KEEP_WARM_BUTTONS = {"lc_keep_warm_1h": 3600.0, "lc_keep_warm_4h": 4 * 3600.0}


@dataclass
class Click:
    """A click on a warning that still holds: the warning, its deployment, who clicked."""

    row: WarningRow
    dep: DeploymentRecord
    ctx: Context

    @property
    def actor(self) -> Actor:
        return self.ctx.actor


def _value(body: dict) -> str:
    return (body.get("actions") or [{}])[0].get("value") or ""


def picked_user(view: dict) -> str | None:
    """The user picked in the hand-over form, if it is a user id at all."""
    try:
        value = view["state"]["values"][ui.TRANSFER_BLOCK]["user"]["selected_user"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) and USER_ID.fullmatch(value) else None


def register(app: App, services: Services, metrics) -> None:
    engine = engine_for(services)
    store, ops = services.store, engine.ops

    def problem(respond, e: UserFacingError) -> None:
        reply(respond, problem_reply(e, services.simulated))

    def check(ctx: Context, body: dict, respond) -> Click | None:
        """The click's warning if it still holds; otherwise answer why nothing happens."""
        row = store.warning_by_token(_value(body))
        if row is None:
            reply(respond, dui.plain(":information_source: This button belongs to no warning fwbot knows; "
                                      "nothing was done."))
            return None
        dep = engine.refresh(row.deployment_id)
        now = services.clock.now()
        current = engine.timers_for(dep, now) if dep else []
        clicker = body["user"]["id"]
        reason = stale_reason(row.key, current, dep, store.last_traffic(row.deployment_id), now,
                              handled=None if row.is_open else (row.resolution or row.status),
                              warned_at=row.sent_at,
                              show_time=lambda t: ui.local_time(t, engine.directory.tz(clicker), now))
        if reason:
            reply(respond, dui.plain(f":information_source: Nothing was done: {kit.escape(reason)}."))
            if row.is_open and engine.no_longer_holds(row, dep, current, now):
                engine.settle(row.deployment_id, reason, now)
            return None
        assert dep is not None
        return Click(row, dep, ctx)

    def on_warning(action_id: str, run: Callable[[Click, Any, Any], Message | None], *,
                   opens_view: bool = False) -> None:
        @app.action(action_id)
        @acked_first(services, opens_view=opens_view)
        def listener(ctx: Context, body, respond, client) -> None:
            try:
                click = check(ctx, body, respond)
                if click is None:
                    return
                message = run(click, body, client)
                metrics.operations.labels(verb=action_id, result="ok").inc()
            except UserFacingError as e:
                metrics.operations.labels(verb=action_id, result="refused").inc()
                problem(respond, e)
                return
            if message is not None:
                reply(respond, message)

    # -- the warning's buttons ----------------------------------------------------------------
    def keep_warm(seconds: float) -> Callable[[Click, Any, Any], Message]:
        def run(click: Click, body: Any, client: Any) -> Message:
            result = engine.keep_warm(click.actor, click.dep.id, seconds)
            return kept_warm_message(engine, click.actor.user_id, result)

        return run

    for action_id, seconds in KEEP_WARM_BUTTONS.items():
        on_warning(action_id, keep_warm(seconds))

    def snooze(click: Click, body: Any, client: Any) -> Message:
        now = services.clock.now()
        timer = next((t for t in engine.timers_for(click.dep, now)
                      if t.kind == click.row.timer and t.due_iso == click.row.due), None)
        if timer is not None and not timer.postponable:
            raise UserError(f"Snooze only postpones fwbot's own actions; Fireworks acts on `{click.dep.id}` on its "
                            "own schedule. Keep it warm, or send it traffic, to keep it.")
        until = engine.snooze(click.actor, click.dep.id, SNOOZE_S)
        return ui.render_snoozed(click.dep.id, until, actor=click.actor.user_id,
                                 tz=engine.directory.tz(click.actor.user_id), now=now, simulated=services.simulated)

    on_warning("lc_snooze", snooze)

    def scale_to_zero(click: Click, body: Any, client: Any) -> Message:
        old_min = engine.scale_to_zero(click.actor, click.dep.id)
        lowered = f" (min replicas {old_min} → 0, so it stays there until a request comes)" if old_min else ""
        return dui.plain(f":zzz: Scaled `{click.dep.id}` to zero{lowered}. The next request waits for a cold start.",
                         simulated=services.simulated)

    on_warning("lc_scale_to_zero", scale_to_zero)

    def renew(click: Click, body: Any, client: Any) -> Message:
        now = services.clock.now()
        until = engine.renew(click.actor, click.dep.id)
        when = ui.local_time(until, engine.directory.tz(click.actor.user_id), now)
        return dui.plain(f":recycle: Renewed `{click.dep.id}`: fwbot now deletes it at {when}, at the end of its "
                         "new lifetime, unless someone renews it again (you will be warned first).",
                         simulated=services.simulated)

    on_warning(ui.RENEW, renew)

    def delete_now(click: Click, body: Any, client: Any) -> Message | None:
        ctx = replace(click.ctx, respond=lambda *a, **k: None)  # the outcome replaces the warning instead
        if not may_delete_now(ctx, click.dep.id):
            # The one delete rule: someone other than the owner asks an approver.
            return ask_to_delete(ctx, click.dep.id, reply_url=body.get("response_url"))
        ops.delete(click.actor, click.dep.id)
        dep, now = store.deployment(click.dep.id), services.clock.now()
        said = engine.deletion_reason(dep, now) if dep else None
        engine.settle(click.dep.id, said or f"deleted by {engine.directory.handle(click.actor.user_id)}", now)
        deletion = deletion_from_audit(store.audit_trail(click.dep.id, limit=20))
        if dep is not None and deletion is not None:
            # The deletion's one thread message: who, when, why, and Undelete while it can work.
            engine.note_in_thread(dep, deletion_message(services, dep, deletion),
                                  key=deletion_key(dep.id, deletion.at))
        engine.edit_tracking(click.dep.id)
        return None

    on_warning("lc_delete", delete_now)

    def hand_over(click: Click, body: Any, client: Any) -> None:
        ops.authorize_change(click.actor, click.dep.id)
        client.views_open(trigger_id=body["trigger_id"], view=ui.render_transfer_modal(click.dep.id, click.dep.owner))
        return None

    on_warning("lc_transfer", hand_over, opens_view=True)

    @app.view(ui.TRANSFER_CALLBACK)
    def hand_over_submitted(ack, body, view, respond) -> None:
        dep_id = str(view.get("private_metadata") or "")
        actor = Actor(body["user"]["id"], None, services.is_admin(body["user"]["id"]))
        new_owner = picked_user(view)
        error = None
        try:
            record = ops.authorize_change(actor, dep_id)
        except UserError as e:
            record, error = None, e.message
        if error is None and record is None:
            error = f"fwbot does not know a deployment `{kit.escape(dep_id)}`."
        elif error is None and not new_owner:
            error = "Pick the new owner."
        elif error is None and (engine.directory.has_left(new_owner) or engine.directory.is_bot(new_owner)):
            error = "Pick an active person (not a bot or a deactivated account)."
        elif error is None and record is not None and record.owner == new_owner:
            error = f"{kit.mention(new_owner)} already owns `{dep_id}`."
        if error:
            ack(response_action="errors", errors={ui.TRANSFER_BLOCK: error})
            return
        ack()

        def hand_over() -> None:
            record = ops.transfer(actor, dep_id, new_owner)
            engine.note_in_thread(record, dui.plain(
                f":handshake: {kit.mention(new_owner)} now owns `{dep_id}` (handed over by "
                f"{kit.mention(actor.user_id)}); its warnings go to them from now on.", simulated=services.simulated))
            engine.edit_tracking(dep_id)

        then(services, hand_over, body, respond)

    # -- after fwbot deleted something --------------------------------------------------------
    @app.action("lc_undelete")
    @acked_first(services)
    def undelete(ctx: Context, body, respond) -> None:
        # A deletion message carries the deployment's id; older auto-delete notices their warning's token.
        value = _value(body)
        row = store.warning_by_token(value)
        dep_id = row.deployment_id if row is not None else value
        if store.deployment(dep_id) is None:
            reply(respond, dui.plain(":information_source: This button belongs to no deletion fwbot knows."))
            return
        try:
            dep = engine.refresh(dep_id)
        except FireworksError as e:
            problem(respond, e)
            return
        if dep is None or dep.gone_at is not None:
            reply(respond, dui.plain(f":information_source: Nothing was done: `{dep_id}` was purged "
                                      "and cannot be undeleted any more."))
            return
        if dep.state not in GONE_STATES:
            reply(respond, dui.plain(f":information_source: Nothing was done: `{dep.id}` is not deleted "
                                      f"(it is {dep.state})."))
            return
        actor = ctx.actor
        try:
            undelete_within_quota(services, ops, actor, dep.id)
        except UserFacingError as e:
            problem(respond, e)
            return
        container = body.get("container") or {}
        if container.get("channel_id") and container.get("message_ts"):
            services.poster.update(container["channel_id"], container["message_ts"], dui.plain(
                f":recycle: {kit.mention(actor.user_id)} undeleted `{dep.id}`; it is starting again "
                "(a cold start of a few minutes).", simulated=services.simulated))
        engine.edit_tracking(dep.id)

    # -- owners who leave Slack ---------------------------------------------------------------
    @app.event("user_change")
    @acked_first(services)
    def user_changed(event) -> None:
        user = event.get("user")
        if not (isinstance(user, dict) and isinstance(user.get("id"), str)):
            return
        engine.directory.learn(user)
        if user.get("deleted") is True:
            engine.offer_orphans(only=user["id"])
