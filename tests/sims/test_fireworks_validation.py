"""Bad input: each rejected with the HTTP status and gRPC code of contract §3."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sims.conftest import MODEL

INVALID, NOT_FOUND, EXISTS, PRECONDITION = (400, 3), (404, 5), (409, 6), (400, 9)
SHAPED = {"baseModel": MODEL, "deploymentShape": "default"}

CREATE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[int, int]]] = [
    ("uppercase id", {"deploymentId": "Bad"}, SHAPED, INVALID),
    ("underscore id", {"deploymentId": "bad_id"}, SHAPED, INVALID),
    ("id starts with digit", {"deploymentId": "1abc"}, SHAPED, INVALID),
    ("id ends with dash", {"deploymentId": "abc-"}, SHAPED, INVALID),
    ("id of 64 chars", {"deploymentId": "a" * 64}, SHAPED, INVALID),
    ("no base model", {}, {"deploymentShape": "default"}, INVALID),
    ("unknown base model", {}, {"baseModel": "accounts/fireworks/models/nope", "deploymentShape": "default"},
     INVALID),
    ("shapeless without accelerator", {}, {"baseModel": MODEL}, INVALID),
    ("unknown accelerator", {}, {"baseModel": MODEL, "acceleratorType": "NVIDIA_T4"}, INVALID),
    ("unknown precision", {}, {**SHAPED, "precision": "INT3"}, INVALID),
    ("display name of 64 chars", {}, {**SHAPED, "displayName": "x" * 64}, INVALID),
    ("min above max", {}, {**SHAPED, "minReplicaCount": 3, "maxReplicaCount": 2}, INVALID),
    ("negative min", {}, {**SHAPED, "minReplicaCount": -1}, INVALID),
    ("min not a number", {}, {**SHAPED, "minReplicaCount": "two"}, INVALID),
    ("scale-to-zero under 5 minutes", {}, {**SHAPED, "autoscalingPolicy": {"scaleToZeroWindow": "299s"}},
     INVALID),
    ("scale-up window over 1 hour", {}, {**SHAPED, "autoscalingPolicy": {"scaleUpWindow": "3601s"}}, INVALID),
    ("scale-down window over 1 hour", {}, {**SHAPED, "autoscalingPolicy": {"scaleDownWindow": "2h"}}, INVALID),
    ("Go duration instead of seconds", {}, {**SHAPED, "autoscalingPolicy": {"scaleToZeroWindow": "10m"}},
     INVALID),
    ("duration as a number", {}, {**SHAPED, "autoscalingPolicy": {"scaleToZeroWindow": 600}}, INVALID),
    ("unknown load target", {}, {**SHAPED, "autoscalingPolicy": {"loadTargets": {"gpu": 0.5}}}, INVALID),
    ("shape with accept_shapeless_risk", {"acceptShapelessRisk": "true"}, SHAPED, INVALID),
    ("unknown shape", {}, {"baseModel": MODEL, "deploymentShape": "accounts/fireworks/deploymentShapes/nope"},
     INVALID),
    ("shape of another model", {},
     {"baseModel": MODEL, "deploymentShape": "accounts/fireworks/deploymentShapes/deepseek-r1-minimal"}, INVALID),
    ("accelerator conflicting with the shape", {}, {**SHAPED, "acceleratorType": "NVIDIA_B200_180GB"}, INVALID),
    ("two placements", {}, {**SHAPED, "placement": {"region": "US_IOWA_1", "multiRegion": "US"}}, INVALID),
    ("bad boolean flag", {"validateOnly": "maybe"}, SHAPED, INVALID),
]


@pytest.mark.parametrize("query,body,expected", [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES])
def test_create_rejects(fw, query, body, expected):
    _, api = fw
    params = {"deploymentId": "d1", **query}
    r = api.call("POST", "deployments", json=body, **params)
    assert (r.status_code, r.json()["code"]) == expected, r.text
    assert set(r.json()) == {"code", "message", "details"} and r.json()["message"]
    assert api.call("GET", "deployments/d1").status_code == 404


def test_relaxed_allows_short_windows_but_not_garbage(make_sim):
    _, api = make_sim(relaxed=True)
    ok = api.call("POST", "deployments", deploymentId="d1",
                  json={**SHAPED, "autoscalingPolicy": {"scaleToZeroWindow": "5s", "scaleDownWindow": "7200s"}})
    assert ok.status_code == 200 and ok.json()["autoscalingPolicy"]["scaleToZeroWindow"] == "5s"
    bad = api.call("POST", "deployments", deploymentId="d2",
                   json={**SHAPED, "autoscalingPolicy": {"scaleToZeroWindow": "0s"}})
    assert (bad.status_code, bad.json()["code"]) == INVALID


def test_duplicates_conflict_even_when_soft_deleted(fw, clock):
    _, api = fw
    api.create("d1")
    api.call("DELETE", "deployments/d1")
    clock.advance(5)
    r = api.call("POST", "deployments", json=SHAPED, deploymentId="d1")
    assert (r.status_code, r.json()["code"]) == EXISTS


def test_update_and_scale_rejects(fw, clock):
    _, api = fw
    api.create("d1", minReplicaCount=1, maxReplicaCount=2)
    clock.advance(5)
    cases = [
        ({"minReplicaCount": 5}, "min_replica_count", INVALID),
        ({"autoscalingPolicy": {"scaleToZeroWindow": "60s"}}, "autoscaling_policy.scale_to_zero_window", INVALID),
        ({"acceleratorType": "NVIDIA_H200_141GB"}, "accelerator_type", INVALID),  # conflicts with the shape
        ({"placement": {"region": "EU_FRANKFURT_1"}}, "placement", PRECONDITION),
        ({"noSuchField": 1}, "no_such_field", INVALID),
    ]
    for body, mask, expected in cases:
        r = api.call("PATCH", "deployments/d1", json=body, updateMask=mask)
        assert (r.status_code, r.json()["code"]) == expected, (mask, r.text)
    assert api.dep("d1")["minReplicaCount"] == 1  # nothing was applied
    r = api.call("PATCH", "deployments/d1:scale", json={"replicaCount": -1})
    assert (r.status_code, r.json()["code"]) == INVALID
    assert (api.call("PATCH", "deployments/nope", json={}).status_code,
            api.call("DELETE", "deployments/nope").status_code,
            api.call("POST", "deployments/nope:undelete", json={}).status_code) == (404, 404, 404)
    r = api.call("POST", "deployments/d1:undelete", json={})
    assert (r.status_code, r.json()["code"]) == PRECONDITION
    api.call("DELETE", "deployments/d1")
    r = api.call("PATCH", "deployments/d1:scale", json={"replicaCount": 1})
    assert (r.status_code, r.json()["code"]) == PRECONDITION


def test_strict_mode_requires_an_update_mask(make_sim):
    _, api = make_sim(require_update_mask=True)
    api.create("d1")
    r = api.call("PATCH", "deployments/d1", json={"displayName": "x"})
    assert (r.status_code, r.json()["code"]) == INVALID
    assert api.call("PATCH", "deployments/d1", json={"displayName": "x"}, updateMask="display_name").status_code == 200


def test_bad_json_bodies(fw):
    _, api = fw
    r = api.http.post("/v1/accounts/demo/deployments", content=b"{not json")
    assert (r.status_code, r.json()["code"]) == INVALID
    r = api.http.post("/v1/accounts/demo/deployments", content=b"[1, 2]")
    assert (r.status_code, r.json()["code"]) == INVALID


def test_lora_rejects(fw, clock):
    _, api = fw
    api.create("plain")
    api.create("addons", enableAddons=True)
    api.create("other", baseModel="accounts/fireworks/models/gemma-3-27b-it", enableAddons=True)
    lora = {"modelId": "lora", "model": {"peftDetails": {"baseModel": MODEL, "r": 8, "targetModules": ["q_proj"]}}}
    assert api.call("POST", "models", json=lora).status_code == 200
    uploading = api.call("POST", "deployedModels", json={"model": "accounts/demo/models/lora",
                                                         "deployment": "accounts/demo/deployments/addons"})
    assert (uploading.status_code, uploading.json()["code"]) == PRECONDITION
    clock.advance(5)
    for deployment in ("plain", "other"):
        r = api.call("POST", "deployedModels", json={"model": "accounts/demo/models/lora",
                                                     "deployment": f"accounts/demo/deployments/{deployment}"})
        assert (r.status_code, r.json()["code"]) == PRECONDITION, deployment
    r = api.call("POST", "deployedModels", json={"model": "accounts/demo/models/missing",
                                                 "deployment": "accounts/demo/deployments/addons"})
    assert (r.status_code, r.json()["code"]) == NOT_FOUND
    assert api.call("POST", "models", json=lora).status_code == 409
    bad_r = {"modelId": "lora2", "model": {"peftDetails": {"baseModel": MODEL, "r": 128}}}
    assert (api.call("POST", "models", json=bad_r).json()["code"]) == 3
    no_lora = {"modelId": "lora3", "model": {"peftDetails": {"baseModel": "accounts/fireworks/models/deepseek-r1"}}}
    assert (api.call("POST", "models", json=no_lora).json()["code"]) == 9
    r = api.call("DELETE", "deployedModels/nope")
    assert (r.status_code, r.json()["code"]) == NOT_FOUND


@pytest.mark.parametrize("params", [
    {"endTime": "2026-11-02T00:00:00Z"},
    {"startTime": "2026-11-01T00:00:00Z"},
    {"startTime": "yesterday", "endTime": "2026-11-02T00:00:00Z"},
    {"startTime": "2026-11-02T00:00:00Z", "endTime": "2026-11-01T00:00:00Z"},
    {"startTime": "2026-10-01T00:00:00Z", "endTime": "2026-11-01T00:00:01Z"},
    {"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-02T00:00:00Z", "timezone": "Mars/Olympus"},
    {"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-02T00:00:00Z", "usageType": "GPU"},
], ids=["no start", "no end", "bad start", "end before start", "over 31 days", "bad timezone", "bad usage type"])
def test_billing_rejects(fw, params):
    _, api = fw
    r = api.call("GET", "billingUsage", **params)
    assert (r.status_code, r.json()["code"]) == INVALID


def test_billing_accepts_exactly_31_days(fw):
    _, api = fw
    r = api.call("GET", "billingUsage", startTime="2026-10-01T00:00:00Z", endTime="2026-11-01T00:00:00Z")
    assert r.status_code == 200 and r.json() == {"serverlessCosts": [], "dedicatedCosts": []}


def test_inference_errors_use_the_openai_shape(fw):
    _, api = fw
    r = api.infer("accounts/demo/deployments/nope")
    assert r.status_code == 404 and set(r.json()["error"]) >= {"message", "code", "type"}
    r = api.http.post("/inference/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    api.create("d1")
    r = api.infer("accounts/demo/deployments/d1")  # still CREATING
    assert r.status_code == 503 and r.json()["error"]["code"] == "DEPLOYMENT_NOT_READY"
