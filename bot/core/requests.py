"""What a `/fw` command (or the deploy modal) asks for, independent of Slack and of the API client.

``DeploymentSpec`` is a deployment to create, ``DeploymentChange`` the fields an update sets; both
are frozen pydantic models whose validators hold the cross-field rules (min ≤ max, one way to give
the accelerator count, …) so the command parser and the modal share them. The ``*Command``
dataclasses are the parser's results, one per verb.

Messages of :class:`SpecError` name the ``/fw`` flag involved, because that is the vocabulary users
see in the help and in the modal's labels.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from bot.core.durations import format_api_duration, humanize, parse_api_duration
from bot.core.errors import UserFacingError
from bot.core.names import (
    AcceleratorNameError,
    ModelNameError,
    PrecisionNameError,
    RegionNameError,
    accelerator_label,
    resolve_accelerator,
    resolve_model,
    resolve_precision,
    resolve_region,
    resource_id_problem,
    short_model,
)
from bot.core.schedules import Schedule

# API defaults (contract §2.2, §2.3), used to show "before" values the wire object leaves out.
DEFAULT_SCALE_UP_WINDOW_S = 30.0
DEFAULT_SCALE_DOWN_WINDOW_S = 600.0
DEFAULT_SCALE_TO_ZERO_WINDOW_S = 3600.0
DEFAULT_LOAD_TARGETS: dict[str, float] = {"default": 0.8}
# Bot policy (SPEC §5): delete a deployment unused this long, unless told otherwise.
DEFAULT_UNUSED_AUTO_DELETE_S = 168 * 3600.0
DISPLAY_NAME_LIMIT = 64  # the API wants fewer than 64 characters
# Fireworks documents no limit for a deployment's description; fwbot holds it to the one it
# documents for model and shape descriptions: fewer than 1000 characters (contract §1).
DESCRIPTION_LIMIT = 1000
INT32_MAX = 2**31 - 1
# Speculative-decoding settings (flag names), which --disable-speculative-decoding contradicts.
_SPECULATION_FLAGS: dict[str, str] = {
    "draft_model": "draft-model",
    "draft_token_count": "draft-token-count",
    "ngram_speculation_length": "ngram-speculation-length",
    "enable_mtp": "enable-mtp",
}

# Deployment-shape presets (the API's presetType, lowercased with dashes as users type them).
SHAPE_PRESETS: tuple[str, ...] = (
    "minimal",
    "fast",
    "throughput",
    "full-precision",
    "agentic-coding",
    "chat",
    "summarization",
)
_SHAPE_NAME_RE = re.compile(r"^accounts/[^/\s]+/deploymentShapes/[^/\s]+(/versions/[^/\s]+)?\Z")

# Load-target keys firectl documents; the API currently honours only "default".
LOAD_TARGET_KEYS: tuple[str, ...] = (
    "default",
    "tokens_generated_per_second",
    "prompt_tokens_per_second",
    "requests_per_second",
    "concurrent_requests",
)


class SpecError(UserFacingError, ValueError):
    """A rule a deployment request breaks; ``flag`` names the ``/fw`` flag to blame, if one."""

    def __init__(self, message: str, flag: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag


def spec_error_of(exc: ValidationError) -> SpecError:
    """The first problem of a pydantic ``ValidationError`` as a :class:`SpecError` for a user."""
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            return cause
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return SpecError(f"{where}: {err.get('msg', 'invalid value')}" if where else str(err.get("msg")))


def normalize_shape(text: str) -> str:
    """A preset (``fast``, ``FULL_PRECISION`` → ``full-precision``) or a full shape name, checked."""
    s = text.strip()
    preset = s.lower().replace("_", "-")
    if preset in SHAPE_PRESETS:
        return preset
    if _SHAPE_NAME_RE.match(s):
        return s
    raise SpecError(
        f"`--deployment-shape` `{text}` is neither a preset ({', '.join(SHAPE_PRESETS)}) nor a shape "
        "name like `accounts/fireworks/deploymentShapes/<shape>`",
        "deployment-shape",
    )


def is_shape_preset(shape: str | None) -> bool:
    """Whether ``shape`` is a preset still to be resolved through ``deploymentShapeVersions:match``."""
    return shape in SHAPE_PRESETS


def preset_type(preset: str) -> str:
    """The API ``presetType`` of a preset: ``full-precision`` → ``FULL_PRECISION``."""
    return preset.upper().replace("-", "_")


def _short_shape(shape: str) -> str:
    if is_shape_preset(shape):
        return f"{shape} (preset)"
    parts = shape.split("/")
    return parts[3] if len(parts) >= 4 else shape


def _check_counts_and_windows(values: Mapping[str, Any]) -> None:
    for field, flag in (("min_replica_count", "min-replica-count"), ("max_replica_count", "max-replica-count")):
        v = values.get(field)
        if v is not None and v < 0:
            raise SpecError(f"`--{flag}` can't be negative (got {v})", flag)
    count = values.get("accelerator_count")
    if count is not None and count < 1:
        raise SpecError(f"`--accelerator-count` must be at least 1 (got {count})", "accelerator-count")
    for field, flag in _WINDOW_FLAGS.items():
        v = values.get(field)
        if v is not None and (v < 0 or not math.isfinite(v)):
            raise SpecError(f"`--{flag}` can't be negative", flag)
    name = values.get("display_name")
    if name is not None and len(name) >= DISPLAY_NAME_LIMIT:
        raise SpecError(
            f"`--display-name` is {len(name)} characters long; it must be under {DISPLAY_NAME_LIMIT}",
            "display-name",
        )
    description = values.get("description")
    if description is not None and len(description) >= DESCRIPTION_LIMIT:
        raise SpecError(
            f"`--description` is {len(description)} characters long; it must be under {DESCRIPTION_LIMIT}",
            "description",
        )
    _check_serving(values)
    targets = values.get("load_targets")
    if targets is not None:
        if not targets:
            raise SpecError("`--load-targets` is empty; give KEY=VALUE pairs such as `default=0.8`", "load-targets")
        for key, v in targets.items():
            if key not in LOAD_TARGET_KEYS:
                raise SpecError(
                    f"`--load-targets` key `{key}` is unknown; use {', '.join(LOAD_TARGET_KEYS)}", "load-targets"
                )
            if not (math.isfinite(v) and v > 0):
                raise SpecError(f"`--load-targets` value for `{key}` must be a positive number", "load-targets")
    shape = values.get("deployment_shape")
    if shape is not None:
        normalize_shape(shape)
        if values.get("accelerator_type") is not None or values.get("accelerator_count") is not None:
            # Fireworks rejects an explicit accelerator on the shape path; the shape decides it.
            raise SpecError(
                "`--deployment-shape` already decides the accelerator; drop `--accelerator-type` and "
                "`--accelerator-count`, or drop the shape",
                "deployment-shape",
            )
        if values.get("precision") is not None:
            # A validated shape is hardware and precision together; Fireworks refuses another one.
            raise SpecError(
                f"`--deployment-shape` already decides the precision; drop `--precision {values['precision']}`, "
                "or drop the shape (and give `--accelerator-type`)",
                "precision",
            )
    lo, hi = values.get("min_replica_count"), values.get("max_replica_count")
    if lo is not None and hi is not None and lo > hi:
        raise SpecError(
            f"`--min-replica-count` ({lo}) is greater than `--max-replica-count` ({hi})", "min-replica-count"
        )


def _check_serving(values: Mapping[str, Any]) -> None:
    """The serving settings' ranges and the combinations Fireworks refuses (speculative decoding
    either from a draft model or from n-grams; none of it with ``--disable-speculative-decoding``)."""
    for field, flag, least in (("max_context_length", "max-context-length", 0),
                               ("draft_token_count", "draft-token-count", 1),
                               ("ngram_speculation_length", "ngram-speculation-length", 1)):
        v = values.get(field)
        if v is not None and not least <= v <= INT32_MAX:
            allowed = "0 (the model's default) or more" if least == 0 else "at least 1"
            raise SpecError(f"`--{flag}` must be {allowed} and at most {INT32_MAX} (got {v})", flag)
    if values.get("draft_model") and values.get("ngram_speculation_length"):
        raise SpecError(
            "`--draft-model` and `--ngram-speculation-length` cannot be used together: speculative decoding "
            "takes its guesses from a draft model or from n-grams of the prompt, not both",
            "ngram-speculation-length",
        )
    if values.get("disable_speculative_decoding"):
        given = [f"`--{flag}`" for field, flag in _SPECULATION_FLAGS.items() if values.get(field)]
        if given:
            raise SpecError(
                f"`--disable-speculative-decoding` turns speculative decoding off, so it cannot go with "
                f"{' or '.join(given)}; drop one or the other",
                "disable-speculative-decoding",
            )


def format_context_length(tokens: int | None) -> str:
    """``32,768 tokens``; 0 or unset is the model's own maximum."""
    return f"{tokens:,} tokens" if tokens else "the model's default"


def format_placement(region: str | None) -> str:
    """Where a deployment may run, and what that does to its price (contract §4)."""
    if region:
        return f"`{region}` only — single-region placement ×1.5"
    return "global (Fireworks' default, multi-region)"


def format_speculation(draft_model: str | None, draft_token_count: int | None, ngram_length: int | None,
                       mtp: bool | None, *, disabled: bool = False, requested: bool = False) -> str:
    """Speculative decoding in words: ``draft model `x`, 4 tokens per step``, ``off``, …

    ``requested``: these are the settings asked for, not a deployment's, so tokens per step
    alone go with the model's default draft model (Fireworks fills it in on create)."""
    if disabled:
        return "off (`--disable-speculative-decoding`)"
    parts = []
    tokens = f", {draft_token_count} tokens per step" if draft_token_count else ""
    if draft_model:
        parts.append(f"draft model `{short_model(draft_model)}`{tokens}")
    elif ngram_length:
        parts.append(f"n-gram, length {ngram_length}{tokens}")
    elif draft_token_count and requested:
        parts.append(f"the model's default draft model, if it has one{tokens}")
    if mtp:
        parts.append("multi-token prediction (MTP)")
    return "; ".join(parts) if parts else "off"


_WINDOW_FLAGS: dict[str, str] = {
    "scale_up_window_s": "scale-up-window",
    "scale_down_window_s": "scale-down-window",
    "scale_to_zero_window_s": "scale-to-zero-window",
    "unused_auto_delete_s": "unused-auto-delete-duration",
}

# snake_case field → (label, camelCase wire key or autoscalingPolicy key, update-mask path).
_WIRE: dict[str, tuple[str, str, str | None]] = {
    "display_name": ("Display name", "displayName", "display_name"),
    "deployment_shape": ("Shape", "deploymentShape", "deployment_shape"),
    "min_replica_count": ("Min replicas", "minReplicaCount", "min_replica_count"),
    "max_replica_count": ("Max replicas", "maxReplicaCount", "max_replica_count"),
    "accelerator_type": ("Accelerator", "acceleratorType", "accelerator_type"),
    "accelerator_count": ("Accelerators per replica", "acceleratorCount", "accelerator_count"),
    "scale_up_window_s": ("Scale-up window", "scaleUpWindow", "autoscaling_policy.scale_up_window"),
    "scale_down_window_s": ("Scale-down window", "scaleDownWindow", "autoscaling_policy.scale_down_window"),
    "scale_to_zero_window_s": (
        "Scale-to-zero window",
        "scaleToZeroWindow",
        "autoscaling_policy.scale_to_zero_window",
    ),
    "load_targets": ("Load targets", "loadTargets", "autoscaling_policy.load_targets"),
    "enable_addons": ("LoRA addons", "enableAddons", "enable_addons"),
    "description": ("Description", "description", "description"),
    "precision": ("Precision", "precision", "precision"),
    "max_context_length": ("Context length", "maxContextLength", "max_context_length"),
    "long_prompt": ("Long-prompt tuning", "longPrompt", "auto_tune.long_prompt"),
    "draft_model": ("Draft model", "draftModel", "draft_model"),
    "draft_token_count": ("Draft tokens per step", "draftTokenCount", "draft_token_count"),
    "ngram_speculation_length": ("N-gram speculation length", "ngramSpeculationLength", "ngram_speculation_length"),
    "enable_mtp": ("Multi-token prediction", "enableMtp", "enable_mtp"),
    "enable_session_affinity": ("Session affinity", "enableSessionAffinity", "enable_session_affinity"),
    # Bot policy, kept in SQLite: never sent to the API.
    "unused_auto_delete_s": ("Auto-delete when unused", "", None),
}
_POLICY_FIELDS = {"scale_up_window_s", "scale_down_window_s", "scale_to_zero_window_s", "load_targets"}
# Fields that live inside an object of the wire deployment, by the object's key.
_PARENT: dict[str, str] = {**{f: "autoscalingPolicy" for f in _POLICY_FIELDS}, "long_prompt": "autoTune"}
_POLICY_DEFAULTS: dict[str, Any] = {
    "scaleUpWindow": DEFAULT_SCALE_UP_WINDOW_S,
    "scaleDownWindow": DEFAULT_SCALE_DOWN_WINDOW_S,
    "scaleToZeroWindow": DEFAULT_SCALE_TO_ZERO_WINDOW_S,
    "loadTargets": DEFAULT_LOAD_TARGETS,
}


def format_load_targets(targets: Mapping[str, float] | None) -> str:
    """``default=0.8,requests_per_second=5`` — the same form ``--load-targets`` takes."""
    if not targets:
        return "—"
    return ",".join(f"{k}={v:g}" for k, v in targets.items())


def format_unused_auto_delete(seconds: float | None) -> str:
    """The bot's auto-delete policy in words: ``after 7d (default)``, ``after 2d``, ``off``."""
    if seconds is None:
        return f"after {humanize(DEFAULT_UNUSED_AUTO_DELETE_S)} (default)"
    if seconds == 0:
        return "off"
    return f"after {humanize(seconds)}"


def format_accelerators(accelerator_type: str | None, accelerator_count: int | None) -> str:
    """``2 × H100``; missing parts say who decides them."""
    if accelerator_type is None and accelerator_count is None:
        return "chosen by Fireworks"
    label = accelerator_label(accelerator_type) if accelerator_type else "GPU (type chosen by Fireworks)"
    if accelerator_count is None:
        return f"{label} (count chosen by Fireworks)"
    return f"{accelerator_count} × {label}"


def format_replicas(lo: int, hi: int) -> str:
    """``1–2``, ``2``, ``0–1 (scales to zero)``."""
    text = str(lo) if lo == hi else f"{lo}–{hi}"
    return f"{text} (scales to zero)" if lo == 0 and hi > 0 else text


def no_replicas_problem(deployment_id: str | None = None) -> str:
    """Why ``--max-replica-count 0`` is refused: Fireworks takes it and shows the deployment
    READY, but it may never start a replica, so it can never answer a request."""
    it = f"`{deployment_id}`" if deployment_id else "the deployment"
    text = (f"`--max-replica-count 0` allows no replica at all: {it} would show READY but could never "
            "serve a request. Use 1 or more; with `--min-replica-count 0` it scales to zero (and costs "
            "nothing) while idle.")
    if deployment_id:
        text += f" To stop it now, `/fw scale {deployment_id} 0` or `/fw delete {deployment_id}`."
    return text


# Fields holding a name the API spells one way: its resolver, the error it raises, the flag to
# blame and how the message starts.
_NAMED_FIELDS: dict[str, tuple[Any, type[Exception], str, str]] = {
    "accelerator_type": (resolve_accelerator, AcceleratorNameError, "accelerator-type", ""),
    "precision": (resolve_precision, PrecisionNameError, "precision", "`--precision` "),
    "region": (resolve_region, RegionNameError, "region", "`--region` "),
    "draft_model": (resolve_model, ModelNameError, "draft-model", "`--draft-model`: "),
}


class _Request(BaseModel):
    """Fields shared by a new deployment and an update of one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("deployment_shape", mode="before", check_fields=False)
    @classmethod
    def _shape(cls, v: Any) -> Any:
        return normalize_shape(v) if isinstance(v, str) else v

    @field_validator("accelerator_type", "precision", "region", "draft_model", mode="before", check_fields=False)
    @classmethod
    def _named(cls, v: Any, info: ValidationInfo) -> Any:
        """Names a person types (``h100``, ``fp8``, ``us-iowa-1``, a short model id) as the API
        spells them; one that cannot be is refused naming its flag."""
        if not isinstance(v, str):
            return v
        resolve, error, flag, prefix = _NAMED_FIELDS[info.field_name or ""]
        try:
            return resolve(v)
        except error as e:
            raise SpecError(f"{prefix}{e}", flag) from None

    @model_validator(mode="after")
    def _rules(self) -> _Request:
        _check_counts_and_windows({name: getattr(self, name) for name in type(self).model_fields})
        return self


class DeploymentSpec(_Request):
    """A deployment to create: what ``/fw deploy`` or the deploy modal asks for."""

    base_model: str
    deployment_id: str | None = None
    display_name: str | None = None
    deployment_shape: str | None = None
    min_replica_count: int = 0
    max_replica_count: int = 1
    accelerator_type: str | None = None
    accelerator_count: int | None = None
    scale_up_window_s: float | None = None
    scale_down_window_s: float | None = None
    scale_to_zero_window_s: float | None = None
    unused_auto_delete_s: float | None = None
    load_targets: dict[str, float] | None = None
    enable_addons: bool = False
    description: str | None = None
    precision: str | None = None
    region: str | None = None
    long_prompt: bool = False
    max_context_length: int | None = None
    draft_model: str | None = None
    draft_token_count: int | None = None
    ngram_speculation_length: int | None = None
    disable_speculative_decoding: bool = False
    enable_mtp: bool = False
    enable_session_affinity: bool = False

    @model_validator(mode="after")
    def _draft_tokens(self) -> DeploymentSpec:
        # Fireworks' speculative-decoding guide: the tokens per step are required with either kind.
        if (self.draft_model or self.ngram_speculation_length) and not self.draft_token_count:
            used = "`--draft-model`" if self.draft_model else "`--ngram-speculation-length`"
            raise SpecError(f"`--draft-token-count N` is required with {used}: how many tokens to guess per "
                            "step (typically 4)", "draft-token-count")
        return self

    @field_validator("deployment_id")
    @classmethod
    def _deployment_id(cls, v: str | None) -> str | None:
        if v is not None:
            problem = resource_id_problem(v, "deployment id")
            if problem:
                raise SpecError(problem, "deployment-id")
        return v

    @field_validator("base_model")
    @classmethod
    def _base_model(cls, v: str) -> str:
        parts = v.split("/")
        if len(parts) != 4 or parts[0] != "accounts" or parts[2] != "models":
            raise SpecError(f"model `{v}` must be a full name `accounts/<account>/models/<model>`", "model")
        return v

    def problem(self) -> SpecError | None:
        """A request that is well formed but could never work, to refuse before creating it:
        ``--max-replica-count 0``. Not a validator rule, so a request stored before the rule
        (an approval waiting in SQLite) still loads and can be decided; ``/fw deploy`` asks this
        first (the deploy form's max replicas cannot go below 1)."""
        if self.max_replica_count == 0:
            return SpecError(no_replicas_problem(), "max-replica-count")
        return None

    @property
    def single_region(self) -> bool:
        """Whether it is pinned to one region, which Fireworks bills at 1.5× (contract §4)."""
        return self.region is not None

    @property
    def shape_preset(self) -> str | None:
        """The preset to resolve before creating, or ``None`` when the shape is explicit or absent."""
        return self.deployment_shape if is_shape_preset(self.deployment_shape) else None

    @property
    def unused_auto_delete_effective_s(self) -> float | None:
        """Seconds of disuse before the bot deletes this deployment; ``None`` means never."""
        if self.unused_auto_delete_s is None:
            return DEFAULT_UNUSED_AUTO_DELETE_S
        return self.unused_auto_delete_s or None

    def autoscaling_policy(self) -> dict[str, Any]:
        """The SDK ``autoscaling_policy`` param: only the keys the user set, durations as ``"60s"``."""
        policy: dict[str, Any] = {}
        for field in ("scale_up_window_s", "scale_down_window_s", "scale_to_zero_window_s"):
            value = getattr(self, field)
            if value is not None:
                policy[field.removesuffix("_s")] = format_api_duration(value)
        if self.load_targets is not None:
            policy["load_targets"] = dict(self.load_targets)
        return policy

    def api_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``client.deployments.create`` (snake_case), only keys that are set.

        ``unused_auto_delete_s`` is bot policy and is not among them. A shape preset must be
        resolved to a shape name first (``spec.model_copy(update={"deployment_shape": name})``).
        """
        if self.shape_preset:
            raise ValueError(f"shape preset {self.shape_preset!r} must be resolved to a shape name first")
        fields: dict[str, Any] = {
            "base_model": self.base_model,
            "min_replica_count": self.min_replica_count,
            "max_replica_count": self.max_replica_count,
        }
        optional = {
            "deployment_id": self.deployment_id,
            "display_name": self.display_name,
            "description": self.description,
            "deployment_shape": self.deployment_shape,
            "accelerator_type": self.accelerator_type,
            "accelerator_count": self.accelerator_count,
            "precision": self.precision,
            "max_context_length": self.max_context_length,
            "draft_model": self.draft_model,
            "draft_token_count": self.draft_token_count,
            "ngram_speculation_length": self.ngram_speculation_length,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        if self.region:
            fields["placement"] = {"region": self.region}
        if self.long_prompt:
            fields["auto_tune"] = {"long_prompt": True}
        # disable_speculative_decoding is a query parameter of the create; the SDK sends it so.
        for flag in ("enable_addons", "disable_speculative_decoding", "enable_mtp", "enable_session_affinity"):
            if getattr(self, flag):
                fields[flag] = True
        policy = self.autoscaling_policy()
        if policy:
            fields["autoscaling_policy"] = policy
        return fields

    def describe(self) -> list[tuple[str, str]]:
        """Label/value pairs to show the request to people (confirmations, approvals, dry runs)."""
        rows: list[tuple[str, str]] = [("Model", short_model(self.base_model))]
        rows.append(("Deployment id", self.deployment_id or "generated by Fireworks"))
        if self.display_name:
            rows.append(("Display name", self.display_name))
        if self.deployment_shape:
            rows.append(("Shape", _short_shape(self.deployment_shape)))
            if self.accelerator_type or self.accelerator_count:
                rows.append(("Accelerator", format_accelerators(self.accelerator_type, self.accelerator_count)))
        else:
            rows.append(("Accelerator", format_accelerators(self.accelerator_type, self.accelerator_count)))
        rows.append(("Replicas", format_replicas(self.min_replica_count, self.max_replica_count)))
        if self.scale_up_window_s is not None:
            rows.append(("Scale-up window", humanize(self.scale_up_window_s)))
        if self.scale_down_window_s is not None:
            rows.append(("Scale-down window", humanize(self.scale_down_window_s)))
        if self.scale_to_zero_window_s is not None:
            rows.append(("Scale-to-zero window", humanize(self.scale_to_zero_window_s)))
        elif self.min_replica_count == 0:
            rows.append(("Scale-to-zero window", f"{humanize(DEFAULT_SCALE_TO_ZERO_WINDOW_S)} (default)"))
        if self.load_targets is not None:
            rows.append(("Load targets", format_load_targets(self.load_targets)))
        if self.enable_addons:
            rows.append(("LoRA addons", "enabled"))
        if self.description:
            rows.append(("Description", self.description))
        if self.precision:
            rows.append(("Precision", self.precision))
        if self.region:
            rows.append(("Placement", format_placement(self.region)))
        if self.max_context_length is not None:
            rows.append(("Context length", format_context_length(self.max_context_length)))
        if self.long_prompt:
            rows.append(("Long-prompt tuning", "on"))
        if (self.disable_speculative_decoding or self.draft_model or self.draft_token_count
                or self.ngram_speculation_length or self.enable_mtp):
            rows.append(("Speculative decoding", format_speculation(
                self.draft_model, self.draft_token_count, self.ngram_speculation_length, self.enable_mtp,
                disabled=self.disable_speculative_decoding, requested=True)))
        if self.enable_session_affinity:
            rows.append(("Session affinity", "on (sticky routing by `user`)"))
        rows.append(("Auto-delete when unused", format_unused_auto_delete(self.unused_auto_delete_s)))
        return rows


class DeploymentChange(_Request):
    """The fields ``/fw update`` sets; everything not given stays as it is."""

    display_name: str | None = None
    deployment_shape: str | None = None
    min_replica_count: int | None = None
    max_replica_count: int | None = None
    accelerator_type: str | None = None
    accelerator_count: int | None = None
    scale_up_window_s: float | None = None
    scale_down_window_s: float | None = None
    scale_to_zero_window_s: float | None = None
    unused_auto_delete_s: float | None = None
    load_targets: dict[str, float] | None = None
    enable_addons: bool | None = None
    description: str | None = None
    precision: str | None = None
    long_prompt: bool | None = None
    max_context_length: int | None = None
    draft_model: str | None = None
    draft_token_count: int | None = None
    ngram_speculation_length: int | None = None
    enable_mtp: bool | None = None
    enable_session_affinity: bool | None = None
    # The hardware a new ``deployment_shape`` brings, read from Fireworks when the shape is
    # resolved (``with_shape``). Never sent: on the shape path Fireworks sets the accelerator
    # itself. Kept in the change so everything that prices it (the command, the approval gate,
    # the re-check before an approved run) prices the new hardware, not the old.
    shape_accelerator_type: str | None = None
    shape_accelerator_count: int | None = None

    @model_validator(mode="after")
    def _shape_hardware(self) -> DeploymentChange:
        if (self.shape_accelerator_type is not None or self.shape_accelerator_count is not None) \
                and self.deployment_shape is None:
            raise SpecError("a shape's hardware was given without `--deployment-shape`", "deployment-shape")
        if self.shape_accelerator_count is not None and self.shape_accelerator_count < 1:
            raise SpecError("a shape has at least one accelerator per replica", "deployment-shape")
        return self

    def with_shape(self, shape_name: str, accelerator_type: str | None,
                   accelerator_count: int | None) -> DeploymentChange:
        """This change with its shape resolved: the shape's full name and the hardware it brings."""
        return self.model_copy(update={
            "deployment_shape": shape_name,
            "shape_accelerator_type": accelerator_type,
            "shape_accelerator_count": int(accelerator_count) if accelerator_count else None,
        })

    @property
    def shape_hardware_known(self) -> bool:
        """Whether this change's new shape (if any) has been resolved to its accelerator type."""
        return self.deployment_shape is None or self.shape_accelerator_type is not None

    @property
    def fields_set(self) -> frozenset[str]:
        """Names of the fields this change sets (given explicitly and not ``None``)."""
        return frozenset(f for f in self.model_fields_set if getattr(self, f) is not None)

    def _ordered(self) -> list[str]:
        return [f for f in _WIRE if f in self.fields_set]

    @property
    def api_fields_set(self) -> frozenset[str]:
        """The set fields that go to the API (everything but bot policy)."""
        return frozenset(f for f in self.fields_set if f in _WIRE and _WIRE[f][2] is not None)

    def update_mask(self) -> str:
        """The PATCH ``updateMask``: comma-separated snake_case paths, in a stable order."""
        return ",".join(str(_WIRE[f][2]) for f in self._ordered() if _WIRE[f][2] is not None)

    def _wire_value(self, field: str) -> Any:
        value = getattr(self, field)
        if field in ("scale_up_window_s", "scale_down_window_s", "scale_to_zero_window_s"):
            return format_api_duration(value)
        if field == "load_targets":
            return dict(value)
        return value

    def _apply(self, current: Mapping[str, Any]) -> dict[str, Any]:
        after = copy.deepcopy(dict(current))
        for field in self._ordered():
            _, key, path = _WIRE[field]
            if path is None:
                continue
            if field in _PARENT:
                parent = dict(after.get(_PARENT[field]) or {})
                parent[key] = self._wire_value(field)
                after[_PARENT[field]] = parent
            else:
                after[key] = self._wire_value(field)
        if self.deployment_shape is not None and self.deployment_shape != current.get("deploymentShape"):
            # A new shape brings its own hardware: the shape's when it was resolved, otherwise
            # unknown (priced as unknown, never as the old hardware).
            after["acceleratorType"] = self.shape_accelerator_type
            after["acceleratorCount"] = self.shape_accelerator_count
        return after

    def apply_to(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """The camelCase wire deployment as it will look after this change (``current`` untouched).

        A shape preset must be resolved to a shape name first, as for ``DeploymentSpec.api_fields``.
        A new shape's hardware is the one ``with_shape`` gave; without it the accelerator after
        the change is unknown (``None``), so its worst case prices as unknown, not as the old one.
        """
        if is_shape_preset(self.deployment_shape):
            raise ValueError(f"shape preset {self.deployment_shape!r} must be resolved to a shape name first")
        return self._apply(current)

    def problem_with(self, current: Mapping[str, Any]) -> str | None:
        """A rule the change breaks only in combination with the current deployment, if any.

        E.g. ``--min-replica-count 3`` alone on a deployment whose max is 2.
        """
        after = self._apply(current)
        lo = int(after.get("minReplicaCount") or 0)
        raw_hi = after.get("maxReplicaCount")
        hi = int(raw_hi) if raw_hi is not None else max(lo, 1)
        if lo > hi:
            lo_src = "`--min-replica-count`" if self.min_replica_count is not None else "current min replicas"
            hi_src = "`--max-replica-count`" if self.max_replica_count is not None else "current max replicas"
            return f"{lo_src} ({lo}) is greater than {hi_src} ({hi})"
        if self.max_replica_count == 0:
            name = str(current.get("name") or "")
            return no_replicas_problem(name.rsplit("/", 1)[-1] or None)
        return self._serving_problem(current, after)

    def _serving_problem(self, current: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
        """Serving settings that cannot go with what the deployment already has."""
        shape = current.get("deploymentShape")
        if (self.precision is not None and self.deployment_shape is None and shape
                and self.precision != current.get("precision")):
            return (f"`--precision` cannot change a deployment on a validated shape (`{_short_shape(str(shape))}` "
                    f"decides its precision, {current.get('precision') or 'unknown'}); pick another shape with "
                    "`--deployment-shape`, or create a deployment without one (`--accelerator-type … --precision …`)")
        draft, ngram = after.get("draftModel"), int(after.get("ngramSpeculationLength") or 0)
        if draft and ngram:
            if self.draft_model:
                return (f"`--draft-model` cannot go with the n-gram speculation it has (length {ngram}): speculative "
                        "decoding takes its guesses from a draft model or from n-grams, not both")
            return (f"`--ngram-speculation-length` cannot go with the draft model it has (`{short_model(str(draft))}`): "
                    "speculative decoding takes its guesses from a draft model or from n-grams, not both")
        if (draft or ngram) and not int(after.get("draftTokenCount") or 0):
            used = "`--draft-model`" if self.draft_model else "`--ngram-speculation-length`"
            return (f"`--draft-token-count N` is required with {used}: the deployment has no tokens per step set "
                    "(typically 4)")
        return None

    def diff(
        self, current: Mapping[str, Any], *, current_unused_auto_delete_s: float | None = None
    ) -> list[tuple[str, str, str]]:
        """``(label, before, after)`` for each field the change really alters, for confirmations.

        ``current`` is the camelCase wire deployment; ``current_unused_auto_delete_s`` is the bot's
        stored policy for it (``None`` = default).
        """
        after = self._apply(current)
        rows: list[tuple[str, str, str]] = []
        for field in self._ordered():
            label = _WIRE[field][0]
            if field == "unused_auto_delete_s":
                before_text = format_unused_auto_delete(current_unused_auto_delete_s)
                after_text = format_unused_auto_delete(self.unused_auto_delete_s)
            else:
                before_text = _show(field, current)
                after_text = _show(field, after)
            if before_text != after_text:
                rows.append((label, before_text, after_text))
        if self.deployment_shape is not None and self.shape_hardware_known:
            before_hw = _hardware(current)
            after_hw = _hardware(after)
            if before_hw != after_hw:
                rows.append(("Hardware per replica", before_hw, after_hw))
        return rows


def _hardware(wire: Mapping[str, Any]) -> str:
    """``2 × H100``: the accelerators per replica of a camelCase wire deployment."""
    kind = wire.get("acceleratorType")
    count = wire.get("acceleratorCount")
    if kind in (None, "", "ACCELERATOR_TYPE_UNSPECIFIED"):
        return "unknown"
    return format_accelerators(kind, int(count) if count else 1)


def _show(field: str, wire: Mapping[str, Any]) -> str:
    """One field of a camelCase wire deployment, formatted as ``describe`` does."""
    key = _WIRE[field][1]
    if field == "long_prompt":
        return "on" if (wire.get("autoTune") or {}).get(key) else "off"
    if field in _POLICY_FIELDS:
        raw = (wire.get("autoscalingPolicy") or {}).get(key)
        if field == "load_targets":
            return format_load_targets(raw if raw else DEFAULT_LOAD_TARGETS)
        seconds = parse_api_duration(raw) if raw else None
        return humanize(seconds if seconds is not None else _POLICY_DEFAULTS[key])
    value = wire.get(key)
    if field == "min_replica_count":
        return str(int(value or 0))
    if field == "max_replica_count":
        return str(int(value)) if value is not None else str(max(int(wire.get("minReplicaCount") or 0), 1))
    if field == "accelerator_type":
        return accelerator_label(value) if value and value != "ACCELERATOR_TYPE_UNSPECIFIED" else "—"
    if field == "deployment_shape":
        return _short_shape(value) if value else "—"
    if field == "enable_addons":
        return "enabled" if value else "disabled"
    if field in ("enable_mtp", "enable_session_affinity"):
        return "on" if value else "off"
    if field == "precision":
        return str(value) if value and value != "PRECISION_UNSPECIFIED" else "—"
    if field == "max_context_length":
        return format_context_length(int(value or 0))
    if field == "draft_model":
        return f"`{short_model(str(value))}`" if value else "none"
    if field in ("draft_token_count", "ngram_speculation_length"):
        return str(int(value)) if value else "—"
    if field == "description" and value and len(str(value)) > 80:
        return str(value)[:79] + "…"
    return "—" if value in (None, "") else str(value)


# --- parsed commands ---------------------------------------------------------------------------

ListScope = Literal["mine", "all"]
CostGrouping = Literal["owner", "channel", "deployment", "model"]
COST_GROUPINGS: tuple[str, ...] = ("owner", "channel", "deployment", "model")
DEFAULT_KEEP_S = 3600.0


@dataclass(frozen=True)
class CostPeriod:
    """``today``, ``week`` (since Monday), ``month`` (since the 1st), or an inclusive date range."""

    kind: Literal["today", "week", "month", "range"]
    date_from: date | None = None
    date_to: date | None = None

    def dates(self, today: date) -> tuple[date, date]:
        """The inclusive ``(first, last)`` days this period covers, given today's date."""
        if self.kind == "range":
            assert self.date_from is not None and self.date_to is not None
            return self.date_from, self.date_to
        if self.kind == "today":
            return today, today
        if self.kind == "week":
            return today - timedelta(days=today.weekday()), today
        return today.replace(day=1), today

    @property
    def label(self) -> str:
        """How to name the period in a reply."""
        if self.kind == "range":
            if self.date_from == self.date_to:
                return f"{self.date_from}"
            return f"{self.date_from} to {self.date_to}"
        return {"today": "today", "week": "this week", "month": "this month"}[self.kind]


@dataclass(frozen=True, kw_only=True)
class ParsedCommand:
    """A successfully parsed ``/fw`` command. ``verb`` tells which subclass it is."""

    verb: ClassVar[str] = ""
    changes: ClassVar[bool] = False  # whether it changes anything (and so takes --dry-run)
    raw: str = ""
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class DeployCommand(ParsedCommand):
    verb: ClassVar[str] = "deploy"
    changes: ClassVar[bool] = True
    spec: DeploymentSpec
    override: str | None = None  # an admin's reason to go ahead against the team policy


@dataclass(frozen=True, kw_only=True)
class DeployModalCommand(ParsedCommand):
    """``/fw deploy`` with no arguments: open the deploy modal."""

    verb: ClassVar[str] = "deploy_modal"


@dataclass(frozen=True, kw_only=True)
class ListCommand(ParsedCommand):
    """``/fw list``: ``filter`` (AIP-160) and ``order_by`` go to Fireworks as they are."""

    verb: ClassVar[str] = "list"
    scope: ListScope = "all"
    filter: str | None = None
    order_by: str | None = None
    show_deleted: bool = False


@dataclass(frozen=True, kw_only=True)
class GetCommand(ParsedCommand):
    verb: ClassVar[str] = "get"
    deployment_id: str


@dataclass(frozen=True, kw_only=True)
class UpdateCommand(ParsedCommand):
    verb: ClassVar[str] = "update"
    changes: ClassVar[bool] = True
    deployment_id: str
    change: DeploymentChange
    override: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScaleCommand(ParsedCommand):
    verb: ClassVar[str] = "scale"
    changes: ClassVar[bool] = True
    deployment_id: str
    replicas: int


@dataclass(frozen=True, kw_only=True)
class DeleteCommand(ParsedCommand):
    verb: ClassVar[str] = "delete"
    changes: ClassVar[bool] = True
    deployment_id: str
    hard: bool = False
    ignore_checks: bool = False  # firectl's --ignore-checks: delete even while it is in use


@dataclass(frozen=True, kw_only=True)
class UndeleteCommand(ParsedCommand):
    verb: ClassVar[str] = "undelete"
    changes: ClassVar[bool] = True
    deployment_id: str


@dataclass(frozen=True, kw_only=True)
class LoraCommand(ParsedCommand):
    verb: ClassVar[str] = "lora"
    changes: ClassVar[bool] = True
    action: Literal["load", "unload"]
    addon_model: str
    deployment_id: str | None = None  # unload without one: from serverless, as firectl does
    public: bool = False
    replace_merged_addon: bool = False


@dataclass(frozen=True, kw_only=True)
class KeepCommand(ParsedCommand):
    verb: ClassVar[str] = "keep"
    changes: ClassVar[bool] = True
    deployment_id: str
    duration_s: float = DEFAULT_KEEP_S


@dataclass(frozen=True, kw_only=True)
class ScheduleCommand(ParsedCommand):
    """``/fw schedule <id>``: show the schedule; with ``schedule`` set it, with ``clear`` remove it."""

    verb: ClassVar[str] = "schedule"
    changes: ClassVar[bool] = True
    deployment_id: str
    schedule: Schedule | None = None
    clear: bool = False


@dataclass(frozen=True, kw_only=True)
class OwnerCommand(ParsedCommand):
    verb: ClassVar[str] = "owner"
    changes: ClassVar[bool] = True
    deployment_id: str
    user_id: str


@dataclass(frozen=True, kw_only=True)
class AdoptCommand(ParsedCommand):
    verb: ClassVar[str] = "adopt"
    deployment_id: str


@dataclass(frozen=True, kw_only=True)
class CostCommand(ParsedCommand):
    verb: ClassVar[str] = "cost"
    period: CostPeriod = CostPeriod("month")
    by: CostGrouping = "deployment"


@dataclass(frozen=True, kw_only=True)
class BudgetCommand(ParsedCommand):
    verb: ClassVar[str] = "budget"
    channel_id: str
    usd_per_month: float


@dataclass(frozen=True, kw_only=True)
class AuditCommand(ParsedCommand):
    verb: ClassVar[str] = "audit"
    deployment_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelsCommand(ParsedCommand):
    verb: ClassVar[str] = "models"
    query: str | None = None


@dataclass(frozen=True, kw_only=True)
class QueryCommand(ParsedCommand):
    verb: ClassVar[str] = "query"
    deployment_id: str
    prompt: str


@dataclass(frozen=True, kw_only=True)
class PolicyCommand(ParsedCommand):
    verb: ClassVar[str] = "policy"
    target: tuple[str, str] | None = None  # ("channel", C…) or ("user", U…)


@dataclass(frozen=True, kw_only=True)
class QuotaCommand(ParsedCommand):
    verb: ClassVar[str] = "quota"
    user_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HelpCommand(ParsedCommand):
    verb: ClassVar[str] = "help"
    topic: str | None = None
