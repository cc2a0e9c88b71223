"""``/fw schedule``: show, set or clear a deployment's off-hours schedule. The lifecycle engine
warns before each scale-down and carries the transitions out (bot/services/lifecycle.py)."""

from __future__ import annotations

from dataclasses import replace

from bot.core import requests
from bot.core.lifecycle import GONE_STATES
from bot.core.schedules import RunningSchedule, stored, zone_of
from bot.services.context import Context
from bot.services.deployments import UserError
from bot.services.lifecycle import History, engine_for
from bot.ui import schedules as ui
from bot.ui.kit import Message
from storage.schedules import SCHEDULE_ACTIONS


def do_schedule(ctx: Context, cmd: requests.ScheduleCommand) -> Message:
    s, dep_id = ctx.services, cmd.deployment_id
    engine, store = engine_for(s), s.store
    if cmd.schedule is None and not cmd.clear:
        record = store.deployment(dep_id)
        if record is None:
            ctx.ops.require_exists(dep_id)  # says so when Fireworks has no such deployment
            return ui.render_schedule(dep_id, None, now=s.clock.now(), simulated=s.simulated)
        row = store.schedule(dep_id)
        return ui.render_schedule(dep_id, engine.schedule_of(record), now=s.clock.now(),
                                  postponed=History.load(store, dep_id).of(dep_id).postponed,
                                  simulated=s.simulated, set_by=row.set_by if row else None,
                                  set_at=row.set_at if row else None)
    ctx.ops.authorize_change(ctx.actor, dep_id)
    record = engine.refresh(dep_id)
    if record is None or record.gone_at is not None or record.state in GONE_STATES:
        raise UserError(f"`{dep_id}` is deleted; there is nothing to schedule.")
    now, who = s.clock.now(), engine.directory.handle(ctx.actor.user_id)
    before = engine.schedule_of(record)
    if cmd.clear:
        own = before if before is not None and not before.from_policy else None
        had = own.describe() if own else None
        after = engine.schedule_of(record, policy=True, state=replace(History.load(store, dep_id).of(dep_id),
                                                                      schedule=None))
        policy = after.describe() if after is not None else None
        if had is not None and not cmd.dry_run:
            store.clear_schedule(dep_id)
            for pending in store.bot_actions(deployment_id=dep_id, statuses=("scheduled",)):
                if pending.kind in SCHEDULE_ACTIONS:
                    store.finish_action(pending.key, "cancelled", f"schedule cleared by {ctx.actor.user_id}", now)
            ctx.ops.audit(ctx.actor.user_id, "schedule", "ok", deployment_id=dep_id, channel=ctx.actor.channel_id,
                          request={"clear": True, "was": had})
            engine.settle(dep_id, f"schedule cleared by {who}", now)
            engine.edit_tracking(dep_id)
        message = ui.render_schedule_cleared(dep_id, actor=ctx.actor.user_id, had=had, dry_run=cmd.dry_run,
                                             simulated=s.simulated, policy=policy)
        if had is not None and not cmd.dry_run:
            engine.note_in_thread(record, message)
        return message
    assert cmd.schedule is not None
    zone = zone_of(engine.directory.tz(record.owner), s.settings.timezone)
    running = RunningSchedule(cmd.schedule, zone, now)
    replaced = before is not None and not before.from_policy
    message = ui.render_schedule_set(dep_id, running, actor=ctx.actor.user_id, now=now, replaced=replaced,
                                     dry_run=cmd.dry_run, simulated=s.simulated,
                                     overrides=before.describe() if before is not None and before.from_policy else None)
    if cmd.dry_run:
        return message
    store.set_schedule(dep_id, **stored(cmd.schedule), set_by=ctx.actor.user_id, now=now)  # type: ignore[arg-type]
    ctx.ops.audit(ctx.actor.user_id, "schedule", "ok", deployment_id=dep_id, channel=ctx.actor.channel_id,
                  request={**stored(cmd.schedule), "zone": zone.key})
    engine.settle(dep_id, f"schedule changed by {who}", now)
    engine.edit_tracking(dep_id)
    engine.note_in_thread(record, message)
    return message
