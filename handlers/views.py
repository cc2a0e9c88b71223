"""The deploy modal: a form over the same rules as ``/fw deploy``, with a live worst-case cost."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.durations import DurationError, parse_go_duration
from bot.fireworks import FireworksError
from bot.names import ACCELERATOR_TYPES, accelerator_label, resource_id_problem, short_model
from bot.operations import Actor, Operations, UserError
from bot.pricing import format_usd, worst_case_usd_per_hour
from bot.services import Services
from bot.spec import DeploymentSpec, SpecError
from bot.ui import kit
from handlers.acking import acked_first, then
from handlers.commands import Context, execute_deploy, reply

log = logging.getLogger("fwbot.views")

CALLBACK = "deploy_modal"
NO_SHAPE = "none"
DURATION_BLOCKS = {
    "stz": ("scale_to_zero_window_s", "Scale to zero after idle"),
    "unused": ("unused_auto_delete_s", "Delete if unused for"),
}


def _models(services: Services) -> list[dict]:
    return [m for m in services.catalog() if m.get("kind", "HF_BASE_MODEL") == "HF_BASE_MODEL"][:100]


def _state_value(values: dict, block: str) -> Any:
    for action in (values.get(block) or {}).values():
        if action.get("type") in ("static_select",):
            option = action.get("selected_option")
            value = option.get("value") if isinstance(option, dict) else None
        else:
            value = action.get("value")
        # Slack sends text here; anything else is treated as left empty.
        return value if isinstance(value, str) else None
    return None


def _metadata(view: dict) -> dict:
    """The view's private_metadata as fwbot wrote it (a JSON object), or empty if it is not."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    if not isinstance(meta, dict):
        return {}
    channel = meta.get("channel")
    return {"channel": channel if isinstance(channel, str) and channel else None}


def read_form(values: dict) -> dict[str, Any]:
    """The raw form values, by block id."""
    keys = ("model", "shape", "acc_type", "acc_count", "min", "max", "stz", "unused", "display_name",
            "deployment_id")
    return {k: _state_value(values, k) for k in keys}


def validate_form(form: dict[str, Any]) -> tuple[DeploymentSpec | None, dict[str, str]]:
    """A spec from the form, or field errors keyed by block id (shown inline by Slack)."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    if not form.get("model"):
        errors["model"] = "Pick a model."
    else:
        data["base_model"] = form["model"]
    for block, field in (("acc_count", None), ("min", "min_replica_count"), ("max", "max_replica_count")):
        raw = form.get(block)
        if raw in (None, ""):
            continue
        try:
            value = int(str(raw))
        except ValueError:
            errors[block] = "Enter a whole number."
            continue
        if value < 0 or (block == "acc_count" and value < 1):
            errors[block] = "Must be at least 1." if block == "acc_count" else "Cannot be negative."
            continue
        if field:
            data[field] = value
    if "min_replica_count" in data and "max_replica_count" in data and data["min_replica_count"] > data["max_replica_count"]:
        errors["min"] = f"Min replicas ({data['min_replica_count']}) is greater than max ({data['max_replica_count']})."
    for block, (field, _label) in DURATION_BLOCKS.items():
        raw = (form.get(block) or "").strip()
        if not raw:
            continue
        try:
            data[field] = parse_go_duration(raw)
        except DurationError as e:
            errors[block] = str(e)
    if form.get("shape") and form["shape"] != NO_SHAPE:
        # A validated shape fixes the hardware; the accelerator fields are ignored.
        data["deployment_shape"] = form["shape"]
    elif form.get("acc_type"):
        data["accelerator_type"] = form["acc_type"]
        if form.get("acc_count") not in (None, "") and "acc_count" not in errors:
            data.setdefault("accelerator_count", int(str(form["acc_count"])))
    if form.get("display_name"):
        if len(form["display_name"]) >= 64:
            errors["display_name"] = "Display names must be under 64 characters."
        data["display_name"] = form["display_name"]
    if form.get("deployment_id"):
        problem = resource_id_problem(form["deployment_id"], "deployment id")
        if problem:
            errors["deployment_id"] = problem
        data["deployment_id"] = form["deployment_id"]
    if errors:
        return None, errors
    try:
        return DeploymentSpec(**data), {}
    except (SpecError, ValidationError) as e:
        return None, {"model": str(e)[:150]}


def _shapes(services: Services, model: str | None) -> list[dict]:
    if not model:
        return []
    try:
        return [s.get("snapshot") or {} for s in services.gateway.match_shapes(model)]
    except FireworksError as e:
        log.info("no shapes for %s: %s", model, e.message)
        return []


def live_cost(services: Services, form: dict[str, Any], shapes: list[dict] | None = None) -> str:
    acc_type = form.get("acc_type") or "NVIDIA_H100_80GB"
    try:
        count = int(form.get("acc_count") or 1)
        hi = int(form.get("max") or 1)
    except ValueError:
        return "Worst case: fill in whole numbers to see the cost."
    chosen = next((s for s in shapes or [] if s.get("name") == form.get("shape")), None)
    if chosen:
        acc_type, count = chosen.get("acceleratorType") or acc_type, int(chosen.get("acceleratorCount") or 1)
    usd = worst_case_usd_per_hour(hi, count, acc_type, services.prices)
    return (f":moneybag: *Worst case:* {format_usd(usd)} ({hi} replica(s) × {count} × "
            f"{accelerator_label(acc_type)})" + (f" · {format_usd(usd * 24, '/day')}" if usd is not None else ""))


def build_modal(services: Services, *, channel: str | None, form: dict[str, Any] | None = None) -> dict:
    form = form or {}
    models = _models(services)
    shapes = _shapes(services, form.get("model"))
    shape_options = [kit.option("No shape: choose the hardware below", NO_SHAPE)] + [
        kit.option(
            f"{str(sh.get('presetType', 'shape')).title()} · {sh.get('acceleratorCount') or 1} × "
            f"{accelerator_label(sh.get('acceleratorType'))} · "
            f"{format_usd(worst_case_usd_per_hour(1, sh.get('acceleratorCount'), sh.get('acceleratorType'), services.prices))}"
            " per replica",
            sh["name"],
        )
        for sh in shapes if sh.get("name")
    ]
    initial_shape = next((o for o in shape_options if o.value == form.get("shape")), None)
    model_options = [kit.option(short_model(m["name"]), m["name"]) for m in models]
    initial_model = next((o for o in model_options if o.value == form.get("model")), None)
    acc_options = [kit.option(accelerator_label(a), a) for a in ACCELERATOR_TYPES]
    initial_acc = next((o for o in acc_options if o.value == (form.get("acc_type") or "NVIDIA_H100_80GB")), None)
    blocks = [
        kit.input_block("Model", kit.select("v", model_options, "Choose a base model", initial_model),
                        block_id="model", dispatch_action=True),
        kit.input_block("Validated shape", kit.select("v", shape_options, "Pick a model to see its shapes",
                                                      initial_shape),
                        block_id="shape", optional=True, dispatch_action=True,
                        hint="Fireworks recommends a validated shape; it sets the GPUs for you."),
        kit.input_block("Accelerator type", kit.select("v", acc_options, "GPU", initial_acc),
                        block_id="acc_type", dispatch_action=True),
        kit.input_block("GPUs per replica", kit.number_input("v", initial=int(form.get("acc_count") or 1),
                                                             minimum=1, maximum=8, dispatch=True),
                        block_id="acc_count", dispatch_action=True),
        kit.input_block("Min replicas", kit.number_input("v", initial=int(form.get("min") or 0)), block_id="min",
                        hint="0 lets Fireworks scale it to zero when idle (cold start on the next request)."),
        kit.input_block("Max replicas", kit.number_input("v", initial=int(form.get("max") or 1), minimum=1,
                                                         dispatch=True),
                        block_id="max", dispatch_action=True),
        kit.context(live_cost(services, form, shapes)),
        kit.input_block("Scale to zero after idle", kit.text_input("v", initial=form.get("stz"),
                                                                   placeholder="e.g. 15m (Go duration)"),
                        block_id="stz", optional=True),
        kit.input_block("Delete if unused for", kit.text_input("v", initial=form.get("unused"),
                                                               placeholder="168h by default; 0 = never"),
                        block_id="unused", optional=True),
        kit.input_block("Display name", kit.text_input("v", initial=form.get("display_name")),
                        block_id="display_name", optional=True),
        kit.input_block("Deployment id", kit.text_input("v", initial=form.get("deployment_id"),
                                                        placeholder="chosen for you if empty"),
                        block_id="deployment_id", optional=True),
    ]
    if services.simulated:
        blocks.append(kit.footer_context(True))
    return kit.modal("Deploy a model", blocks, callback_id=CALLBACK, submit="Deploy",
                     private_metadata=json.dumps({"channel": channel}))


def open_deploy_modal(ctx: Context, trigger_id: str) -> None:
    try:
        view = build_modal(ctx.services, channel=ctx.actor.channel_id)
        ctx.client.views_open(trigger_id=trigger_id, view=view)
    except FireworksError as e:
        reply(ctx.respond, kit.Message(text=f"Could not load the model catalog: {e.message}",
                                       blocks=[kit.section(f":warning: Could not load the model catalog: {e.message}")]))
    except SlackApiError as e:
        log.warning("views.open failed: %s", e.response.get("error"))
        reply(ctx.respond, kit.Message(text="Slack did not open the form in time; run `/fw deploy` again.",
                                       blocks=[kit.section(":warning: Slack did not open the form in time "
                                                           "(`" + str(e.response.get("error")) + "`); "
                                                           "run `/fw deploy` again.")]))


def register(app: App, services: Services, metrics) -> None:
    ops = Operations(services)

    @acked_first(services)
    def _live_update(body, client, respond) -> None:
        view = body.get("view")
        if not view:  # these ids only live in the deploy modal
            if body.get("response_url"):
                respond(response_type="ephemeral", replace_original=False,
                        text=":information_source: That control only works in the deploy form (`/fw deploy`).")
            return
        form = read_form((view.get("state") or {}).get("values") or {})
        meta = _metadata(view)
        try:
            client.views_update(view_id=view["id"], hash=view.get("hash"),
                                view=build_modal(services, channel=meta.get("channel"), form=form))
        except SlackApiError as e:
            # hash_conflict: the user typed again; the next keystroke refreshes it.
            log.info("live cost update skipped: %s", e.response.get("error"))

    for block in ("model", "shape", "acc_type", "acc_count", "max"):
        app.block_action({"block_id": block, "action_id": "v"})(_live_update)

    @app.view(CALLBACK)
    def submit(ack, body, client, respond) -> None:
        form = read_form((body["view"].get("state") or {}).get("values") or {})
        spec, errors = validate_form(form)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        assert spec is not None
        try:
            planned = ops.plan_deploy(spec)
        except UserError as e:
            ack(response_action="errors", errors={"model": kit.clip(e.message, 150)})
            return
        except FireworksError as e:
            ack(response_action="errors", errors={"model": kit.clip(f"Fireworks: {e.message}", 150)})
            return
        ack()
        user = body["user"]["id"]
        meta = _metadata(body["view"])
        ctx = Context(services, ops, Actor(user, meta.get("channel"), services.is_admin(user)),
                      respond, client, body, metrics)

        def deploy() -> None:
            try:
                ops.validate_deploy(planned)
                from handlers.approvals_gate import needs_approval, request_approval

                reason = needs_approval(services, planned=planned)
                message = (request_approval(ctx, kind="deploy", planned=planned, reason=reason) if reason
                           else execute_deploy(ctx, planned))
            except (UserError, FireworksError) as e:
                message = kit.Message(text=e.message, blocks=[kit.section(f":warning: Deploy failed: {e.message}")])
            if message is not None:
                services.poster.tell(user, message, meta.get("channel"))

        then(services, deploy, body, respond)
