"""A GPU-quota refusal end to end: signed HTTP into the bot, the simulator over HTTP with a quota,
a real SQLite file. fwbot says in one sentence what the quota is, what is in use and what was
asked, and nothing is created or remembered."""

from __future__ import annotations

import pytest

from bot.core.clock import FakeClock
from tests.harness import CHANNEL, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
H100 = "NVIDIA_H100_80GB"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 60.0, "gpu_quota": {H100: 32}})
    yield s
    s.stop()


def names(stack) -> list[str]:
    return [d.name for d in stack.sdk().deployments.list()]


def deploy_first(stack, clock):
    stack.fw(f"deploy {MODEL} --deployment-id first --accelerator-type h100 --accelerator-count 8 "
             "--max-replica-count 3")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment("first")) is not None and r.state is not None)
    assert names(stack) == ["accounts/demo/deployments/first"]


def test_deploy_over_the_gpu_quota_is_refused_in_one_clear_sentence(stack, clock):
    deploy_first(stack, clock)  # 3 replicas × 8 = 24 of the 32 H100
    stack.fw(f"deploy {MODEL} --deployment-id second --accelerator-type h100 --accelerator-count 8 "
             "--max-replica-count 2")
    text = stack.wait_ephemeral("quota")
    assert (":warning: Fireworks refused: this account's quota is 32 × NVIDIA_H100_80GB and 24 are in use; "
            "the deploy asked for 16 more (2 replicas × 8).") in text
    # Nothing created at Fireworks, nothing left behind in fwbot's records.
    assert names(stack) == ["accounts/demo/deployments/first"]
    assert stack.services.store.deployment("second") is None
    # Refused once (the validateOnly check), not retried: a quota does not free itself.
    assert stack.sim.state.count_requests("POST", "/v1/accounts/demo/deployments", status=429) == 1
    # Whatever tracking message went out for `second` says it was not created, never "Creating…".
    for m in stack.ws.messages(CHANNEL):
        body = message_text(m)
        if "second" in body and not m.ephemeral_to:
            assert "Creating" not in body or "refused" in body, body


def test_update_over_the_gpu_quota_is_refused_and_changes_nothing(stack, clock):
    deploy_first(stack, clock)
    clock.advance(61)
    stack.sync()
    stack.fw("update first --max-replica-count 5")
    text = stack.wait_ephemeral("quota")
    assert ("Fireworks refused: this account's quota is 32 × NVIDIA_H100_80GB and 0 are in use by other "
            "deployments; the update asked for 40 in all (5 replicas × 8).") in text
    assert stack.sdk().deployments.get("first").max_replica_count == 3
    assert stack.services.store.deployment("first").max_replicas == 3


def test_within_the_quota_deploys_as_usual(stack, clock):
    deploy_first(stack, clock)
    stack.fw(f"deploy {MODEL} --deployment-id second --accelerator-type h100 --accelerator-count 8")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment("second")) is not None and r.state is not None)
    assert sorted(names(stack)) == ["accounts/demo/deployments/first", "accounts/demo/deployments/second"]
