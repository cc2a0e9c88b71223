"""The Fireworks gateway against the simulator: idempotent create, errors with Fireworks' words."""

from __future__ import annotations

import pytest

from bot.adapters.fireworks import AlreadyExists, FireworksError, FireworksGateway, NotFound, RateLimited
from sims.fireworks import FireworksSimulator, SimConfig

MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
FIELDS = {"base_model": MODEL, "min_replica_count": 0, "max_replica_count": 1,
          "accelerator_type": "NVIDIA_H100_80GB", "accelerator_count": 1}


@pytest.fixture
def sim():
    s = FireworksSimulator(SimConfig(create_seconds=1.0))
    s.start(host="127.0.0.1", port=0)
    yield s
    s.stop()


@pytest.fixture
def gw(sim):
    g = FireworksGateway(api_key="sim-key", account_id="demo", base_url=sim.url)
    yield g
    g.close()


@pytest.mark.parametrize("mode", ["close", "503"])
def test_create_whose_response_is_lost_is_resolved_by_reading_back(sim, gw, mode):
    sim.faults.lose_next_create_response(mode=mode)
    wire = gw.create_deployment("lost-1", FIELDS)
    assert wire["name"] == "accounts/demo/deployments/lost-1"
    assert [d["name"] for d in gw.list_deployments()] == ["accounts/demo/deployments/lost-1"]


def test_same_id_with_a_different_ask_is_refused_clearly(gw):
    gw.create_deployment("taken", FIELDS)
    with pytest.raises(AlreadyExists, match="different deployment named taken"):
        gw.create_deployment("taken", {**FIELDS, "max_replica_count": 3})


def test_errors_carry_fireworks_message(gw):
    with pytest.raises(NotFound) as nf:
        gw.get_deployment("nope")
    assert nf.value.status == 404 and nf.value.code == 5 and "nope" in nf.value.message
    with pytest.raises(FireworksError) as bad:
        gw.create_deployment("bad-window", {**FIELDS, "autoscaling_policy": {"scale_to_zero_window": "10s"}})
    assert bad.value.status == 400 and bad.value.code == 3 and "window" in bad.value.message.lower()


def test_update_sends_a_mask_and_changes_only_that(sim, gw):
    gw.create_deployment("masked", {**FIELDS, "display_name": "keep me"})
    wire = gw.update_deployment("masked", {"max_replica_count": 2}, "max_replica_count")
    assert wire["maxReplicaCount"] == 2 and wire["displayName"] == "keep me"


def test_metrics_rate_limit_is_a_typed_error_with_retry_after(gw):
    for _ in range(6):
        gw.request_rates()
    with pytest.raises(RateLimited) as rl:
        gw.request_rates()
    assert rl.value.retry_after and rl.value.retry_after > 0


def test_transient_503s_are_retried_within_bounds(sim, gw):
    sim.faults.fail_next(2, status=503)
    assert gw.list_deployments() == []  # two 503s, then success: within the SDK's 2 retries
    sim.faults.fail_next(3, status=503)
    with pytest.raises(FireworksError) as e:
        gw.list_deployments()
    assert e.value.status == 503
