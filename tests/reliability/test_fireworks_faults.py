"""Fireworks faults: 5xx, 429 with Retry-After, timeouts, and a create committed but never answered.

Faults come from the simulator's fault injection, over real HTTP, through the official SDK (2
retries). After every fault the user has a clear message, Fireworks holds no duplicate, and
SQLite holds nothing half-recorded: an owner claim either becomes a deployment or is dropped.
"""

from __future__ import annotations

import json

import pytest

from bot.adapters.fireworks import FireworksError, FireworksGateway
from bot.core.clock import FakeClock
from tests.harness import CHANNEL, message_text, start_stack

pytestmark = pytest.mark.slow

MODEL = "llama-v3p1-8b-instruct"
FAULTS = {"injected": 0, "survived": 0}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 30.0, "seed": 7})
    s.fw("models")  # warm the model catalog, so the faults below land on the calls under test
    s.wait_ephemeral("deployable base models")
    yield s
    s.stop()


@pytest.fixture(scope="module", autouse=True)
def report_faults():
    yield
    print(f"\nFireworks faults injected: {FAULTS['injected']}, survived: {FAULTS['survived']}")


def inject(n: int = 1) -> None:
    FAULTS["injected"] += n


def survived(n: int = 1) -> None:
    FAULTS["survived"] += n


def on_create(stack, fault) -> None:
    """Run ``fault(sim)`` just before the real create (after validateOnly), at the gateway boundary."""
    gateway = stack.services.gateway
    real = gateway.create_deployment

    def create(deployment_id, fields, *, validate_only=False):
        if not validate_only:
            fault(stack.sim)
        return real(deployment_id, fields, validate_only=validate_only)

    gateway.create_deployment = create


def sim_ids(stack) -> list[str]:
    return [d.name.rsplit("/", 1)[-1] for d in stack.sdk().deployments.list(show_deleted=True)]


def tracking_text(stack, dep_id: str, needle: str) -> str:
    def find():
        for m in stack.ws.messages(CHANNEL):
            text = message_text(m)
            if f"{dep_id}" in text and needle in text and not m.ephemeral_to:
                return text
        return None

    return stack.ws.wait_for(find, timeout=20)


def settled(stack, dep_id: str) -> list[tuple[str, str]]:
    """Until the create has an outcome in the audit trail (its last step); returns the trail."""
    return stack.ws.wait_for(lambda: audit(stack, dep_id) or None, timeout=20)


def audit(stack, dep_id: str) -> list[tuple[str, str]]:
    return [(r["action"], r["result"]) for r in stack.services.store.db.query(
        "SELECT action, result FROM audit WHERE deployment_id = :d ORDER BY id", {"d": dep_id})]


@pytest.mark.parametrize("status, retry_after", [(503, None), (500, None), (429, 1.0)])
def test_create_rides_out_faults_within_the_retry_budget(stack, status, retry_after):
    on_create(stack, lambda sim: sim.faults.fail_next(2, status, retry_after=retry_after))
    inject(2)
    stack.fw(f"deploy {MODEL} --deployment-id rides-{status} --max-replica-count 1")
    settled(stack, f"rides-{status}")
    tracking_text(stack, f"rides-{status}", "Creating")
    assert sim_ids(stack) == [f"rides-{status}"]
    assert stack.sim.state.count_requests("POST", r".*/deployments", status=status) == 2
    assert audit(stack, f"rides-{status}") == [("deploy", "ok")]
    assert stack.services.store.deployment(f"rides-{status}").owner == "U_DEV"
    survived(2)


@pytest.mark.parametrize("mode", ["close", "503"])
def test_a_create_whose_response_is_lost_is_recognised_not_repeated(stack, mode):
    on_create(stack, lambda sim: sim.faults.lose_next_create_response(mode))
    inject()
    stack.fw(f"deploy {MODEL} --deployment-id lost-{mode} --max-replica-count 1")
    settled(stack, f"lost-{mode}")
    assert sim_ids(stack) == [f"lost-{mode}"]
    assert audit(stack, f"lost-{mode}") == [("deploy", "ok")]
    survived()


def test_create_failing_beyond_retries_says_so_and_leaves_no_phantom(stack, clock):
    on_create(stack, lambda sim: sim.faults.fail_next(3, 503))
    inject(3)
    stack.fw(f"deploy {MODEL} --deployment-id never-made --max-replica-count 1")
    text = tracking_text(stack, "never-made", "did not confirm")
    assert "Nothing will be created twice" in text
    assert sim_ids(stack) == []
    assert audit(stack, "never-made") == [("deploy", "error")]
    # The claim stays while a create could still be in flight, then the next sync drops it.
    stack.sync()
    assert stack.services.store.deployment("never-made") is not None
    clock.advance(11 * 60)
    report = stack.sync()
    assert report.forgotten == ["never-made"]
    assert stack.services.store.deployment("never-made") is None
    stack.fw("list all")
    assert "There are no deployments" in stack.wait_ephemeral("deployments")
    survived(3)


def test_create_committed_but_never_confirmed_is_adopted_by_the_next_sync(stack, clock):
    """Two 503s, then a commit whose answer is lost: the SDK gives up, Fireworks has it."""
    def fault(sim):
        sim.faults.fail_next(2, 503)
        sim.faults.lose_next_create_response("503")

    on_create(stack, fault)
    inject(3)
    stack.fw(f"deploy {MODEL} --deployment-id made-anyway --max-replica-count 1")
    tracking_text(stack, "made-anyway", "did not confirm")
    assert sim_ids(stack) == ["made-anyway"]
    clock.advance(31)
    stack.sync()
    record = stack.services.store.deployment("made-anyway")
    assert record.owner == "U_DEV" and record.state == "READY" and record.created_by_bot
    tracking_text(stack, "made-anyway", "READY")
    clock.advance(11 * 60)
    stack.sync()
    assert sim_ids(stack) == ["made-anyway"] and stack.services.store.deployment("made-anyway") is not None
    survived(3)


def test_create_slower_than_the_timeout_is_never_duplicated(stack, clock):
    """Each attempt times out on the client while Fireworks goes on to commit it."""
    sim = stack.sim
    fast = FireworksGateway(api_key="sim-key", account_id="demo", base_url=sim.url, timeout=0.4)
    stack.bot.services.gateway = fast
    on_create(stack, lambda s: setattr(s.faults, "latency_ms", 700))
    inject(3)
    stack.fw(f"deploy {MODEL} --deployment-id slow-one --max-replica-count 1")
    text = tracking_text(stack, "slow-one", "did not confirm")
    assert "did not answer in time" in text
    sim.faults.latency_ms = 0
    stack.ws.wait_for(lambda: stack.sim.state.count_requests("POST", r".*/deployments") >= 4, timeout=10)
    assert sim_ids(stack) == ["slow-one"]
    stack.sync()
    assert stack.services.store.deployment("slow-one").owner == "U_DEV"
    fast.close()
    survived(3)


def owned(stack, dep_id: str = "web-1") -> str:
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --min-replica-count 1 --max-replica-count 2")
    assert settled(stack, dep_id) == [("deploy", "ok")]
    return dep_id


def test_scale_update_delete_and_list_fail_clearly_and_change_nothing(stack):
    dep = owned(stack)
    store = stack.services.store
    before = audit(stack, dep)

    stack.sim.faults.fail_next(3, 503)
    inject(3)
    stack.fw(f"scale {dep} 2")
    assert "injected fault" in stack.wait_ephemeral("Fireworks says")
    stack.sim.faults.fail_next(3, 502)
    inject(3)
    stack.fw(f"update {dep} --max-replica-count 1")
    stack.ws.wait_for(lambda: len([m for m in stack.ephemerals("U_DEV") if "Fireworks says" in message_text(m)]) == 2)
    assert audit(stack, dep) == before and stack.sim.state.get_deployment(dep)["maxReplicaCount"] == 2

    stack.fw(f"delete {dep}")
    confirm = stack.ws.wait_for(lambda: next((m for m in reversed(stack.ephemerals("U_DEV"))
                                              if "confirm_delete" in json.dumps(m.blocks or [])), None))
    stack.sim.faults.fail_next(3, 503)
    inject(3)
    stack.ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
    stack.ws.wait_for(lambda: len([m for m in stack.ephemerals("U_DEV") if "Fireworks says" in message_text(m)]) == 3)
    assert stack.sim.state.get_deployment(dep)["state"] != "DELETED" and audit(stack, dep) == before

    stack.sim.faults.fail_next(3, 503)
    inject(3)
    with pytest.raises(FireworksError):
        stack.sync()
    assert store.deployment(dep).gone_at is None  # a failed listing marks nothing gone

    # Within the retry budget the same operations go through, once each.
    stack.sim.faults.fail_next(2, 503)
    inject(2)
    stack.fw(f"scale {dep} 2")
    stack.ws.wait_for(lambda: ("scale", "ok") in audit(stack, dep))
    stack.sim.faults.fail_next(2, 429, retry_after=0.2)
    inject(2)
    stack.sync()
    assert audit(stack, dep).count(("scale", "ok")) == 1
    survived(3 + 3 + 3 + 3 + 2 + 2)


def test_rate_limited_past_the_budget_names_the_wait(stack):
    dep = owned(stack)
    stack.sim.faults.fail_next(3, 429, retry_after=0.2)
    inject(3)
    stack.fw(f"get {dep}")
    text = stack.wait_ephemeral("Fireworks says")
    assert "429" in text
    assert stack.services.store.deployment(dep).owner == "U_DEV"
    survived(3)


def test_random_faults_under_a_burst_of_commands_leave_no_duplicates(stack, clock):
    stack.sim.faults.fail_rate = 0.3
    ids = [f"burst-{i}" for i in range(6)]
    for dep_id in ids:
        stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 1")
    # Each command ends in exactly one of: a create Fireworks confirmed (audited ok), or a
    # "Fireworks says" reply (refused before the create, or a create that failed; the latter is
    # also audited as an error, so counting audited creates of any result would count it twice
    # and stop waiting while another command is still retrying).
    def outcomes():
        created = sum(1 for d in ids if ("deploy", "ok") in audit(stack, d))
        refused = sum(1 for m in stack.ephemerals("U_DEV") if "Fireworks says" in message_text(m))
        return created + refused >= len(ids)

    stack.ws.wait_for(outcomes, timeout=60)
    injected = stack.sim.state.count_requests(status=503)
    inject(injected)
    stack.sim.faults.fail_rate = 0.0
    names = sim_ids(stack)
    assert len(names) == len(set(names)) and set(names) <= set(ids)
    clock.advance(11 * 60)
    stack.sync()
    records = {r.id for r in stack.services.store.deployments()}
    assert records == set(names)  # every claim became a deployment or was dropped
    for dep_id in names:
        assert audit(stack, dep_id).count(("deploy", "ok")) <= 1
    survived(injected)
