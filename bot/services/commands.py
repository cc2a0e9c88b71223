"""The ``/fw`` verbs as use cases: each takes the request context and a parsed request, does the
work and returns the message for the person (or None when it answered already).

``VERBS`` is the one table from a request's verb to its use case; ``tests/services`` checks that
every verb of the grammar (bot/core/grammar.py) has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.adapters.fireworks import NotFound, QuotaExceeded, ScalingUp
from bot.core import requests
from bot.core.clock import parse_iso
from bot.core.durations import humanize
from bot.core.errors import UserFacingError
from bot.core.names import short_model, unknown_model_message
from bot.core.pricing import deployment_worst_case, format_usd, is_single_region, not_offered
from bot.services import cost_commands, guardrails, listing, policy_commands, schedule_commands
from bot.services.approvals import ask_to_delete, may_delete_now, needs_approval, request_approval
from bot.services.changes import (
    announce_in_thread,
    check_scale,
    execute_deploy,
    note_change,
    scale_deployment,
)
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.deployments import AlreadyYours, DeploymentInUse, UserError
from bot.services.lifecycle import History, LifecycleEngine, engine_for
from bot.services.policy import policy_book
from bot.services.tracking import ensure_tracking
from bot.ui import audit as audit_ui
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui import lifecycle as lifecycle_ui
from bot.ui import schedules as schedule_ui
from bot.ui.approvals import approvers_text
from bot.ui.kit import Message

log = logging.getLogger("fwbot.commands")


def extra_help(services: Services) -> list[str]:
    s = services.settings
    notes = []
    if s.approvals_enabled:
        where = f"<#{s.approval_channel}>" if s.approval_channel else "the channel they are asked in"
        notes.append(
            f"*Approvals:* requests whose worst case exceeds {format_usd(s.approval_threshold_usd_per_hour)}, "
            "and deletes of someone else's deployment, wait for an approver "
            f"({approvers_text(s.approvers)}) in {where}; cheaper requests run at once. Nobody approves "
            f"their own request; unanswered requests expire after {humanize(s.approval_expiry)}."
        )
    else:
        notes.append("*Approvals are off* (no `FWBOT_APPROVERS` configured): requests run at once.")
    alert = f"<#{s.alert_channel}>" if s.alert_channel else "the alert channel (none is set)"
    notes.append(
        "*Messages:* fwbot announces a change only once Fireworks shows it. When a channel or thread "
        f"refuses its posts (archived, private without fwbot), the owner gets them by DM, then {alert}; "
        "what it could not do after its retries is said there too."
    )
    book = policy_book(services)
    if book.loaded.path is None:
        notes.append("*Guardrails:* no team policy is set (`/fw policy` says how to write one).")
    else:
        notes.append("*Guardrails:* the team policy decides which models, accelerators, regions and sizes may be "
                     "asked for, with GPU quotas; a refusal names the rule and where it comes from. `/fw policy` "
                     "shows the rules in force, `/fw quota` your GPUs against the quotas; admins may "
                     "`--override \"reason\"` (audited).")
    if services.simulated:
        notes.append(":test_tube: This fwbot talks to *simulated Fireworks*: nothing costs money.")
    return notes


def run_verb(ctx: Context, cmd: requests.ParsedCommand) -> None:
    """Run one parsed command after the ack, answering ephemerally."""
    handler = VERBS.get(cmd.verb)
    if handler is None:
        reply(ctx.respond, ui.problem(f"`/fw {cmd.verb}` is not available in this fwbot yet."))
        return
    try:
        message = handler(ctx, cmd)
        ctx.metrics.operations.labels(verb=cmd.verb, result="ok").inc()
    except UserFacingError as e:
        ctx.metrics.operations.labels(verb=cmd.verb, result="refused").inc()
        if isinstance(e, QuotaExceeded):
            message = ui.problem(e.sentence(cmd.verb))
        else:
            message = problem_reply(e, ctx.simulated)
    if message is not None:
        reply(ctx.respond, message)


# -- verbs ---------------------------------------------------------------------------------------
def do_deploy(ctx: Context, cmd: requests.DeployCommand) -> Message | None:
    return deploy(ctx, cmd.spec, dry_run=cmd.dry_run, override=cmd.override)


def deploy(ctx: Context, spec: requests.DeploymentSpec, *, dry_run: bool, override: str | None = None) -> Message | None:
    s = ctx.services
    problem = spec.problem()
    if problem is not None:
        raise UserError(problem.message)
    try:
        planned = ctx.ops.plan_deploy(spec)
    except UserError:
        if s.find_model(spec.base_model) is None:  # say which catalog ids come closest
            raise UserError(unknown_model_message(spec.base_model, [m.get("name", "") for m in s.catalog()])) from None
        raise
    gov = guardrails.guard_create(ctx, planned, override=override)
    ctx.ops.validate_deploy(planned)
    if dry_run:
        ctx.ops.audit(ctx.actor.user_id, "deploy", "dry-run", deployment_id=planned.deployment_id,
                      channel=ctx.actor.channel_id, request=planned.fields)
        return ui.dry_run(spec.describe(), planned.usd_per_hour, f"would create `{planned.deployment_id}`",
                          simulated=s.simulated, single_region=planned.single_region)
    reason = needs_approval(s, planned=planned, governing=gov)
    if reason:
        return request_approval(ctx, kind="deploy", planned=planned, reason=reason, override=override)
    return execute_deploy(ctx, planned, governing=gov, override=override)


def do_get(ctx: Context, cmd: requests.GetCommand) -> Message:
    s = ctx.services
    try:
        wire = s.gateway.get_deployment(cmd.deployment_id)
    except NotFound:
        raise UserError(f"there is no deployment `{cmd.deployment_id}` (see `/fw list all`).") from None
    ctx.ops.mirror(wire)
    record = s.store.deployment(cmd.deployment_id)
    # The timers the sweep acts on, computed the same way; times in the reader's own timezone.
    engine, now = engine_for(s), s.clock.now()
    timers = engine.timers_for(record, now) if record is not None else []
    scheduled = schedule_ui.schedule_line(engine.schedule_of(record), now,
                                          History.load(s.store, record.id).of(record.id).postponed) if record else None
    return ui.card(wire, usd=deployment_worst_case(wire, s.prices), owner=record.owner if record else None,
                   channel=record.channel if record else None, simulated=s.simulated, timers=timers, now=now,
                   tz=engine.directory.tz(ctx.actor.user_id),
                   ready_at=parse_iso(record.ready_at) if record else None,
                   unused_delete_s=record.unused_delete_s if record else None, extra=[scheduled] if scheduled else ())


def do_update(ctx: Context, cmd: requests.UpdateCommand) -> Message | None:
    s = ctx.services
    record = ctx.ops.authorize_change(ctx.actor, cmd.deployment_id)
    try:
        current = s.gateway.get_deployment(cmd.deployment_id)
    except NotFound:
        raise UserError(f"there is no deployment `{cmd.deployment_id}`.") from None
    change = cmd.change
    if change.draft_model:
        ctx.ops.check_draft_model(change.draft_model)
    if change.deployment_shape:
        # A shape decides the hardware. Resolve it (a preset or a full name) to the shape Fireworks
        # offers for this model and the accelerators it brings, so the diff, the price and the
        # approval gate see the new hardware rather than the old.
        wanted = change.deployment_shape
        try:
            shape = ctx.ops.resolve_shape(current.get("baseModel", ""), wanted, bool(current.get("enableAddons")))
        except UserError:
            if requests.is_shape_preset(wanted):
                raise
            shape = None  # not among the validated shapes for this model: its hardware stays unknown
        if shape is not None:
            snap = shape.get("snapshot") or {}
            name = wanted if not requests.is_shape_preset(wanted) else (snap.get("name") or shape.get("name"))
            change = change.with_shape(name, snap.get("acceleratorType"), snap.get("acceleratorCount"))
    problem = change.problem_with(current)
    if problem:
        raise UserError(problem)
    if (new_acc := change.accelerator_type or change.shape_accelerator_type) and \
            (refusal := not_offered(new_acc, s.prices)):
        raise UserError(refusal)
    diff = change.diff(current, current_unused_auto_delete_s=record.unused_delete_s if record else None)
    if not diff:
        return ui.plain(f"`{cmd.deployment_id}` already looks like that; nothing to change.")
    after = change.apply_to(current)
    before_usd, after_usd = deployment_worst_case(current, s.prices), deployment_worst_case(after, s.prices)
    lines = [f"• *{label}:* {before} → {after_text}" for label, before, after_text in diff]
    if change.shape_hardware_known:
        money = f"*Worst case:* {format_usd(before_usd)} → {format_usd(after_usd)}"
        if is_single_region(current.get("placement")):
            money += f" ({ui.SINGLE_REGION_NOTE})"
    else:
        lines.append("• *Hardware per replica:* decided by the shape (Fireworks does not offer it as a "
                     f"validated shape for `{short_model(current.get('baseModel') or '?')}`)")
        money = (f"*Worst case:* {format_usd(before_usd)} → unknown: fwbot cannot tell what hardware "
                 "that shape brings")
    gov, before_ask, after_ask = guardrails.guarded_update(ctx, cmd.deployment_id, record, current, after, change,
                                                           before_usd, after_usd, override=cmd.override)
    if cmd.dry_run:
        return Message(text=f"Dry run: update {cmd.deployment_id}", blocks=[
            kit.section(f":mag: Dry run — `{cmd.deployment_id}` would change:\n" + "\n".join(lines)),
            kit.section(money), kit.footer_context(s.simulated)])
    reason = needs_approval(s, before_usd=before_usd, after_usd=after_usd, governing=gov)
    if reason:
        return request_approval(ctx, kind="update", deployment_id=cmd.deployment_id, change=change,
                                reason=reason, usd=after_usd, before_usd=before_usd, diff=lines,
                                override=cmd.override)
    guardrails.apply_update(ctx, gov, cmd.deployment_id, change, before_ask, after_ask, override=cmd.override)
    note = Message(text=f"{cmd.deployment_id} updated", blocks=[
        kit.section(f":gear: {kit.mention(ctx.actor.user_id)} updated `{cmd.deployment_id}`:\n" + "\n".join(lines)),
        kit.section(money), kit.footer_context(s.simulated)])
    announce_in_thread(ctx, cmd.deployment_id, note)
    return note


def do_scale(ctx: Context, cmd: requests.ScaleCommand) -> Message | None:
    s = ctx.services
    # The same checks the confirm_scale button makes (who may, the deployment, its range).
    checked = check_scale(ctx, cmd.deployment_id, cmd.replicas)
    record, usd = checked.record, checked.usd
    if cmd.dry_run:
        return ui.plain(f":mag: Dry run — would scale `{cmd.deployment_id}` to {kit.counted(cmd.replicas, 'replica')} "
                        f"(worst case stays {format_usd(usd)}).", simulated=s.simulated)
    if cmd.replicas == 0 and record is not None and record.owner not in (None, ctx.actor.user_id):
        return confirm_message(
            f"`{cmd.deployment_id}` belongs to {kit.mention(record.owner)}. Scale it to zero? "
            "The next request will wait for a cold start.",
            "Scale to zero", "confirm_scale", {"d": cmd.deployment_id, "r": 0})
    note = scale_deployment(ctx, checked, cmd.deployment_id, cmd.replicas)
    return note


def confirm_message(question: str, ok_label: str, action_id: str, value: dict) -> Message:
    return Message(text=question, blocks=[
        kit.section(question),
        kit.actions(
            kit.button(ok_label, action_id, value, style="danger",
                       confirm_with=kit.confirm("Are you sure?", question, ok=ok_label)),
            kit.button("Cancel", "confirm_cancel", "cancel"),
        ),
    ])


def do_delete(ctx: Context, cmd: requests.DeleteCommand) -> Message | None:
    """The owner or an admin is asked once (a Delete button, no second dialog); anyone else's
    delete goes to an approver (the rule every delete entry point follows: approvals_gate)."""
    s = ctx.services
    direct = may_delete_now(ctx, cmd.deployment_id)
    try:
        wire = s.gateway.get_deployment(cmd.deployment_id)
    except NotFound:
        raise UserError(f"there is no deployment `{cmd.deployment_id}`.") from None
    how = "permanently (cannot be undone)" if cmd.hard else "(can be undone with `/fw undelete` until purged)"
    if cmd.ignore_checks:
        how += ", even if it is in use (`--ignore-checks`: Fireworks' in-use check is skipped)"
    if cmd.dry_run:
        would = "delete" if direct else "ask an approver to let you delete"
        return ui.plain(f":mag: Dry run — would {would} `{cmd.deployment_id}` {how}.", simulated=s.simulated)
    if not direct:
        return ask_to_delete(ctx, cmd.deployment_id, hard=cmd.hard, ignore_checks=cmd.ignore_checks)
    replicas = wire.get("replicaCount") or 0
    question = f"Delete `{cmd.deployment_id}` {how}? It has {kit.counted(replicas, 'replica')} running now."
    value = {"d": cmd.deployment_id, "h": int(cmd.hard), **({"i": 1} if cmd.ignore_checks else {})}
    return Message(text=question, blocks=[
        kit.section(question),
        kit.actions(
            kit.button("Delete", "confirm_delete", value, style="danger"),
            kit.button("Cancel", "confirm_cancel", "cancel"),
        ),
    ])


def problem_reply(e: UserFacingError, simulated: bool = False) -> Message:
    """What a refused change says: a delete Fireworks refused because the deployment is in use
    gets its *Delete anyway* offer; anything else is one warning line."""
    if isinstance(e, DeploymentInUse):
        return ui.in_use(e.message, deployment_id=e.deployment_id, hard=e.hard,
                         fireworks_message=e.fireworks_message, simulated=simulated)
    if isinstance(e, QuotaExceeded):
        return ui.problem(e.sentence())
    return ui.problem(e.user_message)


def dry_run_reply(ctx: Context, deployment_id: str, what: str) -> Message:
    """``--dry-run`` of a change: check who may make it, say what would happen, change nothing."""
    ctx.ops.authorize_change(ctx.actor, deployment_id)
    return ui.plain(f":mag: Dry run — would {what}.", simulated=ctx.services.simulated)


def do_undelete(ctx: Context, cmd: requests.UndeleteCommand) -> Message | None:
    if cmd.dry_run:
        return dry_run_reply(ctx, cmd.deployment_id, f"undelete `{cmd.deployment_id}`")
    wire = guardrails.undelete(ctx.services, ctx.ops, ctx.actor, cmd.deployment_id)
    return note_change(ctx, cmd.deployment_id, f":recycle: {kit.mention(ctx.actor.user_id)} undeleted "
                       f"`{cmd.deployment_id}` (state {wire.get('state')}).")


def do_lora(ctx: Context, cmd: requests.LoraCommand) -> Message | None:
    """firectl's load-lora / unload-lora: the reply says what was loaded or unloaded where. An
    unload without ``--deployment`` is from Fireworks' serverless platform, as firectl does."""
    s = ctx.services
    addon = f"`{short_model(cmd.addon_model)}`"
    if cmd.deployment_id is None:
        if cmd.dry_run:
            loaded = ctx.ops.serverless_addons(ctx.actor, cmd.addon_model)
            return ui.plain(f":mag: Dry run — would unload LoRA {addon} from Fireworks' serverless platform "
                            f"({kit.counted(len(loaded), 'deployed model')}).", simulated=s.simulated)
        result = ctx.ops.lora(ctx.actor, cmd.action, cmd.addon_model, None)
        return ui.plain(f":jigsaw: {kit.mention(ctx.actor.user_id)} unloaded LoRA {addon} from Fireworks' serverless "
                        f"platform ({_deployed(result.deployed_models)}). It is no longer served there.",
                        simulated=s.simulated)
    extras = [w for w, on in (("public", cmd.public), ("replacing the addon there", cmd.replace_merged_addon)) if on]
    if cmd.dry_run:
        how = f" ({', '.join(extras)})" if extras else ""
        where = "on" if cmd.action == "load" else "from"
        return dry_run_reply(ctx, cmd.deployment_id, f"{cmd.action} {addon} {where} `{cmd.deployment_id}`{how}")
    result = ctx.ops.lora(ctx.actor, cmd.action, cmd.addon_model, cmd.deployment_id, public=cmd.public,
                          replace_merged_addon=cmd.replace_merged_addon)
    who = kit.mention(ctx.actor.user_id)
    if cmd.action == "unload":
        return note_change(ctx, cmd.deployment_id, f":jigsaw: {who} unloaded LoRA {addon} from `{cmd.deployment_id}` "
                           f"({_deployed(result.deployed_models)}).")
    text = f":jigsaw: {who} loaded LoRA {addon} on `{cmd.deployment_id}` ({_deployed(result.deployed_models)}"
    text += ", public)." if result.public else ")."
    if cmd.replace_merged_addon:
        text += (" It replaced " + ", ".join(f"`{short_model(m)}`" for m in result.replaced) + "."
                 if result.replaced else " There was no addon on it to replace.")
    text += f" Query it as `{cmd.addon_model}#{s.gateway.deployment_name(cmd.deployment_id)}`."
    return note_change(ctx, cmd.deployment_id, text)


def _deployed(names: list[str]) -> str:
    """The deployed models a LoRA load or unload made or removed, by id."""
    ids = [f"`{n.rsplit('/', 1)[-1]}`" for n in names if n]
    return ("deployed model " if len(ids) == 1 else "deployed models ") + ", ".join(ids) if ids else "no deployed model"


def do_owner(ctx: Context, cmd: requests.OwnerCommand) -> Message | None:
    if cmd.dry_run:
        return dry_run_reply(ctx, cmd.deployment_id,
                             f"make {kit.mention(cmd.user_id)} the owner of `{cmd.deployment_id}`")
    record = ctx.ops.transfer(ctx.actor, cmd.deployment_id, cmd.user_id)
    return note_change(ctx, cmd.deployment_id, f":handshake: {kit.mention(cmd.user_id)} now owns `{record.id}` "
                       f"(transferred by {kit.mention(ctx.actor.user_id)}).")


def do_adopt(ctx: Context, cmd: requests.AdoptCommand) -> Message | None:
    s = ctx.services
    try:
        record = ctx.ops.adopt(ctx.actor, cmd.deployment_id)
    except AlreadyYours as e:
        return ui.plain(f":information_source: {e.message}", simulated=s.simulated)
    record = ensure_tracking(s, record)
    note = ui.plain(f":raised_hands: {kit.mention(ctx.actor.user_id)} adopted `{record.id}`; fwbot now tracks it "
                    f"in {kit.channel_link(record.channel)}.", simulated=s.simulated)
    announce_in_thread(ctx, cmd.deployment_id, note)
    return note


def do_models(ctx: Context, cmd: requests.ModelsCommand) -> Message:
    return ui.models_list(ctx.services.catalog(), cmd.query, simulated=ctx.services.simulated)


def do_query(ctx: Context, cmd: requests.QueryCommand) -> Message:
    s = ctx.services
    try:
        result = s.gateway.complete(cmd.deployment_id, cmd.prompt)
    except ScalingUp:
        return ui.plain(f":snowflake: `{cmd.deployment_id}` was scaled to zero; this request started a cold "
                        "start. Try again in a few minutes.", simulated=s.simulated)
    except NotFound:
        raise UserError(f"there is no deployment `{cmd.deployment_id}` to query.") from None
    tokens = ""
    if result.prompt_tokens is not None:
        tokens = f" · {result.prompt_tokens} prompt + {result.completion_tokens} completion tokens"
    return Message(text=result.text, blocks=[
        kit.section(f"*Prompt:* {kit.escape(kit.clip(cmd.prompt, 500))}"),
        kit.section(f"*Answer:* {kit.escape(result.text) or '_(empty)_'}"),
        kit.footer_context(s.simulated, f"`{cmd.deployment_id}` answered in {result.latency_s * 1000:.0f} ms{tokens}"),
    ])


def do_audit(ctx: Context, cmd: requests.AuditCommand) -> Message:
    """Who did what, when (in the reader's timezone) and why: bot/ui/audit.py renders the rows,
    with each shown deployment's whole trail for the values before a change, and the approvals
    the rows belong to."""
    store = ctx.services.store
    rows = store.audit_trail(cmd.deployment_id, limit=audit_ui.PAGE + 1)
    if not rows:
        return ui.plain("No audit entries" + (f" for `{cmd.deployment_id}`." if cmd.deployment_id else "."))
    shown = rows[:audit_ui.PAGE]
    trails = {dep: store.audit_trail(dep, limit=audit_ui.HISTORY_MAX)
              for dep in dict.fromkeys(r["deployment_id"] for r in shown if r["deployment_id"])}
    approvals = {aid: store.approval(aid) for aid in dict.fromkeys(audit_ui.approval_id(r) for r in shown) if aid}
    older: int | None = 0
    if len(rows) > audit_ui.PAGE:
        whole = trails.get(cmd.deployment_id or "") if cmd.deployment_id else None
        older = len(whole) - len(shown) if whole is not None and len(whole) < audit_ui.HISTORY_MAX else None
    return audit_ui.render(shown, deployment_id=cmd.deployment_id, trails=trails, approvals=approvals,
                           older=older, simulated=ctx.services.simulated)


def do_keep(ctx: Context, cmd: requests.KeepCommand) -> Message:
    """``/fw keep <id> [D]``: keep it warm and postpone fwbot's own actions for D."""
    engine = engine_for(ctx.services)
    result = engine.keep_warm(ctx.actor, cmd.deployment_id, cmd.duration_s, dry_run=cmd.dry_run)
    message = kept_warm_message(engine, ctx.actor.user_id, result)
    if result.extended and not result.dry_run:
        engine.note_in_thread(engine.s.store.deployment(cmd.deployment_id), message)
    return message


def kept_warm_message(engine: LifecycleEngine, user: str, result) -> Message:
    return lifecycle_ui.render_kept_warm(
        result.deployment_id, result.until, actor=user, tz=engine.directory.tz(user), now=engine.s.clock.now(),
        raised_from=result.raised_from, usd_per_hour=result.usd_per_hour, extended=result.extended,
        dry_run=result.dry_run, simulated=engine.s.simulated,
    )


VERBS: dict[str, Callable[[Context, Any], Message | None]] = {
    "deploy": do_deploy,
    "list": listing.do_list,
    "get": do_get,
    "update": do_update,
    "scale": do_scale,
    "delete": do_delete,
    "undelete": do_undelete,
    "lora": do_lora,
    "owner": do_owner,
    "adopt": do_adopt,
    "models": do_models,
    "query": do_query,
    "audit": do_audit,
    "keep": do_keep,
    "schedule": schedule_commands.do_schedule,
    "cost": cost_commands.do_cost,
    "budget": cost_commands.do_budget,
    "policy": policy_commands.do_policy,
    "quota": policy_commands.do_quota,
}
