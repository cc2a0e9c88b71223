"""The clock-driven deployment lifecycle, on a FakeClock: nothing here sleeps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.sims.conftest import MODEL

DAY = 86400.0


def _t(clock, seconds: float) -> str:
    return datetime.fromtimestamp(clock.now().timestamp() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_creating_becomes_ready_after_create_seconds(fw, clock):
    _, api = fw
    api.create("d1")
    clock.advance(4.9)
    assert (api.dep("d1")["state"], api.dep("d1")["replicaCount"]) == ("CREATING", 0)
    clock.advance(0.1)
    d = api.dep("d1")
    assert (d["state"], d["replicaCount"], d["desiredReplicaCount"]) == ("READY", 1, 1)


def test_min_replicas_start_together_and_max_zero_stays_at_zero(fw, clock):
    _, api = fw
    api.create("two", minReplicaCount=2, maxReplicaCount=3)
    api.create("zero", maxReplicaCount=0)
    clock.advance(5)
    assert api.dep("two")["replicaCount"] == 2
    d = api.dep("zero")
    assert (d["state"], d["replicaCount"]) == ("READY", 0)
    r = api.infer("accounts/demo/deployments/zero")
    assert r.status_code == 503 and api.dep("zero")["desiredReplicaCount"] == 0


def test_scale_to_zero_is_recorded_when_due_not_when_observed(fw, clock):
    sim, api = fw
    api.create("d1", autoscalingPolicy={"scaleToZeroWindow": "600s"})
    clock.advance(5 + 599)
    assert api.dep("d1")["replicaCount"] == 1
    clock.advance(3 * 3600)  # nobody looks for hours
    d = api.dep("d1")
    assert (d["state"], d["replicaCount"], d["desiredReplicaCount"]) == ("READY", 0, 0)
    points = sim.state.ledgers["accounts/demo/deployments/d1"].points
    start = points[0][0]
    assert [(p[0] - start, p[1]) for p in points] == [(0, 0), (5, 1), (605, 0)]


def test_cold_start_on_traffic(fw, clock):
    _, api = fw
    api.create("d1", autoscalingPolicy={"scaleToZeroWindow": "300s"})
    clock.advance(5 + 300)
    assert api.dep("d1")["replicaCount"] == 0
    r = api.infer("accounts/demo/deployments/d1")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "DEPLOYMENT_SCALING_UP"
    assert "scaled to zero and is scaling up" in r.json()["error"]["message"]
    d = api.dep("d1")
    assert (d["desiredReplicaCount"], d["replicaCount"], d["state"]) == (1, 0, "READY")
    assert api.infer("accounts/demo/deployments/d1").status_code == 503  # not queued, still starting
    clock.advance(5)
    assert api.dep("d1")["replicaCount"] == 1
    ok = api.infer("accounts/demo/deployments/d1")
    assert ok.status_code == 200 and ok.json()["usage"]["prompt_tokens"] == 2
    # The idle window counts from the last request.
    clock.advance(299)
    assert api.dep("d1")["replicaCount"] == 1
    clock.advance(1)
    assert api.dep("d1")["replicaCount"] == 0


def test_delete_time_follows_traffic_and_auto_soft_delete_then_purge(fw, clock):
    _, api = fw
    api.create("idle")
    api.create("kept", minReplicaCount=1)
    assert api.dep("idle")["deleteTime"] == _t(clock, 7 * DAY)
    assert "deleteTime" not in api.dep("kept")
    clock.advance(DAY)
    assert api.infer("accounts/demo/deployments/idle").status_code == 503  # traffic, even if cold
    assert api.dep("idle")["deleteTime"] == _t(clock, 7 * DAY)
    clock.advance(7 * DAY)
    d = api.dep("idle")
    assert d["state"] == "DELETING" and d["replicaCount"] == 0
    assert d["deleteTime"] == _t(clock, 0)  # it happened exactly when due
    assert d["purgeTime"] == _t(clock, 7 * DAY)
    clock.advance(1)
    assert api.dep("idle")["state"] == "DELETED"
    assert [x["name"] for x in api.call("GET", "deployments").json()["deployments"]] == [
        "accounts/demo/deployments/kept"]
    assert api.dep("kept")["state"] == "READY"
    clock.advance(7 * DAY - 1)
    assert api.call("GET", "deployments/idle").status_code == 404


def test_undelete_restores_through_creating(fw, clock):
    _, api = fw
    api.create("d1")
    clock.advance(5)
    assert api.call("DELETE", "deployments/d1").status_code == 200
    clock.advance(3600)
    r = api.call("POST", "deployments/d1:undelete", json={})
    assert r.status_code == 200 and r.json()["state"] == "CREATING"
    assert "purgeTime" not in r.json() and r.json()["deleteTime"] == _t(clock, 7 * DAY)
    clock.advance(5)
    d = api.dep("d1")
    assert (d["state"], d["replicaCount"]) == ("READY", 1)


def test_serving_change_rolls_out_as_updating_but_scaling_does_not(fw, clock):
    sim, api = fw
    api.create("d1", minReplicaCount=1, maxReplicaCount=2)
    clock.advance(5)
    r = api.call("PATCH", "deployments/d1", json={"maxReplicaCount": 3}, updateMask="max_replica_count")
    assert r.json()["state"] == "READY"
    r = api.call("PATCH", "deployments/d1",
                 json={"deploymentShape": "", "acceleratorType": "NVIDIA_H200_141GB", "acceleratorCount": 2},
                 updateMask="deployment_shape,accelerator_type,accelerator_count")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["replicaCount"]) == ("UPDATING", 1)
    clock.advance(5)
    assert api.dep("d1")["state"] == "READY"
    points = sim.state.ledgers["accounts/demo/deployments/d1"].points
    assert [p[1:] for p in points] == [[0, "NVIDIA_H100_80GB", 1], [1, "NVIDIA_H100_80GB", 1],
                                       [1, "NVIDIA_H200_141GB", 2]]


def test_autoscaler_scales_up_after_window_and_back_down(fw, clock):
    _, api = fw
    api.create("d1", minReplicaCount=1, maxReplicaCount=3,
               autoscalingPolicy={"scaleUpWindow": "30s", "scaleDownWindow": "600s"})
    clock.advance(5)
    for _ in range(600):  # 10 requests/s for a minute: needs ceil(10 / (5 * 0.8)) = 3 replicas
        assert api.infer("accounts/demo/deployments/d1").status_code == 200
        clock.advance(0.1)
    d = api.dep("d1")
    assert d["desiredReplicaCount"] == 3 and d["replicaCount"] == 3
    clock.advance(599)
    assert api.dep("d1")["replicaCount"] == 3
    clock.advance(1)
    assert api.dep("d1")["replicaCount"] == 1


def test_delete_in_use_needs_ignore_checks(fw, clock):
    _, api = fw
    api.create("d1")
    clock.advance(5)
    assert api.infer("accounts/demo/deployments/d1").status_code == 200
    r = api.call("DELETE", "deployments/d1")
    assert (r.status_code, r.json()["code"]) == (400, 9)
    assert api.call("DELETE", "deployments/d1", ignoreChecks=True, hard=True).status_code == 200
    assert api.call("GET", "deployments/d1").status_code == 404


def test_billing_integrates_the_replica_timeline_exactly(fw, clock):
    _, api = fw
    # 2 GPUs per replica (FAST shape of the 8B model), created 23:00 local the day before.
    clock.set(datetime(2026, 11, 1, 23, 0, tzinfo=UTC))
    api.create("d1", deploymentShape="accounts/fireworks/deploymentShapes/llama-v3p1-8b-instruct-fast",
               minReplicaCount=0, maxReplicaCount=4, autoscalingPolicy={"scaleToZeroWindow": "1800s"})
    api.create("other", minReplicaCount=1)
    clock.advance(5)  # start-up is free; READY with 1 replica at 23:00:05
    r = api.call("PATCH", "deployments/d1", json={"minReplicaCount": 3}, updateMask="min_replica_count")
    assert r.status_code == 200
    clock.advance(3600)  # 2 more replicas from 23:00:10; at 00:00:05 down to zero in one step
    r = api.call("PATCH", "deployments/d1", json={"minReplicaCount": 0, "maxReplicaCount": 0})
    assert r.json()["replicaCount"] == 0
    clock.advance(2 * 3600)
    query = {"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-03T00:00:00Z",
             "groupBy": ["deployment_name"], "filter[deployment_name][values]": "accounts/demo/deployments/d1"}
    rows = api.call("GET", "billingUsage", **query).json()["dedicatedCosts"]
    # Day 1: 1 replica x 2 GPUs x 5 s, then 3 x 2 x (3600 - 10) from 23:00:10 to 00:00:00.
    # Day 2: 3 x 2 x 5 s until the scale to zero at 00:00:05.
    assert [(r["startTime"], r["acceleratorSeconds"]) for r in rows] == [
        ("2026-11-01T00:00:00Z", str(2 * 5 + 3 * 2 * 3590)), ("2026-11-02T00:00:00Z", str(3 * 2 * 5))]
    assert rows[0]["group"] == {"deployment_name": "accounts/demo/deployments/d1"}
    assert rows[0]["deploymentId"] == "d1" and rows[0]["acceleratorType"] == ""
    # In Los Angeles time all of it falls on Nov 1 (local), bucketed from local midnight.
    rows = api.call("GET", "billingUsage", **{**query, "timezone": "America/Los_Angeles"}).json()["dedicatedCosts"]
    assert [(r["startTime"], r["acceleratorSeconds"]) for r in rows] == [
        ("2026-11-01T07:00:00Z", str(2 * 5 + 3 * 2 * 3595))]
    by_type = api.call("GET", "billingUsage", startTime="2026-11-01T00:00:00Z", endTime="2026-11-03T00:00:00Z",
                       groupBy="accelerator_type", usageType="DEDICATED_DEPLOYMENT").json()["dedicatedCosts"]
    assert [r["group"] for r in by_type] == [{"accelerator_type": "NVIDIA_H100_80GB"}] * 2
    other = 3 * 3600  # 1 GPU from 23:00:05 until now (02:00:05)
    assert sum(int(r["acceleratorSeconds"]) for r in by_type) == 2 * 5 + 3 * 2 * 3595 + other
    assert api.call("GET", "billingUsage", startTime=query["startTime"], endTime=query["endTime"],
                    usageType="SERVERLESS").json() == {"serverlessCosts": [], "dedicatedCosts": []}


def test_metrics_report_serving_deployments_and_are_rate_limited(fw, clock):
    _, api = fw
    api.create("busy")
    api.create("cold", autoscalingPolicy={"scaleToZeroWindow": "300s"})
    clock.advance(310)
    for _ in range(30):
        api.infer("accounts/demo/deployments/busy")
        clock.advance(1)
    text = api.call("GET", "metrics").text
    labels = f'base_model="{MODEL}",deployment="accounts/demo/deployments/busy",' \
             'deployment_account="demo",deployment_id="busy"'
    assert f"request_counter_total:sum_by_deployment{{{labels}}} 0.5\n" in text
    assert "latency_overall_ms_bucket:sum_by_deployment{" in text and 'le="+Inf"' in text
    assert "requests_coordinator_concurrent_count:avg_by_deployment{" in text
    assert "tokens_prompt_total:sum_by_deployment{" in text
    assert "deployments/cold" not in text  # zero replicas: not exported
    for _ in range(5):
        assert api.call("GET", "metrics").status_code == 200
    limited = api.call("GET", "metrics")
    assert limited.status_code == 429 and limited.json()["code"] == 8
    assert limited.headers["Retry-After"] == "60"
    clock.advance(60)
    assert api.call("GET", "metrics").status_code == 200


def test_state_file_survives_a_restart(make_sim, clock, tmp_path):
    path = str(tmp_path / "fw.json")
    sim, api = make_sim(state_file=path)
    api.create("d1", minReplicaCount=1)
    clock.advance(5)
    assert api.dep("d1")["state"] == "READY"
    sim.stop()
    _, api2 = make_sim(state_file=path)
    clock.advance(10)
    d = api2.dep("d1")
    assert (d["state"], d["replicaCount"]) == ("READY", 1)
    assert api2.call("POST", "deployments", json={"baseModel": MODEL, "deploymentShape": "default"},
                     deploymentId="d1").status_code == 409


@pytest.mark.parametrize("mode,expected", [("close", None), ("503", 503)])
def test_lost_create_response_still_commits(fw, mode, expected):
    sim, api = fw
    sim.faults.lose_next_create_response(mode)
    try:
        r = api.call("POST", "deployments", json={"baseModel": MODEL, "deploymentShape": "default"},
                     deploymentId="d1")
        status = r.status_code
    except Exception:  # the connection was dropped without an answer
        status = None
    assert status == expected
    assert api.call("POST", "deployments", json={"baseModel": MODEL, "deploymentShape": "default"},
                    deploymentId="d1").status_code == 409


def test_admin_endpoints(fw, clock):
    sim, api = fw
    assert api.call("POST", "/_sim/faults", json={"failNext": {"count": 1, "status": 500}}).status_code == 200
    assert api.call("GET", "deployments").status_code == 500
    assert api.call("GET", "deployments").status_code == 200
    api.call("POST", "/_sim/faults", json={"failNext": {"count": 1, "status": 429, "retryAfter": 2}})
    r = api.call("GET", "deployments")
    assert (r.status_code, r.headers["Retry-After"], r.json()["code"]) == (429, "2", 8)
    api.create("d1")
    r = api.call("POST", "/_sim/clock", json={"advanceSeconds": 5})
    assert r.status_code == 200 and api.dep("d1")["state"] == "READY"
    dump = api.call("GET", "/_sim/state").json()
    assert [d["name"] for d in dump["deployments"]] == ["accounts/demo/deployments/d1"]
    assert sim.state.count_requests("POST", r"/_sim/.*") == 3


def test_injected_failure_and_recovery_by_update(fw, clock):
    sim, api = fw
    api.create("d1", minReplicaCount=1)
    clock.advance(5)
    assert sim.state.get_deployment("d1")["replicaCount"] == 1  # reads as of the clock, no request needed
    r = api.call("POST", "/_sim/faults", json={"failDeployment": {"id": "d1", "message": "out of capacity"}})
    assert r.status_code == 200
    d = api.dep("d1")
    assert (d["state"], d["status"], d["replicaCount"]) == (
        "FAILED", {"code": "INTERNAL", "message": "out of capacity"}, 0)
    assert api.infer("accounts/demo/deployments/d1").status_code == 503
    r = api.call("PATCH", "deployments/d1", updateMask="deployment_shape", json={
        "deploymentShape": "accounts/fireworks/deploymentShapes/llama-v3p1-8b-instruct-throughput"})
    assert r.json()["state"] == "UPDATING"
    clock.advance(5)
    d = sim.state.get_deployment("d1")
    assert (d["state"], d["acceleratorType"], d["replicaCount"]) == ("READY", "NVIDIA_H200_141GB", 1)
