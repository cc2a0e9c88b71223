"""The deploy modal: a form over the same rules as ``/fw deploy``, with a live worst-case cost.

Under a team policy the form offers only what the policy allows the person opening it in that
channel, shows its limits as hints naming each rule's source and the lifetime that will apply,
and refuses a forbidden submission on the field to blame (``bot/ui/form_policy.py`` says it)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError
from slack_bolt import App
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import PlainTextObject

from bot.adapters.fireworks import AlreadyExists, FireworksError, QuotaExceeded
from bot.core.durations import DurationError, parse_go_duration
from bot.core.errors import UserFacingError
from bot.core.names import PRECISIONS, REGIONS, accelerator_label, short_model
from bot.core.policy import Violation, check_request
from bot.core.pricing import (
    SINGLE_REGION_MULTIPLIER,
    format_usd,
    not_offered,
    offered_accelerators,
    price_per_gpu_hour,
    worst_case_usd_per_hour,
)
from bot.core.requests import DeploymentSpec, SpecError, spec_error_of
from bot.core.schedules import zone_of
from bot.services.approvals import needs_approval, request_approval
from bot.services.changes import execute_deploy
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.deployments import (
    DEFAULT_ACCELERATOR,
    Operations,
    Planned,
    UserError,
    deployment_id_stem,
)
from bot.services.guardrails import ask_for_create, guard_create
from bot.services.people import SlackDirectory
from bot.services.policy import policy_book
from bot.ui import kit
from bot.ui.form_policy import FormPolicy, field_error
from handlers.acking import acked_first, then

log = logging.getLogger("fwbot.views")

CALLBACK = "deploy_modal"
NO_SHAPE = "none"
DEFAULT_PRECISION = "default"  # the precision option that sends none: Fireworks chooses
GLOBAL_PLACEMENT = "global"  # the region option that sends none: the default, multi-region placement
# How long opening the form waits for the model catalog before it shows a "loading" form and
# fills it in when Fireworks answers (Slack honours the trigger for 3 s only).
OPEN_WAIT_S = 2.0
# How long a submission waits for the policy check (it may ask Slack for user groups and Fireworks
# for a shape) before it is acked without it; the deploy is checked again after the ack anyway.
POLICY_CHECK_WAIT_S = 1.5
_loading = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fwbot-form")
DURATION_BLOCKS = {
    "stz": ("scale_to_zero_window_s", "Scale to zero after idle"),
    "unused": ("unused_auto_delete_s", "Delete if unused for"),
}


def _models(services: Services, fp: FormPolicy) -> list[dict]:
    """The catalog's base models the policy allows, as many as a static select holds."""
    base = [m for m in services.catalog() if m.get("kind", "HF_BASE_MODEL") == "HF_BASE_MODEL"]
    return [dict(m) for m in fp.models(base)][:100]


def form_policy(services: Services, user: str | None, channel: str | None) -> FormPolicy:
    """The policy in force for ``user`` in ``channel``, as the form applies it."""
    if not user:
        return FormPolicy(None)
    return FormPolicy(policy_book(services).for_person(user, channel))


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
    channel, token = meta.get("channel"), meta.get("form")
    return {"channel": channel if isinstance(channel, str) and channel else None,
            "form": token if isinstance(token, str) and token else None}


def _private_metadata(channel: str | None, token: str | None) -> str:
    return json.dumps({"channel": channel, "form": token})


def form_key(view: dict) -> str | None:
    """What identifies one deploy form across its submissions: the token put in its metadata when
    it was opened, else Slack's view id. A second Submit of the same form, a re-delivered request
    or a double click all carry the same key."""
    token = _metadata(view).get("form")
    if token:
        return "form:" + token
    view_id = view.get("id")
    return "view:" + view_id if isinstance(view_id, str) and view_id else None


def form_deployment_id(base_model: str, key: str) -> str:
    """The deployment id a form creates when it does not name one: readable (the model) and fixed
    for the form (a digest of its key), so two submissions of it cannot create two deployments."""
    return f"{deployment_id_stem(base_model)}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


class FormClaims:
    """One deployment (or approval request) per deploy form: the first submission claims the
    form's key in SQLite, with the deployment id it creates; later ones are told it was taken."""

    PREFIX = "deploy_form:"

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()

    def claim(self, key: str, deployment_id: str) -> str | None:
        """Claim ``key`` for ``deployment_id``; the id it was claimed for before, or None if now ours."""
        store = self.services.store
        with self._lock:
            taken = store.get_kv(self.PREFIX + key)
            if taken:
                return taken
            store.set_kv(self.PREFIX + key, deployment_id, self.services.clock.now())
            return None

    def release(self, key: str) -> None:
        """Nothing was created nor requested: the form may be submitted again."""
        with self._lock:
            self.services.store.set_kv(self.PREFIX + key, "", self.services.clock.now())


def read_form(values: dict) -> dict[str, Any]:
    """The raw form values, by block id."""
    keys = ("model", "shape", "acc_type", "acc_count", "precision", "region", "min", "max", "stz", "unused",
            "display_name", "deployment_id")
    return {k: _state_value(values, k) for k in keys}


def _parse_form(form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's text as ``DeploymentSpec`` fields, and what could not be read, by block id.

    Only reading is done here (numbers, Go durations), as the command's grammar reads its flags;
    every rule about the values is ``DeploymentSpec``'s, the one the command obeys too.
    """
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    if form.get("model"):
        data["base_model"] = form["model"]
    for block, field in (("acc_count", "accelerator_count"), ("min", "min_replica_count"),
                         ("max", "max_replica_count")):
        raw = form.get(block)
        if raw in (None, ""):
            continue
        try:
            data[field] = int(str(raw).strip())
        except ValueError:
            errors[block] = "Enter a whole number."
    for block, (field, _label) in DURATION_BLOCKS.items():
        raw = (form.get(block) or "").strip()
        if not raw:
            continue
        try:
            data[field] = parse_go_duration(raw)
        except DurationError as e:
            errors[block] = str(e)
    if form.get("shape") and form["shape"] != NO_SHAPE:
        # A shape decides the hardware and the precision: the form shows no fields for them then.
        data["deployment_shape"] = form["shape"]
        data.pop("accelerator_count", None)
        errors.pop("acc_count", None)
    else:
        if form.get("acc_type"):
            data["accelerator_type"] = form["acc_type"]
        if form.get("precision") and form["precision"] != DEFAULT_PRECISION:
            data["precision"] = form["precision"]
    if form.get("region") and form["region"] != GLOBAL_PLACEMENT:
        data["region"] = form["region"]
    for block, field in (("display_name", "display_name"), ("deployment_id", "deployment_id")):
        if form.get(block):
            data[field] = form[block]
    return data, errors


# The ``/fw deploy`` flag each field of the form stands for: DeploymentSpec names the flag it
# blames (SpecError.flag), and the form shows the problem at that field, in the field's words.
FLAG_BLOCKS = {
    "model": "model",
    "deployment-shape": "shape",
    "accelerator-type": "acc_type",
    "accelerator-count": "acc_count",
    "precision": "precision",
    "region": "region",
    "min-replica-count": "min",
    "max-replica-count": "max",
    "scale-to-zero-window": "stz",
    "unused-auto-delete-duration": "unused",
    "display-name": "display_name",
    "deployment-id": "deployment_id",
}
FIELD_LABELS = {
    "model": "Model",
    "shape": "Validated shape",
    "acc_type": "Accelerator type",
    "acc_count": "GPUs per replica",
    "precision": "Precision",
    "region": "Region",
    "min": "Min replicas",
    "max": "Max replicas",
    "stz": "Scale to zero after idle",
    "unused": "Delete if unused for",
    "display_name": "Display name",
    "deployment_id": "Deployment id",
}
# The DeploymentSpec field each block fills in.
BLOCK_FIELDS = {
    "shape": "deployment_shape",
    "acc_type": "accelerator_type",
    "acc_count": "accelerator_count",
    "precision": "precision",
    "region": "region",
    "min": "min_replica_count",
    "max": "max_replica_count",
    "stz": "scale_to_zero_window_s",
    "unused": "unused_auto_delete_s",
    "display_name": "display_name",
    "deployment_id": "deployment_id",
}
_FLAG_RE = re.compile(r"`--([a-z-]+)`")


def _in_form_words(message: str) -> str:
    """A SpecError message with the flags it names (``--min-replica-count``) as the form's labels."""
    def label(m: re.Match) -> str:
        block = FLAG_BLOCKS.get(m.group(1))
        return FIELD_LABELS[block] if block else m.group(0)

    text = _FLAG_RE.sub(label, message)
    return (text[:1].upper() + text[1:])[:150]


def _spec_errors(exc: ValidationError) -> dict[str, str]:
    """Every rule DeploymentSpec found broken, at the field of the flag it names."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            errors.setdefault(FLAG_BLOCKS.get(cause.flag or "", "model"), _in_form_words(cause.message))
    if not errors:
        errors["model"] = _in_form_words(spec_error_of(exc).message)
    return errors


def validate_form(form: dict[str, Any]) -> tuple[DeploymentSpec | None, dict[str, str]]:
    """A spec from the form, or field errors keyed by block id (shown inline by Slack).

    The rules are ``DeploymentSpec``'s, exactly those ``/fw deploy`` obeys; the values that could
    be read are checked even when others could not, so every problem shows at once.
    """
    data, errors = _parse_form(form)
    if "base_model" not in data:
        errors["model"] = "Pick a model."
        return None, errors
    # DeploymentSpec stops at the first rule broken: leave out the field it blamed and ask
    # again, so the form shows every problem at once.
    for _ in range(len(BLOCK_FIELDS) + 1):
        try:
            spec = DeploymentSpec(**data)
        except ValidationError as e:
            found = _spec_errors(e)
        except SpecError as e:
            found = {FLAG_BLOCKS.get(e.flag or "", "model"): _in_form_words(e.message)}
        else:
            # The rules a well-formed request can still break (max replicas 0), as /fw deploy asks them.
            if (problem := spec.problem()) is not None:
                errors = {FLAG_BLOCKS.get(problem.flag or "", "model"): _in_form_words(problem.message), **errors}
            return (None, errors) if errors else (spec, {})
        errors = {**found, **errors}
        blamed = [BLOCK_FIELDS[b] for b in found if b in BLOCK_FIELDS and BLOCK_FIELDS[b] in data]
        if not blamed:
            break
        for field in blamed:
            data.pop(field)
    return None, errors


def _shapes(services: Services, model: str | None) -> list[dict]:
    if not model:
        return []
    try:
        return [s.get("snapshot") or {} for s in services.gateway.match_shapes(model)]
    except FireworksError as e:
        log.info("no shapes for %s: %s", model, e.message)
        return []


def shape_labels(shapes: list[dict], prices: dict[str, float], single_region: bool = False) -> dict[str, str]:
    """Each shape's option label, by shape name: the preset, the hardware per replica and its
    price (×1.5 when the form pins a region), the precision when it tells two apart, and the LoRA
    capability. No two alike: a label that would repeat gets the shape's own id."""
    labels: dict[str, str] = {}
    precisions: dict[str, set[str]] = {}
    for sh in shapes:
        precisions.setdefault(str(sh.get("presetType") or ""), set()).add(str(sh.get("precision") or ""))
    for sh in shapes:
        if not sh.get("name") or (sh.get("acceleratorType") and not_offered(sh["acceleratorType"], prices)):
            continue  # fwbot offers no hardware it has no price for
        preset = str(sh.get("presetType") or "shape")
        count = int(sh.get("acceleratorCount") or 1)
        parts = [preset.replace("_", " ").title(), f"{count} × {accelerator_label(sh.get('acceleratorType'))}"]
        if len(precisions.get(preset, ())) > 1 and sh.get("precision"):
            parts.append(str(sh["precision"]))
        if sh.get("enableAddons"):
            parts.append("multi-LoRA")
        usd = worst_case_usd_per_hour(1, count, sh.get("acceleratorType"), prices, single_region=single_region)
        parts.append(f"{format_usd(usd)} per replica" if usd is not None else "price unknown")
        labels[sh["name"]] = " · ".join(parts)
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    return {name: (f"{label} · {name.rsplit('/', 1)[-1]}" if seen[label] > 1 else label)
            for name, label in labels.items()}


def accelerator_options(prices: dict[str, float], allowed: list[str] | None = None) -> list:
    """Every accelerator fwbot offers (those it has a price for), with its price per GPU-hour;
    only those in ``allowed`` when given (the policy's)."""
    offered = offered_accelerators(prices) if allowed is None else allowed
    return [kit.option(f"{accelerator_label(acc)} · {format_usd(price_per_gpu_hour(acc, prices))} per GPU", acc)
            for acc in offered]


@dataclass
class FormPlan:
    """What the form would deploy, priced exactly as ``/fw deploy`` prices it (``plan_deploy``),
    or why it cannot say yet."""

    planned: Planned | None = None
    problem: str | None = None


def plan_form(ops: Operations, form: dict[str, Any]) -> FormPlan:
    spec, errors = validate_form(form)
    if spec is None:
        if not form.get("model"):
            return FormPlan(problem="pick a model to see the cost.")
        block, problem = next(iter(errors.items()))
        label = FIELD_LABELS.get(block, block)
        return FormPlan(problem=problem if problem.startswith(label) else f"{label}: {problem}")
    try:
        return FormPlan(planned=ops.plan_deploy(spec))
    except UserError as e:
        return FormPlan(problem=e.message)
    except FireworksError as e:
        return FormPlan(problem=f"Fireworks could not price it ({kit.escape(e.message)}).")


def live_cost(plan: FormPlan) -> str:
    """The worst case per hour and per day, with how it is made up."""
    planned = plan.planned
    if planned is None:
        return f":moneybag: *Worst case:* {plan.problem}"
    hi = planned.spec.max_replica_count
    count = planned.accelerator_count or 1
    usd = planned.usd_per_hour
    per_day = f" · {format_usd(usd * 24, '/day')}" if usd is not None else ""
    region = f" × {SINGLE_REGION_MULTIPLIER:g} for single-region placement" if planned.single_region else ""
    return (f":moneybag: *Worst case:* {format_usd(usd)} ({kit.counted(hi, 'replica')} × {count} × "
            f"{accelerator_label(planned.accelerator_type)}{region}){per_day}")


def precision_options() -> list:
    return [kit.option("Fireworks' choice (default)", DEFAULT_PRECISION)] + [kit.option(p, p) for p in PRECISIONS]


def region_options(allowed: list[str] | None = None) -> list:
    """The default global placement and every region; only the ``allowed`` regions when the policy
    names some (a region list rules out the global placement)."""
    regions = [kit.option(f"{r} (single region, {SINGLE_REGION_MULTIPLIER:g}× price)", r)
               for r in (REGIONS if allowed is None else allowed)]
    return regions if allowed is not None else [kit.option("Global (default, multi-region)", GLOBAL_PLACEMENT),
                                                *regions]


def _count_input(initial: int | None, placeholder: str):
    """GPUs per replica: empty means the model's own count, as ``/fw deploy`` without the flag."""
    element = kit.number_input("v", initial=initial, minimum=1, maximum=8, dispatch=True)
    element.placeholder = PlainTextObject(text=placeholder[:150])
    return element


def _int_or(raw: Any, default: int | None) -> int | None:
    try:
        return int(str(raw).strip()) if raw not in (None, "") else default
    except ValueError:
        return default


def build_modal(services: Services, *, channel: str | None, form: dict[str, Any] | None = None,
                token: str | None = None, user: str | None = None) -> dict:
    """The deploy form for ``user`` (whose policy decides what it offers) opened from ``channel``,
    filled in with ``form`` (the values so far)."""
    form = dict(form or {})
    fp = form_policy(services, user, channel)
    models = _models(services, fp)
    offered = list(offered_accelerators(services.prices))
    accelerators = fp.accelerators(offered)
    regions = fp.regions(REGIONS)
    blocked = fp.nothing_allowed(models=models, accelerators=accelerators, regions=regions,
                                 offered_accelerators=offered)
    if blocked:
        return kit.modal("Deploy a model", [kit.section(blocked), kit.footer_context(services.simulated)],
                         callback_id=CALLBACK, submit=None, private_metadata=_private_metadata(channel, token))
    # What the policy no longer allows (it changed while the form was open) is not picked.
    if form.get("model") and form["model"] not in {m["name"] for m in models}:
        form["model"] = None
    if fp.effective is not None and fp.effective.accelerators.is_set and form.get("acc_type") not in accelerators:
        form["acc_type"] = DEFAULT_ACCELERATOR if DEFAULT_ACCELERATOR in accelerators else accelerators[0]
    if regions is not None and form.get("region") not in regions:
        form["region"] = regions[0]  # a region must be pinned: the first allowed, shown and priced
    all_shapes, hidden = fp.shapes(_shapes(services, form.get("model")))
    shapes = [dict(sh) for sh in all_shapes]
    by_name = {sh["name"]: sh for sh in shapes if sh.get("name")}
    if form.get("shape") not in by_name and form.get("shape") != NO_SHAPE:
        form["shape"] = None  # one of another model's (the model changed since), or one the policy forbids
    chosen = by_name.get(form.get("shape") or "")
    labels = shape_labels(shapes, services.prices,
                          single_region=bool(form.get("region")) and form.get("region") != GLOBAL_PLACEMENT)
    shape_options = [kit.option("No shape: choose the hardware below", NO_SHAPE)] + [
        kit.option(label, name) for name, label in labels.items()]
    initial_shape = next((o for o in shape_options if o.value == form.get("shape")), None)
    not_allowed = f", {hidden} not allowed here" if hidden else ""
    if not form.get("model"):
        shape_placeholder = "Pick a model to see its shapes"
    elif by_name:
        shape_placeholder = (f"Optional: {kit.counted(len(by_name), 'validated shape')} "
                             f"for {short_model(form['model'])}{not_allowed}")
    elif hidden:
        shape_placeholder = f"No validated shapes for {short_model(form['model'])} allowed here"
    else:
        shape_placeholder = f"No validated shapes for {short_model(form['model'])}"
    shape_hint = "Fireworks recommends a validated shape; it sets the GPUs for you."
    if hidden:
        shape_hint += (f" {kit.counted(hidden, 'shape')} the team policy does not allow "
                       f"{'is' if hidden == 1 else 'are'} not offered.")
    model_options = [kit.option(short_model(m["name"]), m["name"]) for m in models]
    initial_model = next((o for o in model_options if o.value == form.get("model")), None)
    plan = plan_form(Operations(services), form)
    planned = plan.planned

    blocks: list[Any] = [
        kit.input_block("Model", kit.select("v", model_options, "Choose a base model", initial_model),
                        block_id="model", dispatch_action=True, hint=fp.model_hint()),
        kit.input_block("Validated shape", kit.select("v", shape_options, shape_placeholder, initial_shape),
                        block_id="shape", optional=True, dispatch_action=True, hint=shape_hint),
    ]
    if chosen:
        # The shape decides the hardware: shown, not editable (Fireworks refuses both at once).
        precision = f", at {chosen['precision']}" if chosen.get("precision") else ""
        blocks.append(kit.section(
            f"*Hardware per replica:* {int(chosen.get('acceleratorCount') or 1)} × "
            f"{accelerator_label(chosen.get('acceleratorType'))}, set by the shape{precision} "
            "(choose “No shape” to pick them yourself)", block_id="shape_hardware"))
    else:
        acc_options = accelerator_options(services.prices, accelerators)
        wanted_acc = form.get("acc_type") or DEFAULT_ACCELERATOR
        initial_acc = next((o for o in acc_options if o.value == wanted_acc), None)
        count_given = _int_or(form.get("acc_count"), None)
        if planned is not None and count_given is None:
            count_hint = f"{planned.accelerator_count or 1} (the model's default)"
        else:
            count_hint = "the model's default"
        blocks += [
            kit.input_block("Accelerator type", kit.select("v", acc_options, "GPU", initial_acc),
                            block_id="acc_type", dispatch_action=True, hint=fp.accelerator_hint()),
            kit.input_block("GPUs per replica", _count_input(count_given, count_hint),
                            block_id="acc_count", optional=True, dispatch_action=True,
                            hint="Empty: as many as the model needs, as `/fw deploy` does."),
        ]
        prec_options = precision_options()
        blocks.append(kit.input_block(
            "Precision", kit.select("v", prec_options, "Fireworks' choice",
                                    next((o for o in prec_options if o.value == form.get("precision")), None)),
            block_id="precision", optional=True, hint="As `--precision`; a validated shape decides it instead."))
    reg_options = region_options(regions)
    region_hint = (f"As `--region`: one region costs {SINGLE_REGION_MULTIPLIER:g}× the list price and cannot be "
                   "changed later.")
    blocks.append(kit.input_block(
        "Region", kit.select("v", reg_options, "Global (default)" if regions is None else "Choose a region",
                             next((o for o in reg_options if o.value == form.get("region")), None)),
        block_id="region", optional=regions is None, dispatch_action=True,
        hint=" ".join(h for h in (fp.region_hint(), region_hint) if h)))
    min_hint = "0 lets Fireworks scale it to zero when idle (cold start on the next request)."
    idle_required = fp.requires_idle_policy()
    blocks += [
        kit.input_block("Min replicas", kit.number_input("v", initial=_int_or(form.get("min"), 0)), block_id="min",
                        hint=" ".join(h for h in (min_hint, fp.min_replicas_hint()) if h)),
        kit.input_block("Max replicas", kit.number_input("v", initial=_int_or(form.get("max"), 1), minimum=1,
                                                         dispatch=True),
                        block_id="max", dispatch_action=True, hint=fp.max_replicas_hint()),
        kit.context(*(p for p in (live_cost(plan),
                                  fp.approval_line(planned.usd_per_hour if planned is not None else None))
                      if p)),
        kit.input_block("Scale to zero after idle", kit.text_input("v", initial=form.get("stz"),
                                                                   placeholder="e.g. 15m (Go duration)"),
                        block_id="stz", optional=True, hint=fp.idle_hint("stz")),
        kit.input_block("Delete if unused for", kit.text_input(
                            "v", initial=form.get("unused"),
                            placeholder="e.g. 72h: needed here unless min replicas is 0" if idle_required
                            else "168h by default; 0 = never"),
                        block_id="unused", optional=True, hint=fp.idle_hint("unused")),
        kit.input_block("Display name", kit.text_input("v", initial=form.get("display_name")),
                        block_id="display_name", optional=True),
        kit.input_block("Deployment id", kit.text_input("v", initial=form.get("deployment_id"),
                                                        placeholder="chosen for you if empty"),
                        block_id="deployment_id", optional=True),
    ]
    if (lifetime := fp.lifetime_line()) is not None:
        blocks.append(kit.context(lifetime))
    if fp.effective is not None and fp.effective.schedule.value is not None:
        zone = zone_of(SlackDirectory(services).tz(user) if user else None, services.settings.timezone)
        blocks.append(kit.context(fp.schedule_line(zone.key)))
    if services.simulated:
        blocks.append(kit.footer_context(True))
    return kit.modal("Deploy a model", blocks, callback_id=CALLBACK, submit="Deploy",
                     private_metadata=_private_metadata(channel, token))


def loading_modal(channel: str | None, token: str, text: str = ":hourglass_flowing_sand: Loading the model "
                  "catalog from Fireworks…") -> dict:
    """The form while Fireworks is slow to list the models (no Submit: nothing to submit yet)."""
    return kit.modal("Deploy a model", [kit.section(text)], callback_id=CALLBACK, submit=None,
                     private_metadata=_private_metadata(channel, token))


def open_deploy_modal(ctx: Context, trigger_id: str) -> None:
    """Open the form within the trigger's 3 s: with the catalog if Fireworks lists it in time,
    otherwise as a "loading" form that is filled in when it does."""
    channel, token = ctx.actor.channel_id, secrets.token_hex(8)
    pending = _loading.submit(build_modal, ctx.services, channel=channel, token=token, user=ctx.actor.user_id)
    try:
        try:
            view, late = pending.result(timeout=OPEN_WAIT_S), False
        except FutureTimeout:
            view, late = loading_modal(channel, token), True
        opened = ctx.client.views_open(trigger_id=trigger_id, view=view)
        if late:
            _fill_in(ctx, opened.get("view") or {}, pending, channel, token)
    except FireworksError as e:
        reply(ctx.respond, kit.Message(text=f"Could not load the model catalog: {e.message}",
                                       blocks=[kit.section(f":warning: Could not load the model catalog: {e.message}")]))
    except SlackApiError as e:
        log.warning("views.open failed: %s", e.response.get("error"))
        reply(ctx.respond, kit.Message(text="Slack did not open the form in time; run `/fw deploy` again.",
                                       blocks=[kit.section(":warning: Slack did not open the form in time "
                                                           "(`" + str(e.response.get("error")) + "`); "
                                                           "run `/fw deploy` again.")]))


def _fill_in(ctx: Context, opened: dict, pending, channel: str | None, token: str) -> None:
    """Replace the "loading" form with the real one once Fireworks has listed the models."""
    try:
        view = pending.result()
    except FireworksError as e:
        view = loading_modal(channel, token, f":warning: Could not load the model catalog: {kit.escape(e.message)}. "
                                             "Close this and run `/fw deploy` again.")
    if not opened.get("id"):
        return
    try:
        ctx.client.views_update(view_id=opened["id"], hash=opened.get("hash"), view=view)
    except SlackApiError as e:
        # Closed meanwhile, or already replaced: nothing to fill in.
        log.info("could not fill in the deploy form: %s", e.response.get("error"))


# The field a policy rule blames, when the form has it (``_policy_block`` names the exceptions).
RULE_BLOCKS = {
    "models": "model",
    "accelerators": "acc_type",
    "regions": "region",
    "max_replicas": "max",
    "max_gpus_per_deployment": "max",
    "require_idle_policy": "unused",
}


def _policy_block(v: Violation, form: dict[str, Any], planned: Planned, gpu_limit: int | None) -> str:
    """The field to show a broken rule at: the one whose value breaks it, and which the form shows
    (a shape replaces the accelerator fields)."""
    shaped = bool(form.get("shape")) and form["shape"] != NO_SHAPE
    if v.rule == "accelerators" and shaped:
        return "shape"
    if v.rule == "max_gpus_per_deployment" and gpu_limit is not None and (planned.accelerator_count or 1) > gpu_limit:
        return "shape" if shaped else "acc_count"  # one replica alone is too big
    if v.rule == "require_idle_policy" and planned.spec.min_replica_count == 0 \
            and planned.spec.unused_auto_delete_s is None:
        return "stz"  # with min replicas 0, its scale-to-zero window is what is too long
    return RULE_BLOCKS.get(v.rule, "model")


def policy_errors(services: Services, user: str | None, channel: str | None, form: dict[str, Any],
                  spec: DeploymentSpec) -> dict[str, str]:
    """What the team policy forbids in a valid form, by field, each naming its rule and source.

    The request is the one ``/fw deploy`` would make (``plan_deploy`` resolves the model's GPUs and
    the shape's hardware), checked by ``check_request`` as the command checks it. What cannot be
    planned now is left to the check after the ack, which says it to the user.
    """
    fp = form_policy(services, user, channel)
    if fp.effective is None or not fp.applies:
        return {}
    try:
        planned = Operations(services).plan_deploy(spec)
    except UserFacingError:
        return {}
    by_block: dict[str, list[Violation]] = {}
    gpu_limit = fp.effective.max_gpus_per_deployment.value
    for v in check_request(fp.effective, ask_for_create(planned)):
        by_block.setdefault(_policy_block(v, form, planned, gpu_limit), []).append(v)
    return {block: field_error(found) for block, found in by_block.items()}


def policy_errors_in_time(services: Services, user: str | None, channel: str | None, form: dict[str, Any],
                          spec: DeploymentSpec) -> dict[str, str]:
    """:func:`policy_errors`, if it answers within ``POLICY_CHECK_WAIT_S`` (Slack waits 3 s for the
    ack); else none, and the deploy is refused after the ack instead, as ``/fw deploy`` is."""
    pending = _loading.submit(policy_errors, services, user, channel, form, spec)
    try:
        return pending.result(timeout=POLICY_CHECK_WAIT_S)
    except FutureTimeout:
        log.info("the deploy form's policy check took over %.1fs; it is checked after the ack", POLICY_CHECK_WAIT_S)
    except Exception:  # noqa: BLE001 - the check after the ack still applies the policy
        log.exception("the deploy form's policy check failed; it is checked after the ack")
    return {}


def register(app: App, services: Services, metrics) -> None:
    ops = Operations(services)
    claims = FormClaims(services)

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
                                view=build_modal(services, channel=meta.get("channel"), form=form,
                                                 token=meta.get("form"), user=(body.get("user") or {}).get("id")))
        except SlackApiError as e:
            # hash_conflict: the user typed again; the next keystroke refreshes it.
            log.info("live cost update skipped: %s", e.response.get("error"))

    for block in ("model", "shape", "acc_type", "acc_count", "region", "max"):
        app.block_action({"block_id": block, "action_id": "v"})(_live_update)

    @app.view(CALLBACK)
    def submit(ack, body, context, respond) -> None:
        # Only what needs no Fireworks call is checked before the ack (Slack waits 3 s at most and
        # a Fireworks call can take longer): field formats and min ≤ max, answered inline.
        view = body.get("view") or {}
        form = read_form((view.get("state") or {}).get("values") or {})
        spec, errors = validate_form(form)
        if not errors:
            assert spec is not None
            errors = policy_errors_in_time(services, (body.get("user") or {}).get("id"),
                                           _metadata(view).get("channel"), form, spec)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        assert spec is not None
        ack()
        # The form was opened from a channel (its metadata says which): the deployment is tracked there.
        base = context["fw"]
        ctx = replace(base, actor=replace(base.actor, channel_id=_metadata(view).get("channel")))
        key = form_key(view)
        if key and not spec.deployment_id:
            spec = spec.model_copy(update={"deployment_id": form_deployment_id(spec.base_model, key)})
        then(services, lambda: deploy_from_form(ctx, spec, key), body, respond)

    def deploy_from_form(ctx: Context, spec: DeploymentSpec, key: str | None) -> None:
        """After the ack: the Fireworks checks, the approval gate, the create; the outcome goes
        to the user directly (the form is closed by then)."""
        user, channel = ctx.actor.user_id, ctx.actor.channel_id
        if key and spec.deployment_id:
            taken = claims.claim(key, spec.deployment_id)
            if taken:
                services.poster.tell(user, kit.Message(
                    text=f"This deploy form was already submitted (`{taken}`); nothing new was created.",
                    blocks=[kit.section(f":information_source: This deploy form was already submitted: it is for "
                                        f"`{taken}` (see its tracking message, or `/fw get {taken}`). Nothing new "
                                        "was created; run `/fw deploy` for another deployment.")]), channel)
                return
        keep_claim = creating = False
        try:
            planned = ops.plan_deploy(spec)
            try:
                ops.validate_deploy(planned)
            except AlreadyExists:
                mine = services.store.deployment(planned.deployment_id)
                if mine and mine.owner == user and mine.created_by_bot:
                    keep_claim = True  # e.g. an earlier submission of this very form created it
                    raise UserError(f"`{planned.deployment_id}` exists already and is yours; nothing new was "
                                    f"created (`/fw get {planned.deployment_id}`).") from None
                raise UserError(f"a deployment `{planned.deployment_id}` exists already; choose another "
                                "deployment id.") from None
            gov = guard_create(ctx, planned)
            reason = needs_approval(services, planned=planned, governing=gov)
            creating = True
            message = (request_approval(ctx, kind="deploy", planned=planned, reason=reason) if reason
                       else execute_deploy(ctx, planned, governing=gov))
        except UserFacingError as e:
            said = e.sentence("deploy") if isinstance(e, QuotaExceeded) else e.message
            if isinstance(e, FireworksError):
                # A create Fireworks did not confirm may have landed: its id stays this form's.
                keep_claim = creating and e.retryable
                text = kit.escape(said)
            else:
                text = said
            message = kit.Message(text=said, blocks=[kit.section(f":warning: Deploy failed: {text}")])
            if key and not keep_claim:
                claims.release(key)  # nothing was created nor requested: the form may be sent again
        if message is not None:
            services.poster.tell(user, message, channel)
