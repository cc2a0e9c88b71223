"""A deployment spec checked and completed: field types and defaults, placement, speculative
decoding, the autoscaling policy and its scaling schedules (400 INVALID_ARGUMENT on bad input)."""

from __future__ import annotations

import copy
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import catalog
from .records import Account
from .wire import check_range, fmt_duration, invalid, parse_duration, parse_ts, ts

DEFAULT_AUTOSCALING = {
    "scaleUpWindow": "30s",
    "scaleDownWindow": "600s",
    "scaleToZeroWindow": "3600s",
    "loadTargets": {"default": 0.8},
}
LOAD_TARGET_KEYS = {"default", "tokens_generated_per_second", "prompt_tokens_per_second",
                    "requests_per_second", "concurrent_requests"}
INT_FIELDS = ("minReplicaCount", "maxReplicaCount", "maxWithRevocableReplicaCount", "acceleratorCount",
              "draftTokenCount", "ngramSpeculationLength", "numPeftDeviceCached", "maxContextLength")
BOOL_FIELDS = ("enableAddons", "enableSessionAffinity", "disableDeploymentSizeValidation", "enableHotLoad",
               "enableHotReloadLatestAddon", "enableMtp")
STRING_FIELDS = ("displayName", "description", "baseModel", "draftModel", "deploymentTemplate",
                 "deploymentShape", "activeModelVersion", "targetModelVersion", "hotLoadBucketUrl",
                 "pricingPlanId", "hotLoadTrainerJob")
ENUM_FIELDS = {
    "acceleratorType": catalog.ACCELERATOR_TYPES,
    "precision": catalog.PRECISIONS,
    "directRouteType": catalog.DIRECT_ROUTE_TYPES,
    "hotLoadBucketType": catalog.BUCKET_TYPES,
}
# assumption: a deployment's description is held to the limit documented for model and shape
# descriptions (fewer than 1000 characters, contract §1).
DESCRIPTION_LIMIT = 1000


def as_int(value: Any, field_name: str, fmt: str = "int32") -> int:
    # protojson accepts int32 as a JSON number or a decimal string, and refuses one that overflows
    # the field's format (every integer a deployment request carries is int32 in the OpenAPI).
    if isinstance(value, bool):
        raise invalid(f"invalid value for {field_name}: {value!r}")
    if isinstance(value, int):
        return check_range(value, field_name, fmt)
    if isinstance(value, float) and value.is_integer():
        return check_range(int(value), field_name, fmt)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return check_range(int(value), field_name, fmt)
    raise invalid(f"invalid value for {field_name}: {value!r}")


def _check_schedules(schedules: Any) -> dict[str, dict[str, Any]]:
    """``autoscalingPolicy.scalingSchedules`` (contract §2.3): at most 5, each with a min replica
    count, a 5-field cron ``schedule``, a whole-second ``duration`` of 300s..604800s and an IANA
    ``timezone``; 400 otherwise. Stored and echoed; they do not drive the simulated replicas.
    """
    from datetime import UTC, datetime

    from cronsim import CronSim, CronSimError

    if not isinstance(schedules, dict) or not all(isinstance(v, dict) for v in schedules.values()):
        raise invalid("autoscaling_policy.scaling_schedules must map names to schedules")
    if len(schedules) > 5:
        raise invalid("autoscaling_policy.scaling_schedules holds at most 5 schedules")
    out: dict[str, dict[str, Any]] = {}
    for name, sched in schedules.items():
        where = f"scaling schedule {name!r}"
        raw_min = sched.get("minReplicaCount")
        minimum = 0 if raw_min is None else as_int(raw_min, f"{where}: min_replica_count")
        if minimum < 0:
            raise invalid(f"{where}: min_replica_count must not be negative")
        texts = {key: sched.get(key) for key in ("schedule", "duration", "timezone", "description")}
        if not all(v is None or isinstance(v, str) for v in texts.values()):
            raise invalid(f"{where}: schedule, duration, timezone and description must be strings")
        if not isinstance(sched.get("disabled", False), bool | None):
            raise invalid(f"{where}: disabled must be true or false")
        cron = texts["schedule"] or ""
        try:
            if len(cron.split()) != 5:
                raise CronSimError("not 5 fields")
            CronSim(cron, datetime(2026, 1, 1, tzinfo=UTC))  # parsed only
        except CronSimError:
            raise invalid(f"{where}: schedule {cron!r} is not a 5-field cron expression") from None
        duration = texts["duration"] or ""
        seconds = parse_duration(duration, f"{where}: duration")
        if seconds != int(seconds) or not 300 <= seconds <= 604800:
            raise invalid(f"{where}: duration must be whole seconds from 300s to 604800s")
        try:
            ZoneInfo(texts["timezone"] or "")
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid(f"{where}: timezone {texts['timezone']!r} is not an IANA time zone") from None
        out[name] = {"minReplicaCount": minimum, "schedule": cron, "duration": fmt_duration(seconds),
                     "timezone": texts["timezone"], "description": texts["description"] or "",
                     "disabled": bool(sched.get("disabled"))}
    return out


class ValidationMixin(Account):
    """Checks of a deployment spec (part of SimState)."""

    def _normalize(self, spec: dict[str, Any], explicit_max: bool) -> None:
        """Type-check, fill defaults and validate a complete spec in place (400 on bad input)."""
        for key in INT_FIELDS:
            spec[key] = as_int(spec.get(key, 0) if spec.get(key) is not None else 0, key)
            if spec[key] < 0:
                raise invalid(f"{key} must not be negative")
        for key in BOOL_FIELDS:
            value = spec.get(key)
            if value is None:
                spec[key] = False
            elif not isinstance(value, bool):
                raise invalid(f"invalid value for {key}: {value!r}")
        for key in STRING_FIELDS:
            value = spec.get(key)
            if value is None:
                spec[key] = ""
            elif not isinstance(value, str):
                raise invalid(f"invalid value for {key}: {value!r}")
        if spec.get("expireTime") is not None:
            # A Timestamp is an RFC3339 string; protojson refuses anything else, "" included.
            if not isinstance(spec["expireTime"], str):
                raise invalid(f"invalid value for expireTime: {spec['expireTime']!r}")
            spec["expireTime"] = ts(parse_ts(spec["expireTime"], "expire_time"))
        for key, allowed in ENUM_FIELDS.items():
            value = spec.get(key)
            value = allowed[0] if value is None or value == "" else value
            # assumption: enums are sent by name (protojson would also take an enum number).
            if not isinstance(value, str) or value not in allowed:
                raise invalid(f"invalid value for {key}: {value!r}; expected one of {', '.join(allowed)}")
            spec[key] = value
        if len(spec["displayName"]) >= 64:
            raise invalid("display_name must be fewer than 64 characters")
        if len(spec["description"]) >= DESCRIPTION_LIMIT:
            raise invalid(f"description must be fewer than {DESCRIPTION_LIMIT} characters")
        if not spec["baseModel"]:
            raise invalid("base_model is required")
        if self.resolve_base(spec["baseModel"]) is None:
            # assumption: an unknown base model is a bad argument (400), not a missing resource.
            raise invalid(f"base model {spec['baseModel']!r} not found")
        if not explicit_max:
            spec["maxReplicaCount"] = max(spec["minReplicaCount"], 1)
        if spec["minReplicaCount"] > spec["maxReplicaCount"]:
            # assumption: min > max is 400 INVALID_ARGUMENT.
            raise invalid("min_replica_count must be less than or equal to max_replica_count")
        # A field sent as null is unset (protojson); any other value must have the field's type.
        annotations = {} if spec.get("annotations") is None else spec["annotations"]
        if not isinstance(annotations, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
            raise invalid("annotations must map strings to strings")
        spec["annotations"] = annotations
        keys = [] if spec.get("directRouteApiKeys") is None else spec["directRouteApiKeys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise invalid("direct_route_api_keys must be a list of strings")
        spec["directRouteApiKeys"] = keys
        auto_tune = {} if spec.get("autoTune") is None else spec["autoTune"]
        if not isinstance(auto_tune, dict) or not isinstance(auto_tune.get("longPrompt", False), bool | None):
            raise invalid("auto_tune must be an object whose long_prompt is true or false")
        spec["autoTune"] = {"longPrompt": bool(auto_tune.get("longPrompt"))}
        spec["placement"] = self._check_placement(spec.get("placement"))
        spec["autoscalingPolicy"] = self._check_autoscaling(spec.get("autoscalingPolicy"))
        for name, sched in (spec["autoscalingPolicy"].get("scalingSchedules") or {}).items():
            if sched["minReplicaCount"] > spec["maxReplicaCount"]:
                raise invalid(f"scaling schedule {name!r}: min_replica_count must be less than or equal to "
                              "max_replica_count")

    @staticmethod
    def _check_placement(p: Any) -> dict[str, Any]:
        if p is None:
            return {"multiRegion": "GLOBAL"}
        if not isinstance(p, dict):
            raise invalid("placement must be an object")
        unset = (None, "", [], "REGION_UNSPECIFIED", "MULTI_REGION_UNSPECIFIED")
        set_keys = [k for k in ("region", "multiRegion", "regions") if p.get(k) not in unset]
        if not set_keys:
            return {"multiRegion": "GLOBAL"}
        if len(set_keys) != 1:
            raise invalid("placement: exactly one of region, multi_region or regions must be set")
        key = set_keys[0]
        if key == "multiRegion" and p[key] not in catalog.MULTI_REGIONS[1:]:
            raise invalid(f"invalid value for placement.multi_region: {p[key]!r}; expected one of "
                          f"{', '.join(catalog.MULTI_REGIONS[1:])}")
        if key == "regions" and not (isinstance(p[key], list) and all(isinstance(r, str) for r in p[key])):
            raise invalid("placement.regions must be a list of region names")
        # Enums are strings on the wire; protojson refuses a name the enum does not have.
        for region in (p[key] if key == "regions" else [p[key]] if key == "region" else []):
            if not isinstance(region, str) or region not in catalog.REGIONS[1:]:
                raise invalid(f"invalid value for placement.{'regions' if key == 'regions' else 'region'}: "
                              f"{region!r}; expected a Region such as US_IOWA_1, EU_FRANKFURT_1 or AP_TOKYO_1")
        return {key: p[key]}

    def _check_speculation(self, spec: dict[str, Any], *, creating: bool, disabled: bool = False) -> None:
        """Speculative decoding: a draft model or n-grams, never both; the tokens per step with
        either; none of it with disableSpeculativeDecoding (create only). On create, a deployment
        that sets none of it and does not disable it gets its base model's default draft model.

        # assumption: Fireworks' speculative-decoding guide says draft_model and
        # ngram_speculation_length "cannot be used together" and that draft_token_count is
        # "required when using draft model or n-gram"; both are refused with 400 INVALID_ARGUMENT,
        # as is an unknown draft model (like an unknown base model) and a disable that contradicts
        # the settings sent with it.
        """
        draft, ngram = spec["draftModel"], spec["ngramSpeculationLength"]
        if disabled and (draft or spec["draftTokenCount"] or ngram or spec["enableMtp"]):
            raise invalid("disable_speculative_decoding cannot be combined with draft_model, draft_token_count, "
                          "ngram_speculation_length or enable_mtp")
        if draft and ngram:
            raise invalid("draft_model and ngram_speculation_length cannot be used together")
        if draft and self.resolve_base(draft) is None:
            raise invalid(f"draft model {draft!r} not found")
        base = catalog.CATALOG_BY_NAME.get(spec["baseModel"])
        if creating and not disabled and base is not None and base.default_draft_model:
            if not draft and not ngram:
                spec["draftModel"] = draft = base.default_draft_model
            if draft == base.default_draft_model and not spec["draftTokenCount"]:
                spec["draftTokenCount"] = base.default_draft_token_count
        if (draft or ngram) and not spec["draftTokenCount"]:
            raise invalid("draft_token_count is required when draft_model or ngram_speculation_length is set")

    def _check_autoscaling(self, policy: Any) -> dict[str, Any]:
        if policy is None:
            policy = {}
        if not isinstance(policy, dict):
            raise invalid("autoscaling_policy must be an object")
        out = copy.deepcopy(DEFAULT_AUTOSCALING)
        for key in ("scaleUpWindow", "scaleDownWindow", "scaleToZeroWindow"):
            if policy.get(key) not in (None, ""):
                out[key] = policy[key]
        up = parse_duration(out["scaleUpWindow"], "autoscaling_policy.scale_up_window")
        down = parse_duration(out["scaleDownWindow"], "autoscaling_policy.scale_down_window")
        stz = parse_duration(out["scaleToZeroWindow"], "autoscaling_policy.scale_to_zero_window")
        if self.config.relaxed:
            # Relaxed mode (tests and demos): any window from 1 s, no upper bounds.
            if stz < 1:
                raise invalid("autoscaling_policy.scale_to_zero_window must be at least 1s (relaxed)")
        else:
            if stz < 300:
                raise invalid("autoscaling_policy.scale_to_zero_window must be at least 5 minutes")
            for name, value in (("scale_up_window", up), ("scale_down_window", down)):
                if value > 3600:
                    raise invalid(f"autoscaling_policy.{name} must be less than or equal to 1 hour")
        for key in ("scaleUpWindow", "scaleDownWindow", "scaleToZeroWindow"):
            out[key] = fmt_duration(parse_duration(out[key], key))
        targets = policy.get("loadTargets")
        if targets is not None:
            if not isinstance(targets, dict):
                raise invalid("autoscaling_policy.load_targets must be an object")
            for k, v in targets.items():
                if k not in LOAD_TARGET_KEYS:
                    raise invalid(f"unsupported load target {k!r}")
                if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                    raise invalid(f"load target {k!r} must be a positive number")
            out["loadTargets"] = dict(targets)
        if policy.get("scalingSchedules") is not None:
            out["scalingSchedules"] = _check_schedules(policy["scalingSchedules"])
        return out
