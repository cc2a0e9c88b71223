"""The simulator refuses what Fireworks refuses: integer ranges, bool spellings, unknown methods
and paths, unknown fields (ignored alike on POST and PATCH) and the per-type GPU quota."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from sims.fireworks.__main__ import config_from_args, main, parse_quota

from .conftest import MODEL

H100 = "NVIDIA_H100_80GB"


def shapeless(**body):
    return {"baseModel": MODEL, "acceleratorType": H100, "acceleratorCount": 8, **body}


def assert_error(r, status: int, code: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == code and isinstance(body["message"], str) and isinstance(body["details"], list)
    return body


# --- int32 / int64 ranges --------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["minReplicaCount", "maxReplicaCount", "acceleratorCount",
                                   "maxWithRevocableReplicaCount", "draftTokenCount", "maxContextLength"])
@pytest.mark.parametrize("value", [3_000_000_000, 2**31, "2147483648", -(2**31) - 1, 1e12])
def test_int32_fields_out_of_range_are_400(fw, field, value):
    _, api = fw
    r = api.call("POST", "deployments", json=shapeless(**{field: value}), deploymentId="big")
    body = assert_error(r, 400, 3)
    assert "int32" in body["message"]
    assert api.call("GET", "deployments/big").status_code == 404


def test_int32_edge_is_a_number_not_a_range_error(fw):
    _, api = fw
    # 2**31-1 still fits int32.
    r = api.call("POST", "deployments", json=shapeless(maxContextLength=2**31 - 1), deploymentId="edge")
    assert r.status_code == 200, r.text
    assert r.json()["maxContextLength"] == 2**31 - 1


def test_update_and_scale_out_of_range_are_400(fw):
    _, api = fw
    api.create("d1")
    assert_error(api.call("PATCH", "deployments/d1", json={"maxReplicaCount": 3_000_000_000}), 400, 3)
    assert_error(api.call("PATCH", "deployments/d1:scale", json={"replicaCount": 3_000_000_000}), 400, 3)
    assert_error(api.call("PATCH", "deployments/d1:scale", json={"replicaCount": "99999999999"}), 400, 3)
    assert api.dep("d1")["maxReplicaCount"] == 1


@pytest.mark.parametrize("path", ["deployments", "models", "deployedModels", "deploymentShapes"])
@pytest.mark.parametrize("size", ["2147483648", "-2147483649", "99999999999999999999", "1.5", "ten"])
def test_page_size_outside_int32_or_not_a_number_is_400(fw, path, size):
    _, api = fw
    assert_error(api.call("GET", path, pageSize=size), 400, 3)


def test_page_size_at_the_int32_edge_is_coerced(fw):
    _, api = fw
    r = api.call("GET", "deployments", pageSize=2**31 - 1)
    assert r.status_code == 200 and r.json()["deployments"] == []


# --- booleans -------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["validateOnly", "skipShapeValidation", "skipImageTagValidation",
                                  "disableAutoDeploy", "disableSpeculativeDecoding", "acceptShapelessRisk"])
@pytest.mark.parametrize("value", ["banana", "yes", "tRuE", "2", "on"])
def test_garbage_booleans_on_create_are_400(fw, flag, value):
    _, api = fw
    r = api.call("POST", "deployments", json={"baseModel": MODEL, "deploymentShape": "default"},
                 deploymentId="b1", **{flag: value})
    body = assert_error(r, 400, 3)
    assert flag in body["message"]
    assert api.call("GET", "deployments/b1").status_code == 404


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "t", "1"])
def test_parse_bool_spellings_are_accepted(fw, value):
    _, api = fw
    r = api.call("POST", "deployments", json={"baseModel": MODEL, "deploymentShape": "default"},
                 deploymentId="v1", validateOnly=value)
    assert r.status_code == 200, r.text
    assert api.call("GET", "deployments/v1").status_code == 404  # validateOnly: nothing persisted


def test_garbage_booleans_elsewhere_are_400(fw):
    _, api = fw
    api.create("d1")
    assert_error(api.call("DELETE", "deployments/d1", ignoreChecks="yes"), 400, 3)
    assert_error(api.call("DELETE", "deployments/d1", hard="maybe"), 400, 3)
    assert_error(api.call("PATCH", "deployments/d1", json={"displayName": "x"}, skipShapeValidation="nope"), 400, 3)
    assert_error(api.call("GET", "deployments", showDeleted="sure"), 400, 3)
    assert_error(api.call("POST", "deployedModels", json={"model": MODEL, "deployment": "accounts/demo/deployments/d1"},
                          replaceMergedAddon="x"), 400, 3)
    assert api.dep("d1")["displayName"] == ""
    assert api.dep("d1")["state"] != "DELETED"


# --- unknown fields -----------------------------------------------------------------------------

def test_unknown_fields_are_ignored_on_post_and_patch_alike(fw):
    _, api = fw
    created = api.create("u1", bogusField=1, anotherOne={"x": 1})
    assert "bogusField" not in created
    r = api.call("PATCH", "deployments/u1", json={"bogusField": 2, "displayName": "renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["displayName"] == "renamed" and "bogusField" not in r.json()
    only_unknown = api.call("PATCH", "deployments/u1", json={"bogusField": 3})
    assert only_unknown.status_code == 200 and only_unknown.json()["displayName"] == "renamed"


def test_an_update_mask_naming_no_field_is_still_400(fw):
    _, api = fw
    api.create("u1")
    r = api.call("PATCH", "deployments/u1", json={"displayName": "x"}, updateMask="display_name,no_such_field")
    assert_error(r, 400, 3)
    assert api.dep("u1")["displayName"] == ""


# --- methods and paths --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["PUT", "TRACE", "OPTIONS", "PATCH", "POST"])
def test_other_methods_on_a_known_path_are_json_405(fw, method):
    _, api = fw
    r = api.call(method, "deployments/d1" if method != "PATCH" else "deployments")
    body = assert_error(r, 405, 12)
    assert "not allowed" in body["message"]
    assert r.headers["allow"]


@pytest.mark.parametrize("method", ["GET", "PUT", "TRACE", "DELETE", "OPTIONS"])
def test_unknown_paths_are_json_404(fw, method):
    _, api = fw
    assert_error(api.call(method, "/v2/nothing/here"), 404, 5)
    assert_error(api.call(method, "noSuchCollection"), 404, 5)


def test_head_gets_a_status_and_no_body(fw):
    _, api = fw
    r = api.http.head("/v1/accounts/demo/deployments")
    assert r.status_code == 405 and r.content == b""


def test_inference_paths_take_only_post(fw):
    _, api = fw
    r = api.call("GET", "/inference/v1/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "UNIMPLEMENTED"  # OpenAI's error shape


def raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.connect()
    conn.sock.sendall(request)
    resp = http.client.HTTPResponse(conn.sock, method="GET")
    resp.begin()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_any_method_token_gets_a_json_answer(fw):
    sim, _ = fw
    status, headers, body = raw(sim.url, b"FROBNICATE /v1/accounts/demo/deployments HTTP/1.1\r\n"
                                         b"Host: x\r\nAuthorization: Bearer sim-key\r\nContent-Length: 0\r\n\r\n")
    assert status == 405 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == 12


def test_a_malformed_request_line_gets_a_json_error(fw):
    sim, _ = fw
    status, headers, body = raw(sim.url, b"GET /a b HTTP/1.1\r\n\r\n")
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == 3


# --- GPU quota ----------------------------------------------------------------------------------

def test_no_quota_unless_configured(fw):
    _, api = fw
    r = api.call("POST", "deployments", json=shapeless(minReplicaCount=1, maxReplicaCount=1000), deploymentId="huge")
    assert r.status_code == 200


def test_create_over_quota_is_429_naming_quota_usage_and_ask(make_sim):
    _, api = make_sim(gpu_quota={H100: 32})
    assert api.call("POST", "deployments", json=shapeless(maxReplicaCount=3), deploymentId="a").status_code == 200
    r = api.call("POST", "deployments", json=shapeless(maxReplicaCount=2), deploymentId="b")
    body = assert_error(r, 429, 8)
    assert r.headers["x-should-retry"] == "false"
    assert "quota" in body["message"] and "32" in body["message"] and "24" in body["message"]
    info = body["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" and info["reason"] == "GPU_QUOTA_EXCEEDED"
    assert info["metadata"] == {"quota": f"gpu_quota/{H100}", "acceleratorType": H100, "limit": "32",
                                "inUse": "24", "requested": "16", "replicas": "2", "acceleratorsPerReplica": "8"}
    assert api.call("GET", "deployments/b").status_code == 404
    # validateOnly is refused the same way; a fit is fine; other types have their own quota.
    assert api.call("POST", "deployments", json=shapeless(maxReplicaCount=2), deploymentId="b",
                    validateOnly=True).status_code == 429
    assert api.call("POST", "deployments", json=shapeless(maxReplicaCount=1), deploymentId="c").status_code == 200
    other = shapeless(acceleratorType="NVIDIA_A100_80GB", maxReplicaCount=4)
    assert api.call("POST", "deployments", json=other, deploymentId="d").status_code == 200


def test_fwbot_sim_defaults_to_32_gpus_of_each_type():
    cfg = config_from_args(_args())
    assert cfg.quota_for(H100) == 32 and cfg.quota_for("NVIDIA_B200_180GB") == 32


def test_scale_and_update_over_quota_are_429_and_change_nothing(make_sim):
    _, api = make_sim(gpu_quota={H100: 32})
    assert api.call("POST", "deployments", json=shapeless(maxReplicaCount=1), deploymentId="a").status_code == 200
    r = api.call("PATCH", "deployments/a:scale", json={"replicaCount": 500})
    body = assert_error(r, 429, 8)
    assert body["details"][0]["metadata"]["requested"] == "4000"
    r = api.call("PATCH", "deployments/a", json={"maxReplicaCount": 5})
    assert_error(r, 429, 8)
    dep = api.dep("a")
    assert dep["maxReplicaCount"] == 1 and dep["desiredReplicaCount"] <= 1
    # Within the quota, both work; shrinking is never refused.
    assert api.call("PATCH", "deployments/a", json={"maxReplicaCount": 4}).status_code == 200
    assert api.call("PATCH", "deployments/a:scale", json={"replicaCount": 4}).status_code == 200
    assert api.call("PATCH", "deployments/a", json={"maxReplicaCount": 2}).status_code == 200


def test_deleted_deployments_free_their_quota(make_sim, clock):
    _, api = make_sim(gpu_quota={H100: 16})
    assert api.call("POST", "deployments", json=shapeless(maxReplicaCount=2), deploymentId="a").status_code == 200
    assert api.call("POST", "deployments", json=shapeless(), deploymentId="b").status_code == 429
    assert api.call("DELETE", "deployments/a").status_code == 200
    clock.advance(5)
    assert api.call("POST", "deployments", json=shapeless(), deploymentId="b").status_code == 200
    # Undeleting `a` would need 16 more: refused too.
    assert_error(api.call("POST", "deployments/a:undelete"), 429, 8)


def _args(*argv: str):
    import argparse

    ns = argparse.Namespace(account_id="demo", api_key="sim-key", relaxed=False, create_seconds=5.0,
                            fail_rate=0.0, latency_ms=0, auto_delete_after="168h", state_file=None, quota=None)
    for item in argv:
        key, _, value = item.partition("=")
        setattr(ns, key, value)
    return ns


def test_quota_flag():
    assert parse_quota("NVIDIA_H100_80GB=16, NVIDIA_A100_80GB=8") == ({H100: 16, "NVIDIA_A100_80GB": 8}, None)
    assert parse_quota("*=4,NVIDIA_H100_80GB=0") == ({H100: 0}, 4)
    cfg = config_from_args(_args("quota=NVIDIA_H100_80GB=8,*=64"))
    assert cfg.quota_for(H100) == 8 and cfg.quota_for("NVIDIA_A100_80GB") == 64
    for bad in ("H100=8", "NVIDIA_H100_80GB", "NVIDIA_H100_80GB=-1", "NVIDIA_H100_80GB=lots"):
        with pytest.raises(ValueError):
            parse_quota(bad)


def test_bad_quota_flag_exits_2(capsys):
    assert main(["--quota", "H100=8", "--port", "0"]) == 2
    assert "--quota" in capsys.readouterr().err


# --- what schemathesis found (tests/sims/test_schemathesis.py) -----------------------------------

def test_empty_integer_bool_and_enum_query_values_are_400(fw):
    # grpc-gateway hands "" to strconv.ParseInt / ParseBool / the enum lookup, which refuse it.
    _, api = fw
    api.create("d1")
    assert_error(api.call("GET", "deployments", pageSize=""), 400, 3)
    assert_error(api.call("GET", "deployments", showDeleted=""), 400, 3)
    assert_error(api.call("DELETE", "deployments/d1", hard=""), 400, 3)
    assert_error(api.call("GET", "billingUsage", startTime="2026-11-01T00:00:00Z",
                          endTime="2026-11-02T00:00:00Z", usageType=""), 400, 3)
    assert api.dep("d1")["state"] != "DELETING"


def test_shape_read_parses_skip_shape_validation(fw):
    _, api = fw
    path = "/v1/accounts/fireworks/deploymentShapes/llama-v3p1-8b-instruct-fast"
    assert api.call("GET", path, skipShapeValidation="true").json()["name"].endswith("-fast")
    assert_error(api.call("GET", path, skipShapeValidation="13545966888147584"), 400, 3)


@pytest.mark.parametrize("field", ["model", "deployment", "displayName", "serverless", "public"])
def test_lora_load_with_a_wrongly_typed_field_is_400_not_500(fw, field):
    _, api = fw
    api.create("d1", enableAddons=True)
    body = {"model": MODEL, "deployment": "accounts/demo/deployments/d1", field: [None, None]}
    assert_error(api.call("POST", "deployedModels", json=body), 400, 3)


@pytest.mark.parametrize("field, value", [
    ("placement", False), ("placement", 0), ("autoTune", []), ("autoTune", {"longPrompt": "yes"}),
    ("annotations", ""), ("directRouteApiKeys", {}), ("hotLoadBucketType", {}), ("precision", 0),
    ("expireTime", ""), ("expireTime", "tomorrow"), ("expireTime", 5),
    ("autoscalingPolicy", {"loadTargets": []}),
])
def test_falsy_values_of_the_wrong_type_are_400(fw, field, value):
    # Only null (or leaving the field out) means "unset"; false, 0, "" or [] for an object, an
    # enum or a timestamp is a value of the wrong type.
    _, api = fw
    r = api.call("POST", "deployments", json=shapeless(**{field: value}), deploymentId="w")
    assert_error(r, 400, 3)
    assert api.call("GET", "deployments/w").status_code == 404


def test_null_fields_are_unset(fw):
    _, api = fw
    r = api.call("POST", "deployments", deploymentId="n",
                 json=shapeless(placement=None, autoTune=None, annotations=None, hotLoadBucketType=None,
                                expireTime=None, displayName=None))
    assert r.status_code == 200, r.text
    assert r.json()["placement"] == {"multiRegion": "GLOBAL"} and r.json()["annotations"] == {}


def test_expire_time_is_echoed_with_a_four_digit_year(fw):
    _, api = fw
    r = api.call("POST", "deployments", json=shapeless(expireTime="0071-11-04T13:12:17+01:00"), deploymentId="e")
    assert r.status_code == 200, r.text
    assert r.json()["expireTime"] == "0071-11-04T12:12:17Z"
    assert_error(api.call("POST", "deployments", json=shapeless(expireTime="9999-12-31T23:00:00-05:00"),
                          deploymentId="e2"), 400, 3)


SCHEDULE = {"minReplicaCount": 1, "schedule": "0 8 * * Mon-Fri", "duration": "36000s", "timezone": "Europe/Berlin"}


def test_scaling_schedules_are_checked_and_echoed_whole(fw):
    _, api = fw
    r = api.call("POST", "deployments", deploymentId="s",
                 json=shapeless(maxReplicaCount=2, autoscalingPolicy={"scalingSchedules": {"office": SCHEDULE}}))
    assert r.status_code == 200, r.text
    assert r.json()["autoscalingPolicy"]["scalingSchedules"] == {
        "office": {**SCHEDULE, "description": "", "disabled": False}}


@pytest.mark.parametrize("change", [
    {"timezone": None}, {"timezone": "Mars/Olympus"}, {"schedule": ""}, {"schedule": "0 8 * *"},
    {"duration": "299s"}, {"duration": "604801s"}, {"duration": "600.5s"}, {"duration": ""},
    {"minReplicaCount": 3}, {"minReplicaCount": -1}, {"disabled": "no"},
])
def test_bad_scaling_schedules_are_400(fw, change):
    _, api = fw
    policy = {"scalingSchedules": {"office": {**SCHEDULE, **change}}}
    r = api.call("POST", "deployments", json=shapeless(maxReplicaCount=2, autoscalingPolicy=policy),
                 deploymentId="s")
    assert_error(r, 400, 3)


def test_at_most_five_scaling_schedules(fw):
    _, api = fw
    policy = {"scalingSchedules": {f"s{i}": SCHEDULE for i in range(6)}}
    assert_error(api.call("POST", "deployments", json=shapeless(maxReplicaCount=2, autoscalingPolicy=policy),
                          deploymentId="s"), 400, 3)
