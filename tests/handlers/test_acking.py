"""Slack is answered before slow work.

Every listener hands its Fireworks and Slack calls to fwbot's work pool after acking
(``handlers/acking.py``). These tests slow the simulator down and check, from Slack's side, that
the answer came back before the change reached Fireworks, and that the change is then made and
reported.
"""

from __future__ import annotations

import json

import pytest

from handlers.acking import acked_first
from tests.harness import CHANNEL, start_stack

MODEL = "llama-v3p1-8b-instruct"
SLOW_MS = 700


@pytest.fixture
def stack(tmp_path):
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


def sim_state(stack, dep_id: str) -> str | None:
    try:
        return stack.sim.state.get_deployment(dep_id)["state"]
    except Exception:  # noqa: BLE001 - not created (yet)
        return None


def test_a_confirmed_delete_is_answered_before_fireworks_is_called(stack):
    stack.fw(f"deploy {MODEL} --deployment-id slow-del --max-replica-count 1")
    stack.ws.wait_for(lambda: stack.services.store.deployment("slow-del"))
    stack.fw("delete slow-del")
    confirm = stack.ws.wait_for(lambda: next((m for m in reversed(stack.ephemerals("U_DEV"))
                                              if "confirm_delete" in json.dumps(m.blocks or [])), None))
    stack.sim.faults.latency_ms = SLOW_MS
    answer = stack.ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
    assert answer.status == 200
    assert sim_state(stack, "slow-del") not in ("DELETING", "DELETED")  # Slack had its answer first
    assert "Deleted `slow-del`" in stack.wait_ephemeral("Deleted", timeout=20)
    assert sim_state(stack, "slow-del") in ("DELETING", "DELETED")


def test_a_submitted_deploy_form_is_answered_before_the_deployment_is_created(stack):
    view, picked = stack.open_deploy_form(MODEL)
    stack.sim.faults.latency_ms = SLOW_MS
    answer = stack.ws.submit_view("U_DEV", view.id, values={
        **picked, "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "1"}, "stz": {"v": ""},
        "deployment_id": {"v": "slow-form"}})
    assert answer.status == 200 and not answer.body.strip()  # a plain ack closes the form
    assert sim_state(stack, "slow-form") is None
    stack.ws.wait_for(lambda: sim_state(stack, "slow-form"), timeout=20)


def test_a_listener_body_may_not_take_ack():
    def takes_ack(ack, body):  # pragma: no cover - never called
        ack()

    with pytest.raises(TypeError, match="must not take `ack`"):
        acked_first(None)(takes_ack)  # type: ignore[arg-type]
