"""Changes to a deployment and the words that go with them: act, note it in the deployment's
thread, refresh its tracking message. Commands, buttons and approvals all go through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.adapters.fireworks import FireworksError, NotFound, QuotaExceeded
from bot.adapters.outbox import Kind, Posted, Target, deployment_targets
from bot.core.names import resource_id_problem
from bot.core.pricing import deployment_worst_case, format_usd
from bot.services.container import Services
from bot.services.context import Context
from bot.services.deployments import UserError
from bot.services.guardrails import Governing, check_quota
from bot.services.tracking import refresh_tracking, render_tracking
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui.kit import Message
from storage.deployments import DeploymentRecord
from storage.rows import new_token

TRACKING = "tracking"  # the outbox kind of tracking messages


@dataclass(frozen=True)
class ScaleCheck:
    """A scale that passed :func:`check_scale`: the deployment as read just now and its worst case."""

    record: DeploymentRecord | None
    current: dict
    usd: float | None


def check_scale(ctx: Context, deployment_id: Any, replicas: Any) -> ScaleCheck:
    """Everything checked before a deployment is scaled, by ``/fw scale`` and by the confirm_scale
    button alike (a button's value may be forged or out of date): a replica count, a deployment id
    fwbot could have written, who may change it, the deployment as it is now, and its min..max
    range. Raises :class:`UserError` with a message for the person; nothing is changed."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise UserError(f"`{kit.escape(kit.clip(str(replicas), 40))}` is not a replica count (a whole number, "
                        "0 or more); nothing was changed.")
    problem = (resource_id_problem(deployment_id, "deployment id") if isinstance(deployment_id, str)
               else "that is not a deployment id")
    if problem:
        raise UserError(kit.escape(kit.clip(problem, 300)) + "; nothing was changed.")
    record = ctx.ops.authorize_change(ctx.actor, deployment_id)
    try:
        current = ctx.services.gateway.get_deployment(deployment_id)
    except NotFound:
        raise UserError(f"there is no deployment `{deployment_id}`; nothing was changed.") from None
    if current.get("state") in ("DELETED", "DELETING"):
        raise UserError(f"`{deployment_id}` is deleted; `/fw undelete {deployment_id}` first. Nothing was changed.")
    lo = int(current.get("minReplicaCount") or 0)
    raw_hi = current.get("maxReplicaCount")
    hi = int(raw_hi) if raw_hi is not None else max(lo, 1)  # the API's default max
    if not lo <= replicas <= hi:
        raise UserError(
            f"{kit.counted(replicas, 'replica')} is outside `{deployment_id}`'s range (min {lo}, max {hi}); "
            f"change the range with `/fw update {deployment_id} --min-replica-count/--max-replica-count`."
        )
    return ScaleCheck(record, current, deployment_worst_case(current, ctx.services.prices))


def execute_deploy(ctx: Context, planned, *, approved_by: str | None = None, governing: Governing | None = None,
                   override: str | None = None) -> Message | None:
    """Claim the deployment and queue its tracking message (one intent, written before Fireworks
    is asked), create it, then show the outcome on that message.

    The tracking message goes out through the outbox: at once when the channel's slot is free,
    else a moment later from the delivery thread (rendered then, so it shows the latest state);
    either way this worker never sleeps on a busy channel.
    """
    s, dep_id = ctx.services, planned.deployment_id
    requested = (f":hourglass_flowing_sand: Creating… requested by {kit.mention(ctx.actor.user_id)}"
                 f" (worst case {format_usd(planned.usd_per_hour)})")
    if approved_by:
        requested += f", approved by {kit.mention(approved_by)}"
    key = f"tracking:{dep_id}"
    with s.store.db.write():
        if governing is not None:  # counted and claimed in one serialised step: quotas hold under a burst
            check_quota(s, ctx.actor, governing, planned.worst_case_gpus, override=override, action="deploy",
                        deployment_id=dep_id)
        s.store.claim_deployment(dep_id, s.gateway.deployment_name(dep_id), owner=ctx.actor.user_id,
                                 channel=ctx.actor.channel_id, now=s.clock.now(), created_by_bot=True,
                                 unused_delete_s=planned.spec.unused_auto_delete_s, creator=s.replica,
                                 max_replicas=planned.spec.max_replica_count,
                                 accelerator_count=planned.accelerator_count)
        s.outbox.enqueue(key, TRACKING, tracking_targets(ctx),
                         args={"deployment": dep_id, "requested": requested, "usd": planned.usd_per_hour,
                               "owner": ctx.actor.user_id})
    s.outbox.deliver(key)
    try:
        wire = ctx.ops.create(ctx.actor, planned, approved_by=approved_by)
    except FireworksError as e:
        failed = ui.tracking_message(None, deployment_id=dep_id, usd=planned.usd_per_hour, owner=ctx.actor.user_id,
                                     simulated=s.simulated, status_line=create_failed_line(dep_id, e), buttons=False)
        posted = s.outbox.withdraw(key, "the create failed").posted
        if posted:
            s.poster.update(posted.channel, posted.ts, failed)
        raise
    delivery = s.outbox.outcome(key)
    if delivery.posted:
        # Render from the store, so whichever of this edit and the reconcile loop's comes last
        # shows the latest state.
        record = s.store.deployment(dep_id)
        if record is not None:
            s.poster.update(delivery.posted.channel, delivery.posted.ts, render_tracking(s, record))
        return None
    if delivery.queued:
        return None  # rendered when its turn comes, so it shows the state of that moment
    return ui.tracking_message(wire, deployment_id=dep_id, usd=planned.usd_per_hour,
                               owner=ctx.actor.user_id, simulated=s.simulated,
                               status_line=f"{requested}. Fireworks is starting it.")


def tracking_targets(ctx: Context) -> list[Target]:
    """Where a new deployment's tracking message goes: the channel asked in, else a DM."""
    channel = ctx.actor.channel_id
    return ([Target("channel", channel=channel)] if channel else []) + [
        Target("requester DM", user=ctx.actor.user_id)]


def effect_kinds() -> dict[str, Kind]:
    """The tracking message of a new deployment: rendered when sent (the create may have moved
    on), and remembered as the deployment's thread once Slack has it."""

    def render(s: Services, args: dict) -> Message | None:
        record = s.store.deployment(args["deployment"])
        if record is None:
            return None  # the create was refused or never happened: there is nothing to track
        if record.state is None:
            return ui.tracking_message(None, deployment_id=record.id, usd=args.get("usd"), owner=args.get("owner"),
                                       simulated=s.simulated, status_line=args["requested"])
        return render_tracking(s, record)

    def on_sent(s: Services, args: dict, posted: Posted) -> None:
        if s.store.deployment(args["deployment"]) is not None:
            s.store.set_deployment_fields(args["deployment"], s.clock.now(), channel=posted.channel,
                                          thread_ts=posted.ts)

    def after_sent(s: Services, args: dict, posted: Posted) -> None:
        # Posted by a run that died, found in Slack after the create was settled as not made.
        if s.store.deployment(args["deployment"]) is None:
            s.poster.update(posted.channel, posted.ts, ui.tracking_message(
                None, deployment_id=args["deployment"], usd=args.get("usd"), owner=args.get("owner"),
                simulated=s.simulated, status_line=ui.NOT_CREATED, buttons=False))

    return {TRACKING: Kind(render=render, on_sent=on_sent, after_sent=after_sent)}


def create_failed_line(deployment_id: str, error: FireworksError) -> str:
    """What a failed create means for the user: refused, or an outcome Fireworks never confirmed."""
    if isinstance(error, QuotaExceeded):
        return f":x: {kit.escape(error.sentence('deploy'))}"
    if not error.retryable:
        return f":x: Fireworks refused the create: {kit.escape(error.message)}"
    # A timeout or 5xx after retries: the create may have landed. The id is fwbot's own, so a
    # later sync adopts it into this message and nothing is ever created twice.
    return (f":warning: Fireworks did not confirm the create ({kit.escape(error.message)}). If `{deployment_id}` was "
            "created after all, this message turns into its tracking message at the next sync; otherwise "
            "nothing was created. Nothing will be created twice.")


def scale_deployment(ctx: Context, checked: ScaleCheck, deployment_id: str, replicas: int) -> Message:
    """A scale that passed :func:`check_scale`: Fireworks scales it, the deployment's thread is
    told who scaled it to what and its worst case, and the note is returned for the person."""
    ctx.ops.scale(ctx.actor, deployment_id, replicas)
    note = ui.plain(f":straight_ruler: {kit.mention(ctx.actor.user_id)} scaled `{deployment_id}` to "
                    f"{kit.counted(replicas, 'replica')}. Worst case {format_usd(checked.usd)}.",
                    simulated=ctx.services.simulated)
    announce_in_thread(ctx, deployment_id, note)
    return note


def delete_deployment(ctx: Context, deployment_id: str, *, hard: bool = False, ignore_checks: bool = False,
                      via: str = "", approval_id: str | None = None, approved_by: str | None = None) -> Message:
    """Every delete a person makes (command, buttons, digests, approvals) ends here: Fireworks
    deletes it (``Operations.delete`` confirms and audits), then one note in the deployment's
    thread says who deleted it, how, and how to undo it, and its tracking message is refreshed.
    The note is returned for the person too. Who may delete is checked by the caller (the one
    delete rule, bot/services/approvals.py ``may_delete_now``)."""
    ctx.ops.delete(ctx.actor, deployment_id, hard=hard, ignore_checks=ignore_checks, approval_id=approval_id)
    anyway = " although it was in use (Fireworks' in-use check skipped)" if ignore_checks else ""
    text = (f":wastebasket: {kit.mention(ctx.actor.user_id)} deleted `{deployment_id}`{via}{anyway}"
            f"{' permanently' if hard else ''}"
            f"{f' (approved by {kit.mention(approved_by)})' if approved_by else ''}.")
    if not hard:
        text += f" `/fw undelete {deployment_id}` brings it back."
    note = ui.plain(text, simulated=ctx.services.simulated)
    announce_in_thread(ctx, deployment_id, note)
    refresh_tracking(ctx.services, deployment_id)
    return note


def note_change(ctx: Context, deployment_id: str, text: str) -> Message:
    """A change made: the same note goes to the deployment's thread and back to the person."""
    note = ui.plain(text, simulated=ctx.services.simulated)
    announce_in_thread(ctx, deployment_id, note)
    return note


def announce_in_thread(ctx: Context, deployment_id: str, message: Message) -> None:
    """Changes made from anywhere are also noted in the deployment's own thread (through the
    outbox: the owner by DM, or the alert channel, when the thread refuses)."""
    record = ctx.services.store.deployment(deployment_id)
    if record and record.channel and record.thread_ts:
        ctx.services.outbox.send(f"note:{deployment_id}:{new_token()}", "note",
                                 deployment_targets(ctx.services, deployment_id), message)
