"""Request domain objects (bot/core/requests.py) and short names (bot/core/names.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.core.names import (
    ACCELERATOR_SHORT_NAMES,
    ACCELERATOR_TYPES,
    RESOURCE_ID_RE,
    AcceleratorNameError,
    ModelNameError,
    accelerator_label,
    resolve_accelerator,
    resolve_model,
    resource_id_problem,
    short_accelerator,
    short_model,
)
from bot.core.requests import (
    CostPeriod,
    DeploymentChange,
    DeploymentSpec,
    SpecError,
    format_accelerators,
    format_replicas,
    is_shape_preset,
    normalize_shape,
    preset_type,
    spec_error_of,
)

LLAMA = "accounts/fireworks/models/llama-v3p1-8b-instruct"


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("llama-v3p1-8b-instruct", LLAMA),
        (LLAMA, LLAMA),
        ("  llama-v3p1-8b-instruct ", LLAMA),
        ("acme/my-lora", "accounts/acme/models/my-lora"),
        ("accounts/acme/models/my-lora", "accounts/acme/models/my-lora"),
    ],
)
def test_resolve_model(text: str, full: str) -> None:
    assert resolve_model(text) == full


def test_resolve_model_default_account() -> None:
    assert resolve_model("my-lora", "acme") == "accounts/acme/models/my-lora"
    assert resolve_model("other/x", "acme") == "accounts/other/models/x"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("Llama-3", "uppercase"),
        ("a/b/c", "not a model name"),
        ("accounts/x/deployments/y", "not a model name"),
        ("llama_3", "may only contain"),
        ("3llama", "start with a letter"),
        ("acme/-x", "must start with a letter"),
        ("acme/x-", "must not end"),
        ("a" * 64, "63"),
    ],
)
def test_resolve_model_rejects(text: str, needle: str) -> None:
    with pytest.raises(ModelNameError) as e:
        resolve_model(text)
    assert needle in str(e.value)


_ids = st.from_regex(RESOURCE_ID_RE, fullmatch=True)


@given(_ids, _ids)
def test_short_model_round_trips(account: str, model: str) -> None:
    full = f"accounts/{account}/models/{model}"
    assert resolve_model(short_model(full)) == full
    assert resource_id_problem(model) is None


def test_short_model() -> None:
    assert short_model(LLAMA) == "llama-v3p1-8b-instruct"
    assert short_model("accounts/acme/models/x") == "acme/x"
    assert short_model("something-else") == "something-else"


@pytest.mark.parametrize(
    ("text", "enum"),
    [
        ("h100", "NVIDIA_H100_80GB"),
        ("H100", "NVIDIA_H100_80GB"),
        ("NVIDIA_H100_80GB", "NVIDIA_H100_80GB"),
        ("nvidia_h100_80gb", "NVIDIA_H100_80GB"),
        ("h200", "NVIDIA_H200_141GB"),
        ("b200", "NVIDIA_B200_180GB"),
        ("b300", "NVIDIA_B300_288GB"),
        ("a100", "NVIDIA_A100_80GB"),
        ("a100-80gb", "NVIDIA_A100_80GB"),
        ("A100_80GB", "NVIDIA_A100_80GB"),
        ("a100-40gb", "NVIDIA_A100_40GB"),
        ("l4", "NVIDIA_L4_24GB"),
        ("a10g", "NVIDIA_A10G_24GB"),
        ("mi300x", "AMD_MI300X_192GB"),
        ("MI325X", "AMD_MI325X_256GB"),
        ("mi350x", "AMD_MI350X_288GB"),
        (" h100 ", "NVIDIA_H100_80GB"),
    ],
)
def test_resolve_accelerator(text: str, enum: str) -> None:
    assert resolve_accelerator(text) == enum


def test_every_accelerator_round_trips() -> None:
    assert len(ACCELERATOR_TYPES) == len(ACCELERATOR_SHORT_NAMES)
    for enum, short in zip(ACCELERATOR_TYPES, ACCELERATOR_SHORT_NAMES, strict=True):
        assert resolve_accelerator(enum) == enum
        assert resolve_accelerator(enum.lower()) == enum
        assert resolve_accelerator(short) == enum
        assert short_accelerator(enum) == short
        assert accelerator_label(enum)


@pytest.mark.parametrize("text", ["h900", "", "a100-20gb", "NVIDIA_H100", "gpu"])
def test_resolve_accelerator_lists_valid_names(text: str) -> None:
    with pytest.raises(AcceleratorNameError) as e:
        resolve_accelerator(text)
    for short in ("h100", "h200", "b200", "a100-40gb", "mi300x"):
        assert short in str(e.value)


def test_accelerator_labels() -> None:
    assert accelerator_label("NVIDIA_H100_80GB") == "H100"
    assert accelerator_label("NVIDIA_A100_40GB") == "A100 40GB"
    assert accelerator_label("NVIDIA_X") == "NVIDIA_X"
    assert accelerator_label(None) == "unspecified"
    assert short_accelerator("NVIDIA_X") == "nvidia_x"


# --- DeploymentSpec -------------------------------------------------------------------------


def test_minimal_spec_api_fields() -> None:
    spec = DeploymentSpec(base_model=LLAMA)
    assert spec.api_fields() == {"base_model": LLAMA, "min_replica_count": 0, "max_replica_count": 1}


def test_full_spec_api_fields() -> None:
    spec = DeploymentSpec(
        base_model=LLAMA,
        deployment_id="my-llama",
        display_name="My llama",
        min_replica_count=1,
        max_replica_count=3,
        accelerator_type="h100",
        accelerator_count=2,
        scale_up_window_s=60,
        scale_down_window_s=900,
        scale_to_zero_window_s=1800.5,
        unused_auto_delete_s=0,
        load_targets={"default": 0.7},
        enable_addons=True,
    )
    assert spec.accelerator_type == "NVIDIA_H100_80GB"
    assert spec.api_fields() == {
        "base_model": LLAMA,
        "deployment_id": "my-llama",
        "display_name": "My llama",
        "min_replica_count": 1,
        "max_replica_count": 3,
        "accelerator_type": "NVIDIA_H100_80GB",
        "accelerator_count": 2,
        "enable_addons": True,
        "autoscaling_policy": {
            "scale_up_window": "60s",
            "scale_down_window": "900s",
            "scale_to_zero_window": "1800.5s",
            "load_targets": {"default": 0.7},
        },
    }
    assert spec.unused_auto_delete_effective_s is None


def test_shape_presets_must_be_resolved_before_the_api() -> None:
    spec = DeploymentSpec(base_model=LLAMA, deployment_shape="FAST")
    assert spec.deployment_shape == "fast"
    assert spec.shape_preset == "fast"
    with pytest.raises(ValueError, match="resolved"):
        spec.api_fields()
    name = "accounts/fireworks/deploymentShapes/llama-8b-fast/versions/abc"
    resolved = spec.model_copy(update={"deployment_shape": name})
    assert resolved.shape_preset is None
    assert resolved.api_fields()["deployment_shape"] == name


def test_shape_helpers() -> None:
    assert normalize_shape("full_precision") == "full-precision"
    assert preset_type("full-precision") == "FULL_PRECISION"
    assert is_shape_preset("throughput") and not is_shape_preset(None)
    with pytest.raises(SpecError, match="neither a preset"):
        normalize_shape("my-shape")


def _problem(**kwargs: object) -> SpecError:
    with pytest.raises(ValidationError) as e:
        DeploymentSpec(base_model=LLAMA, **kwargs)
    return spec_error_of(e.value)


@pytest.mark.parametrize(
    ("kwargs", "flag", "needle"),
    [
        ({"min_replica_count": 3, "max_replica_count": 1}, "min-replica-count", "(3) is greater than"),
        ({"min_replica_count": -1}, "min-replica-count", "negative"),
        ({"max_replica_count": -1}, "max-replica-count", "negative"),
        ({"accelerator_count": 0}, "accelerator-count", "at least 1"),
        ({"scale_to_zero_window_s": -5}, "scale-to-zero-window", "negative"),
        ({"display_name": "x" * 64}, "display-name", "under 64"),
        ({"deployment_id": "My-Llama"}, "deployment-id", "uppercase"),
        ({"deployment_id": "9lives"}, "deployment-id", "start with a letter"),
        ({"accelerator_type": "h900"}, "accelerator-type", "h100"),
        ({"load_targets": {"bogus": 1.0}}, "load-targets", "unknown"),
        ({"load_targets": {"default": 0.0}}, "load-targets", "positive"),
        ({"load_targets": {}}, "load-targets", "empty"),
        ({"deployment_shape": "fast", "accelerator_type": "h100"}, "deployment-shape", "decides the accelerator"),
    ],
)
def test_spec_rules(kwargs: dict, flag: str, needle: str) -> None:
    err = _problem(**kwargs)
    assert err.flag == flag
    assert needle in err.message


def test_spec_min_greater_than_max_names_both_flags() -> None:
    err = _problem(min_replica_count=3, max_replica_count=1)
    assert err.message == "`--min-replica-count` (3) is greater than `--max-replica-count` (1)"


def test_spec_wants_full_model_name_and_is_frozen() -> None:
    assert _problem_model("llama").flag == "model"
    spec = DeploymentSpec(base_model=LLAMA)
    with pytest.raises(ValidationError):
        spec.min_replica_count = 2  # type: ignore[misc]


def _problem_model(model: str) -> SpecError:
    with pytest.raises(ValidationError) as e:
        DeploymentSpec(base_model=model)
    return spec_error_of(e.value)


def test_describe() -> None:
    spec = DeploymentSpec(
        base_model=LLAMA,
        accelerator_type="h100",
        accelerator_count=2,
        min_replica_count=1,
        max_replica_count=2,
        scale_down_window_s=900,
    )
    rows = dict(spec.describe())
    assert rows["Model"] == "llama-v3p1-8b-instruct"
    assert rows["Accelerator"] == "2 × H100"
    assert rows["Replicas"] == "1–2"
    assert rows["Scale-down window"] == "15m"
    assert rows["Deployment id"] == "generated by Fireworks"
    assert rows["Auto-delete when unused"] == "after 7d (default)"
    assert "Scale-to-zero window" not in rows  # min 1 never scales to zero


def test_describe_scale_to_zero_and_policy_off() -> None:
    spec = DeploymentSpec(base_model=LLAMA, unused_auto_delete_s=0, deployment_shape="fast", enable_addons=True)
    rows = dict(spec.describe())
    assert rows["Replicas"] == "0–1 (scales to zero)"
    assert rows["Scale-to-zero window"] == "1h (default)"
    assert rows["Auto-delete when unused"] == "off"
    assert rows["Shape"] == "fast (preset)"
    assert rows["LoRA addons"] == "enabled"
    assert "Accelerator" not in rows


def test_formatters() -> None:
    assert format_replicas(2, 2) == "2"
    assert format_replicas(0, 0) == "0"
    assert format_accelerators(None, None) == "chosen by Fireworks"
    assert format_accelerators("NVIDIA_B200_180GB", None) == "B200 (count chosen by Fireworks)"


# --- DeploymentChange -------------------------------------------------------------------------

CURRENT = {
    "name": "accounts/acme/deployments/my-llama",
    "baseModel": LLAMA,
    "displayName": "Llama",
    "minReplicaCount": 0,
    "maxReplicaCount": 2,
    "acceleratorType": "NVIDIA_H100_80GB",
    "acceleratorCount": 1,
    "autoscalingPolicy": {"scaleUpWindow": "30s", "scaleToZeroWindow": "3600s", "loadTargets": {"default": 0.8}},
}


def test_update_mask_order_and_policy_excluded() -> None:
    change = DeploymentChange(
        scale_to_zero_window_s=600, unused_auto_delete_s=0, max_replica_count=3, min_replica_count=1
    )
    assert change.fields_set == {"scale_to_zero_window_s", "unused_auto_delete_s", "max_replica_count", "min_replica_count"}
    assert change.api_fields_set == change.fields_set - {"unused_auto_delete_s"}
    assert change.update_mask() == "min_replica_count,max_replica_count,autoscaling_policy.scale_to_zero_window"
    assert DeploymentChange(unused_auto_delete_s=3600).update_mask() == ""


def test_every_field_has_a_mask_path() -> None:
    change = DeploymentChange(
        display_name="x",
        min_replica_count=0,
        max_replica_count=1,
        accelerator_type="h200",
        accelerator_count=2,
        scale_up_window_s=1,
        scale_down_window_s=2,
        scale_to_zero_window_s=300,
        load_targets={"default": 0.5},
        enable_addons=False,
    )
    assert change.update_mask().split(",") == [
        "display_name",
        "min_replica_count",
        "max_replica_count",
        "accelerator_type",
        "accelerator_count",
        "autoscaling_policy.scale_up_window",
        "autoscaling_policy.scale_down_window",
        "autoscaling_policy.scale_to_zero_window",
        "autoscaling_policy.load_targets",
        "enable_addons",
    ]
    assert DeploymentChange(deployment_shape="accounts/a/deploymentShapes/s").update_mask() == "deployment_shape"


def test_apply_to_merges_and_leaves_current_alone() -> None:
    change = DeploymentChange(max_replica_count=4, scale_to_zero_window_s=900, accelerator_type="h200")
    before = {**CURRENT, "autoscalingPolicy": dict(CURRENT["autoscalingPolicy"])}
    after = change.apply_to(before)
    assert before == CURRENT
    assert after["maxReplicaCount"] == 4
    assert after["acceleratorType"] == "NVIDIA_H200_141GB"
    assert after["autoscalingPolicy"] == {
        "scaleUpWindow": "30s",
        "scaleToZeroWindow": "900s",
        "loadTargets": {"default": 0.8},
    }
    assert after["baseModel"] == LLAMA and after["displayName"] == "Llama"


def test_apply_to_without_policy_and_preset() -> None:
    after = DeploymentChange(scale_up_window_s=45).apply_to({"baseModel": LLAMA})
    assert after == {"baseModel": LLAMA, "autoscalingPolicy": {"scaleUpWindow": "45s"}}
    with pytest.raises(ValueError, match="resolved"):
        DeploymentChange(deployment_shape="fast").apply_to(CURRENT)


def test_diff_shows_only_real_changes() -> None:
    change = DeploymentChange(
        max_replica_count=2,  # unchanged
        min_replica_count=1,
        scale_down_window_s=300,  # default 10m → 5m
        enable_addons=True,
        unused_auto_delete_s=0,
    )
    assert change.diff(CURRENT) == [
        ("Min replicas", "0", "1"),
        ("Scale-down window", "10m", "5m"),
        ("LoRA addons", "disabled", "enabled"),
        ("Auto-delete when unused", "after 7d (default)", "off"),
    ]
    assert DeploymentChange(unused_auto_delete_s=0).diff(CURRENT, current_unused_auto_delete_s=0) == []


def test_diff_accelerator_and_targets() -> None:
    change = DeploymentChange(accelerator_type="b200", load_targets={"default": 0.6, "requests_per_second": 5})
    assert change.diff(CURRENT) == [
        ("Accelerator", "H100", "B200"),
        ("Load targets", "default=0.8", "default=0.6,requests_per_second=5"),
    ]
    assert DeploymentChange(deployment_shape="fast").diff(CURRENT) == [("Shape", "—", "fast (preset)")]


def test_change_rules() -> None:
    with pytest.raises(ValidationError) as e:
        DeploymentChange(min_replica_count=2, max_replica_count=1)
    assert spec_error_of(e.value).flag == "min-replica-count"
    # Each alone is fine: the combination with the current deployment is checked separately.
    change = DeploymentChange(min_replica_count=3)
    assert change.problem_with(CURRENT) == "`--min-replica-count` (3) is greater than current max replicas (2)"
    assert DeploymentChange(max_replica_count=0).problem_with({"minReplicaCount": 1}) == (
        "current min replicas (1) is greater than `--max-replica-count` (0)"
    )
    assert DeploymentChange(min_replica_count=2).problem_with(CURRENT) is None
    assert DeploymentChange(min_replica_count=1).problem_with({}) is None  # API default max(min, 1)


# --- CostPeriod ------------------------------------------------------------------------------------

WED = date(2026, 11, 18)


@pytest.mark.parametrize(
    ("period", "dates", "label"),
    [
        (CostPeriod("today"), (WED, WED), "today"),
        (CostPeriod("week"), (date(2026, 11, 16), WED), "this week"),
        (CostPeriod("month"), (date(2026, 11, 1), WED), "this month"),
        (CostPeriod("range", date(2026, 10, 1), date(2026, 10, 31)), (date(2026, 10, 1), date(2026, 10, 31)),
         "2026-10-01 to 2026-10-31"),
        (CostPeriod("range", WED, WED), (WED, WED), "2026-11-18"),
    ],
)
def test_cost_period(period: CostPeriod, dates: tuple[date, date], label: str) -> None:
    assert period.dates(WED) == dates
    assert period.label == label
