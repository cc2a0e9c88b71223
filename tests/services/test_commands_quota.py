"""A GPU-quota refusal end to end: signed HTTP into the bot, the simulator over HTTP with a quota,
a real SQLite file. fwbot says in one sentence what the quota is, what is in use and what was
asked, and nothing is created or remembered."""

from __future__ import annotations

import pytest

from bot.adapters.fireworks import QuotaExceeded
from bot.core.clock import FakeClock
from bot.services.changes import create_failed_line
from bot.services.commands import problem_reply
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


# -- every path says the same sentence: the form, an approval carried out later, a button ----------
FULL = ("Fireworks refused: this account's quota is 32 × NVIDIA_H100_80GB and 24 are in use; "
        "the deploy asked for 16 more (2 replicas × 8).")


def test_the_deploy_form_over_the_quota_says_the_same_sentence(stack, clock):
    deploy_first(stack, clock)
    view, picked = stack.open_deploy_form(MODEL)
    values = {**picked, "acc_count": {"v": "8"}, "min": {"v": "0"}, "max": {"v": "2"}, "stz": {"v": ""},
              "deployment_id": {"v": "from-form"}}
    assert stack.ws.submit_view("U_DEV", view.id, values=values).status == 200
    told = stack.wait_ephemeral("Deploy failed")
    assert f":warning: Deploy failed: {FULL}" in told, told
    assert names(stack) == ["accounts/demo/deployments/first"]
    assert stack.services.store.deployment("from-form") is None


@pytest.fixture
def approvals_stack(tmp_path, clock):
    env = {"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20"}
    s = start_stack(tmp_path, clock=clock, env=env,
                    sim_config={"create_seconds": 60.0, "gpu_quota": {H100: 32}})
    yield s
    s.stop()


def test_an_approved_deploy_the_quota_no_longer_allows_says_the_same_sentence(approvals_stack, clock):
    stack = approvals_stack
    # $128/h: needs approval. Asked while the quota had room for it.
    stack.fw(f"deploy {MODEL} --deployment-id big --accelerator-type h100 --accelerator-count 8 "
             "--max-replica-count 2")
    request = stack.ws.wait_for(lambda: next((m for m in stack.ws.messages(CHANNEL)
                                              if not m.ephemeral_to and "approval_approve" in str(m.blocks)), None))
    # Meanwhile 24 of the 32 H100 go to a deployment made outside fwbot.
    stack.sdk().deployments.create(base_model=f"accounts/fireworks/models/{MODEL}", deployment_id="elsewhere",
                                   accelerator_type=H100, accelerator_count=8, max_replica_count=3)
    stack.ws.click("U_APPROVER", CHANNEL, request.ts, "approval_approve")
    record = stack.ws.wait_for(lambda: next((r for r in stack.services.store.approvals() if r.result), None),
                               timeout=15)
    assert record.result == {"ok": False, "text": FULL}
    dm = stack.ws.wait_for(lambda: next((message_text(m) for m in stack.ws.messages(stack.ws.dm_channel("U_DEV"))
                                         if "quota" in message_text(m)), None), timeout=10)
    assert FULL in dm
    assert sorted(names(stack)) == ["accounts/demo/deployments/elsewhere"]


def test_the_sentence_for_a_button_and_for_a_refused_create_message(stack):
    """A button's refusal (``problem_reply``: keep warm, scale, undelete) does not know its verb: it
    speaks of a change to the deployment's total. A create refused after its check (the quota
    filled up in between) says the deploy's sentence on its tracking message."""
    e = QuotaExceeded("quota", info={"acceleratorType": H100, "limit": "32", "inUse": "24", "requested": "16",
                                     "replicas": "2", "acceleratorsPerReplica": "8"})
    assert message_text(problem_reply(e)).endswith(
        "Fireworks refused: this account's quota is 32 × NVIDIA_H100_80GB and 24 are in use by other deployments; "
        "the change asked for 16 in all (2 replicas × 8).")
    assert create_failed_line("second", e) == f":x: {FULL}"
    # Without Fireworks' figures, its own words.
    assert "the account's GPU quota is used up (quota)" in message_text(problem_reply(QuotaExceeded("quota")))
