"""The deploy form says what ``/fw deploy`` would do: one validator (DeploymentSpec) and one
pricer (``Operations.plan_deploy``) for both, the shape's hardware shown instead of editable GPU
fields, distinct shape labels, and only accelerators fwbot has a price for.

Driven through the Slack stand-in (signed requests into the bot, the simulator over HTTP)."""

from __future__ import annotations

import json

import pytest

from handlers.views import validate_form
from tests.harness import CHANNEL, message_text, start_stack


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)

BIG = "llama-v3p1-70b-instruct"  # 2 × H100 per replica in the catalog (worldSize 2)
FULL_BIG = f"accounts/fireworks/models/{BIG}"


@pytest.fixture
def stack(tmp_path):
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


def blocks(stack, view_id: str) -> dict[str, dict]:
    return {b.get("block_id"): b for b in stack.ws.view(view_id).view["blocks"]}


def cost_line(stack, view_id: str) -> str:
    return next(dumps(b) for b in stack.ws.view(view_id).view["blocks"]
                if b["type"] == "context" and "Worst case" in dumps(b))


def pick(stack, view_id: str, block: str, value: str) -> None:
    before = stack.ws.view(view_id).view["hash"]
    assert stack.ws.click_in_view("U_DEV", view_id, "v", block_id=block, value=value).status == 200
    stack.ws.wait_for(lambda: stack.ws.view(view_id).view["hash"] != before, timeout=10)


def options(block: dict) -> list[tuple[str, str]]:
    return [(o["value"], o["text"]["text"]) for o in block["element"]["options"]]


def test_a_big_model_without_a_shape_is_priced_as_the_command_prices_it(stack):
    stack.fw("deploy")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1])
    assert "Pick a model to see its shapes" in dumps(blocks(stack, view.id)["shape"])
    pick(stack, view.id, "model", FULL_BIG)
    form = blocks(stack, view.id)
    assert "1 replica × 2 × H100" in cost_line(stack, view.id) and "$16.00/h" in cost_line(stack, view.id)
    assert form["acc_count"]["element"]["placeholder"]["text"] == "2 (the model's default)"
    assert "initial_value" not in form["acc_count"]["element"]
    assert "Pick a model" not in dumps(form["shape"]) and BIG in form["shape"]["element"]["placeholder"]["text"]
    # The command, for the same request, says the same.
    stack.fw(f"deploy {BIG} --dry-run")
    dry = stack.wait_ephemeral("Dry run")
    assert "Worst case:* $16.00/h" in dry, dry


def test_only_accelerators_with_a_price_are_offered(stack):
    # The full table, and FWBOT_PRICES adding one: tests/integration/test_prices.py.
    stack.fw("deploy")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1])
    labels = [label for _, label in options(blocks(stack, view.id)["acc_type"])]
    assert labels and all("$" in label and "per GPU" in label for label in labels), labels
    assert "H100 · $8.00/h per GPU" in labels and not [label for label in labels if "A100" in label]


def test_a_picked_shape_replaces_the_gpu_fields_and_prices_its_hardware(stack):
    stack.fw("deploy")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1])
    pick(stack, view.id, "model", FULL_BIG)
    shapes = options(blocks(stack, view.id)["shape"])[1:]
    labels = [label for _, label in shapes]
    assert len(set(labels)) == len(labels), labels  # e.g. two MINIMAL shapes told apart
    minimal = next(value for value, label in shapes if label.startswith("Minimal · 2 × H100"))
    pick(stack, view.id, "shape", minimal)
    form = blocks(stack, view.id)
    assert "acc_type" not in form and "acc_count" not in form
    assert "2 × H100, set by the shape" in dumps(form["shape_hardware"])
    assert "1 replica × 2 × H100" in cost_line(stack, view.id)
    # Submitted, it creates exactly that.
    r = stack.ws.submit_view("U_DEV", view.id, values={"deployment_id": {"v": "shaped-70b"}})
    assert r.status == 200 and not (r.json or {}).get("errors"), r.body
    # The record is claimed before Fireworks is asked; its hardware is known once the create answered.
    created = stack.ws.wait_for(lambda: next((r for r in [stack.services.store.deployment("shaped-70b")]
                                              if r is not None and r.accelerator_type), None), timeout=10)
    assert (created.accelerator_type, created.accelerator_count) == ("NVIDIA_H100_80GB", 2)
    tracking = stack.ws.wait_for(lambda: next((m for m in stack.ws.messages(CHANNEL)
                                               if "shaped-70b" in message_text(m) and "Owner" in message_text(m)),
                                              None), timeout=10)
    assert "$16.00/h" in message_text(tracking)


def test_the_form_shows_the_rules_the_command_obeys_all_at_once():
    _, errors = validate_form({"model": FULL_BIG, "min": "3", "max": "1", "display_name": "x" * 70,
                               "deployment_id": "Bad_Id", "stz": "soon", "acc_type": "NVIDIA_H100_80GB"})
    assert errors["min"] == "Min replicas (3) is greater than Max replicas (1)"
    assert errors["display_name"].startswith("Display name is 70 characters long")
    assert errors["deployment_id"].startswith("Deployment id `Bad_Id` may only contain")
    assert "soon" in errors["stz"]
    spec, errors = validate_form({"model": FULL_BIG, "shape": "accounts/fireworks/deploymentShapes/x-minimal",
                                  "acc_type": "NVIDIA_H100_80GB", "acc_count": "4", "max": "2"})
    assert not errors and spec.deployment_shape and spec.accelerator_type is None and spec.accelerator_count is None


def test_the_form_validator_reads_fields_as_the_command_reads_flags():
    """The deploy form's validator (the one the form uses) names the field to blame."""
    spec, errors = validate_form({"model": "accounts/fireworks/models/llama-v3p1-8b-instruct", "max": "2",
                                  "acc_type": "NVIDIA_H100_80GB", "display_name": "", "stz": ""})
    assert errors == {} and spec is not None
    assert (spec.max_replica_count, spec.accelerator_type, spec.display_name) == (2, "NVIDIA_H100_80GB", None)
    assert spec.scale_to_zero_window_s is None
    _, errors = validate_form({"model": "accounts/fireworks/models/x", "min": "3", "max": "1"})
    assert set(errors) == {"min"} or set(errors) == {"max"}, errors
    _, errors = validate_form({"model": "accounts/fireworks/models/x", "stz": "soon"})
    assert set(errors) == {"stz"}, errors
    _, errors = validate_form({"model": "accounts/fireworks/models/x", "min": "three"})
    assert errors == {"min": "Enter a whole number."}
