"""The official SDK drives every simulator operation over HTTP; every JSON answer must match the OAS.

Responses are checked against the response schema of their operation in the official gateway
OpenAPI (``../shared/fireworks/gateway-openapi.yml``), tightened so that keys the OAS does not
declare are errors too. Error bodies are checked against ``googlerpcStatus``.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fireworks
import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.sims.conftest import MODEL

REPO = Path(__file__).resolve().parents[2]
OAS_FILE = REPO.parent / "shared" / "fireworks" / "gateway-openapi.yml"
# Fields the SDK (1.2.28) has that OAS 4.259 lacks; contract §2.2 lists them.
SDK_ONLY_FIELDS = {"gatewayDeployment": {"enableMtp": {"type": "boolean"}}}
# Hand-written in the SDK, absent from the OAS; its answer is a ListDeploymentShapeVersionsResponse.
EXTRA_OPERATIONS = {("POST", "/v1/accounts/{account_id}/deploymentShapeVersions:match"):
                    "#/components/schemas/gatewayListDeploymentShapeVersionsResponse"}


def _tighten(node: Any) -> None:
    """Forbid undeclared keys in every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _tighten(value)
    elif isinstance(node, list):
        for value in node:
            _tighten(value)


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
    checker.checks("date-time")(lambda v: not isinstance(v, str) or bool(rfc3339.match(v)))
    checker.checks("int64")(lambda v: not isinstance(v, str) or bool(re.fullmatch(r"-?\d+", v)))
    checker.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
    return checker


class OasChecker:
    """Finds the operation of a response and validates its JSON body."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.registry = Registry().with_resource(
            "urn:oas", Resource.from_contents(doc, default_specification=DRAFT202012))
        self.format_checker = _format_checker()
        self.operations: list[tuple[str, re.Pattern[str], str]] = []
        for template, item in doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/:]+", re.escape(template)) + "$")
            for method, op in item.items():
                if method in ("get", "post", "patch", "delete", "put") and "200" in op.get("responses", {}):
                    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in (
                        "paths", template, method, "responses", "200", "content", "application/json", "schema"))
                    self.operations.append((method.upper(), pattern, "#/" + quote(pointer)))
        for (method, template), ref in EXTRA_OPERATIONS.items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/:]+", re.escape(template)) + "$")
            self.operations.insert(0, (method, pattern, ref))
        self.validators: dict[str, Draft202012Validator] = {}
        self.checked: list[str] = []
        self.errors: list[str] = []

    def schema_ref(self, method: str, path: str, status: int) -> str | None:
        if status >= 400:
            return "#/components/schemas/googlerpcStatus"
        for m, pattern, ref in self.operations:
            if m == method and pattern.match(path):
                return ref
        return None

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        ref = self.schema_ref(method, path, status)
        if ref is None:
            self.errors.append(f"{method} {path}: no operation in the OAS")
            return
        validator = self.validators.get(ref)
        if validator is None:
            validator = self.validators[ref] = Draft202012Validator(
                {"$ref": "urn:oas" + ref}, registry=self.registry, format_checker=self.format_checker)
        for error in validator.iter_errors(body):
            self.errors.append(f"{method} {path} -> {status}: {error.json_path}: {error.message[:300]}")
        self.checked.append(f"{method} {path} {status}")

    def hook(self, response: httpx.Response) -> None:
        """An httpx response hook: validate every JSON control-plane answer."""
        response.read()
        path = response.request.url.path
        if not path.startswith("/v1/accounts") or "json" not in response.headers.get("content-type", ""):
            return
        self.check(response.request.method, path, response.status_code, json.loads(response.content))


@functools.lru_cache(maxsize=1)
def _checker() -> OasChecker:
    doc = yaml.safe_load(OAS_FILE.read_text())
    schemas = doc["components"]["schemas"]
    for name, extra in SDK_ONLY_FIELDS.items():
        schemas[name]["properties"].update(extra)
    _tighten(schemas)
    return OasChecker(doc)


@pytest.fixture
def oas() -> OasChecker:
    if not OAS_FILE.is_file():
        pytest.skip(f"{OAS_FILE} is absent: the shared reference docs are not next to this checkout")
    checker = _checker()  # parsing 550 kB of YAML once per session keeps the suite fast
    checker.checked, checker.errors = [], []
    return checker


@pytest.fixture
def env(fw, oas, clock):
    """(simulator, raw api, sdk client, clock), both clients validated against the OAS."""
    sim, api = fw
    api.http.event_hooks["response"].append(oas.hook)
    client = fireworks.Fireworks(api_key="sim-key", account_id="demo", base_url=sim.url, max_retries=0,
                                 http_client=httpx.Client(event_hooks={"response": [oas.hook]}))
    assert client._base_url_overridden
    yield sim, api, client, clock
    assert oas.errors == [], "\n".join(oas.errors[:20])
    assert oas.checked, "no response was validated"


def test_accounts_list_and_get(env):
    _, api, client, _ = env
    accounts = list(client.accounts.list(page_size=2))
    assert [a.name for a in accounts] == ["accounts/demo"]
    assert client.accounts.get(account_id="demo").name == "accounts/demo"
    r = api.call("GET", "/v1/accounts", pageSize=2)
    assert r.json()["totalSize"] == 1 and r.json()["nextPageToken"] == ""


def test_create_validate_only_generated_id_and_duplicate(env):
    sim, _, client, clock = env
    dry = client.deployments.create(base_model=MODEL, deployment_id="d1", deployment_shape="default",
                                    validate_only=True)
    assert dry.name == "accounts/demo/deployments/d1"
    with pytest.raises(fireworks.NotFoundError):
        client.deployments.get("d1")  # validateOnly persists nothing
    d = client.deployments.create(base_model=MODEL, deployment_id="d1", deployment_shape="default",
                                  min_replica_count=0, max_replica_count=2, display_name="demo one",
                                  autoscaling_policy={"scale_to_zero_window": "900s"})
    assert d.state == "CREATING" and d.replica_count == 0 and d.desired_replica_count == 1
    assert d.deployment_shape.startswith("accounts/fireworks/deploymentShapes/llama-v3p1-8b-instruct-minimal/versions/")
    assert d.accelerator_type == "NVIDIA_H100_80GB" and d.accelerator_count == 1
    assert d.autoscaling_policy.scale_to_zero_window == "900s"
    assert d.autoscaling_policy.scale_up_window == "30s" and d.autoscaling_policy.scale_down_window == "600s"
    with pytest.raises(fireworks.ConflictError) as exc:
        client.deployments.create(base_model=MODEL, deployment_id="d1", deployment_shape="default")
    assert exc.value.body["code"] == 6
    generated = client.deployments.create(base_model=MODEL, deployment_shape="default")
    assert re.fullmatch(r"[a-z][a-z0-9]{7}", generated.name.rsplit("/", 1)[1])
    clock.advance(5)
    assert client.deployments.get("d1").state == "READY"
    # Auto-deploy: the base model is loaded onto the new deployment.
    loaded = [m for m in client.lora.list() if m.deployment == "accounts/demo/deployments/d1"]
    assert [m.model for m in loaded] == [MODEL] and loaded[0].state == "DEPLOYED"


def test_list_250_deployments_through_pages(env):
    _, api, client, clock = env
    for i in range(250):
        api.create(f"dep-{i:03d}")
        clock.advance(1)
    names = [d.name for d in client.deployments.list(page_size=100)]
    assert names == [f"accounts/demo/deployments/dep-{i:03d}" for i in range(250)]
    first = api.call("GET", "deployments").json()
    assert len(first["deployments"]) == 50 and first["totalSize"] == 250  # default page size
    big = api.call("GET", "deployments", pageSize=1000).json()
    assert len(big["deployments"]) == 200  # coerced to 200
    rest = api.call("GET", "deployments", pageSize=1000, pageToken=big["nextPageToken"]).json()
    assert len(rest["deployments"]) == 50 and rest["nextPageToken"] == ""
    desc = api.call("GET", "deployments", pageSize=3, orderBy="create_time desc").json()
    assert [d["name"][-3:] for d in desc["deployments"]] == ["249", "248", "247"]
    bad = api.call("GET", "deployments", pageToken="not-a-token!")
    assert bad.status_code == 400 and bad.json()["code"] == 3
    mismatched = api.call("GET", "deployments", pageToken=big["nextPageToken"], orderBy="create_time desc")
    assert mismatched.status_code == 400
    client.deployments.delete("dep-000")
    clock.advance(2)
    assert client.deployments.get("dep-000").state == "DELETED"
    assert len(list(client.deployments.list(page_size=200))) == 249
    assert len(list(client.deployments.list(page_size=200, show_deleted=True))) == 250


def test_update_with_and_without_mask(env):
    _, api, client, clock = env
    api.create("d1", minReplicaCount=1, maxReplicaCount=1, displayName="before")
    clock.advance(5)
    current = client.deployments.get("d1")
    updated = client.deployments.update(
        "d1", base_model=current.base_model, min_replica_count=0, max_replica_count=3,
        display_name="ignored: not in the mask",
        autoscaling_policy={"scale_to_zero_window": "1200s", "scale_up_window": "30s"},
        extra_query={"updateMask": "min_replica_count,max_replica_count,autoscaling_policy.scale_to_zero_window"})
    assert (updated.min_replica_count, updated.max_replica_count) == (0, 3)
    assert updated.autoscaling_policy.scale_to_zero_window == "1200s"
    assert updated.display_name == "before"
    assert updated.state == "READY"  # scaling fields do not roll anything out
    assert updated.delete_time is not None  # min 0: the auto-delete clock runs
    # camelCase mask paths work too.
    r = api.call("PATCH", "deployments/d1", json={"displayName": "after", "baseModel": MODEL},
                 updateMask="displayName")
    assert r.status_code == 200 and r.json()["displayName"] == "after"
    # Without a mask only the keys sent change; output-only keys are ignored.
    r = api.call("PATCH", "deployments/d1", json={"description": "hello", "state": "DELETED", "replicaCount": 9})
    body = r.json()
    assert body["description"] == "hello" and body["state"] == "READY" and body["displayName"] == "after"
    assert body["maxReplicaCount"] == 3


def test_scale_sets_desired_and_converges(env):
    _, api, client, clock = env
    api.create("d1", minReplicaCount=0, maxReplicaCount=4)
    clock.advance(5)
    assert client.deployments.scale("d1", replica_count=3) == {}
    d = client.deployments.get("d1")
    assert (d.desired_replica_count, d.replica_count) == (3, 1)
    assert (d.min_replica_count, d.max_replica_count) == (0, 4)
    clock.advance(5)
    assert client.deployments.get("d1").replica_count == 3
    client.deployments.scale("d1", replica_count=0)
    d = client.deployments.get("d1")
    assert (d.desired_replica_count, d.replica_count, d.state) == (0, 0, "READY")
    with pytest.raises(fireworks.BadRequestError):
        client.deployments.scale("d1", replica_count=-1)


def test_soft_delete_undelete_and_hard_delete(env):
    _, api, client, clock = env
    api.create("d1")
    clock.advance(5)
    assert client.deployments.delete("d1") == {}
    d = client.deployments.get("d1")
    assert d.state == "DELETING" and d.purge_time is not None and d.replica_count == 0
    clock.advance(1)
    assert client.deployments.get("d1").state == "DELETED"
    restored = client.deployments.undelete("d1", body={})
    assert restored.state == "CREATING" and restored.purge_time is None
    clock.advance(5)
    assert client.deployments.get("d1").state == "READY"
    client.deployments.delete("d1", hard=True)
    with pytest.raises(fireworks.NotFoundError) as exc:
        client.deployments.get("d1")
    assert exc.value.body["code"] == 5
    with pytest.raises(fireworks.BadRequestError):
        api.create("d2")
        client.deployments.undelete("d2", body={})  # not deleted


def test_lora_create_load_and_unload(env):
    _, api, client, clock = env
    api.create("base", deploymentShape="default", enableAddons=True)
    model = client.models.create(model_id="my-lora", model={
        "kind": "HF_PEFT_ADDON", "display_name": "my lora",
        "peft_details": {"base_model": MODEL, "r": 16, "target_modules": ["q_proj", "v_proj"]}})
    assert model.state == "UPLOADING" and model.name == "accounts/demo/models/my-lora"
    clock.advance(5)
    assert client.models.get("my-lora").state == "READY"
    dm = client.lora.load(model="accounts/demo/models/my-lora", deployment="accounts/demo/deployments/base")
    assert dm.state == "DEPLOYING" and dm.default is True
    clock.advance(1)
    dm_id = dm.name.rsplit("/", 1)[1]
    assert client.lora.get(dm_id).state == "DEPLOYED"
    refs = client.models.get("my-lora").deployed_model_refs
    assert [r.deployment for r in refs] == ["accounts/demo/deployments/base"]
    listed = list(client.lora.list(filter='deployment="accounts/demo/deployments/base"'))
    assert {m.model for m in listed} == {MODEL, "accounts/demo/models/my-lora"}
    r = api.infer("accounts/demo/models/my-lora#accounts/demo/deployments/base")
    assert r.status_code == 200, r.text
    with pytest.raises(fireworks.ConflictError):
        client.lora.load(model="accounts/demo/models/my-lora", deployment="accounts/demo/deployments/base")
    assert client.lora.unload(dm_id) == {}
    with pytest.raises(fireworks.NotFoundError):
        client.lora.get(dm_id)
    assert api.infer("accounts/demo/models/my-lora#accounts/demo/deployments/base").status_code == 404


def test_models_catalog(env):
    _, api, client, _ = env
    catalog = list(client.models.list(account_id="fireworks", page_size=200))
    assert len(catalog) >= 12
    names = {m.name for m in catalog}
    assert {"accounts/fireworks/models/llama-v3p1-70b-instruct", "accounts/fireworks/models/deepseek-r1",
            "accounts/fireworks/models/qwen3-235b-a22b"} <= names
    m = client.models.get("llama-v3p1-70b-instruct", account_id="fireworks")
    assert m.kind == "HF_BASE_MODEL" and m.context_length == 131072 and m.supports_lora
    assert m.base_model_details.parameter_count == "70553706496"
    with pytest.raises(fireworks.NotFoundError):
        client.models.get("no-such-model", account_id="fireworks")
    assert list(client.models.list()) == []  # the account's own models


def test_shape_match_and_shapes(env):
    _, api, client, _ = env
    match = client.deployment_shape_versions.match_for_model(MODEL)
    presets = {v.snapshot.preset_type for v in match.deployment_shape_versions}
    assert presets == {"MINIMAL", "FAST", "THROUGHPUT"}
    addon = client.deployment_shape_versions.match_for_model(MODEL, enable_addons=True)
    assert [v.snapshot.enable_addons for v in addon.deployment_shape_versions] == [True]
    none = client.deployment_shape_versions.match_for_model("accounts/fireworks/models/deepseek-v3",
                                                            enable_addons=True)
    assert none.deployment_shape_versions == []
    shape = match.deployment_shape_versions[0]
    d = client.deployments.create(base_model=MODEL, deployment_id="shaped", deployment_shape=shape.snapshot.name)
    assert d.deployment_shape == shape.name
    shape_id = shape.snapshot.name.rsplit("/", 1)[1]
    assert client.deployment_shapes.get(shape_id, account_id="fireworks").name == shape.snapshot.name
    versions = list(client.deployment_shape_versions.list(shape_id, account_id="fireworks"))
    assert [v.name for v in versions] == [shape.name]
    listed = api.call("GET", "/v1/accounts/fireworks/deploymentShapes", targetModel=MODEL).json()
    assert len(listed["deploymentShapes"]) == 4


def test_auth_and_account_errors(env):
    sim, api, client, _ = env
    from tests.sims.conftest import Api

    stranger = Api(sim.url, key="wrong")
    stranger.http.event_hooks["response"] = api.http.event_hooks["response"]
    r = stranger.call("GET", "deployments")
    assert r.status_code == 401 and r.json()["code"] == 16
    r = api.http.get("/v1/accounts/demo/deployments", headers={"Authorization": ""})
    assert r.status_code == 401
    r = api.call("GET", "/v1/accounts/other/deployments")
    assert r.status_code == 403 and r.json()["code"] == 7
    r = api.call("POST", "/v1/accounts/fireworks/models", json={"modelId": "x"})
    assert r.status_code == 403
    r = api.call("GET", "deployments/nope")
    assert r.status_code == 404 and r.json() == {"code": 5, "message": r.json()["message"], "details": []}
    assert api.call("GET", "noSuchCollection").status_code == 404


def test_sdk_retries_injected_faults(env, oas):
    sim, _, _, _ = env

    def client_with(retries: int) -> fireworks.Fireworks:
        return fireworks.Fireworks(api_key="sim-key", account_id="demo", base_url=sim.url, max_retries=retries,
                                   http_client=httpx.Client(event_hooks={"response": [oas.hook]}))

    client = client_with(2)
    sim.faults.fail_next(2, status=503, retry_after=0.01)
    assert client.deployments.list().deployments == []
    assert sim.state.count_requests("GET", r"/v1/accounts/demo/deployments") == 3
    sim.faults.fail_next(1, status=429, retry_after=0.01)
    assert client.accounts.get(account_id="demo").name == "accounts/demo"
    # A create whose response is lost is committed; the SDK's retry then meets 409.
    sim.faults.lose_next_create_response()
    with pytest.raises(fireworks.ConflictError):
        client_with(1).deployments.create(base_model=MODEL, deployment_id="lost", deployment_shape="default")
    assert sim.state.get_deployment("lost")["state"] == "CREATING"


def test_billing_and_metrics_answers(env):
    sim, api, client, clock = env
    api.create("d1", minReplicaCount=1, maxReplicaCount=1)
    clock.advance(3600 + 5)
    r = api.call("GET", "billingUsage", startTime="2026-11-01T00:00:00Z", endTime="2026-11-03T00:00:00Z",
                 usageType="DEDICATED_DEPLOYMENT")
    assert r.status_code == 200
    rows = r.json()["dedicatedCosts"]
    assert [row["acceleratorSeconds"] for row in rows] == ["3600"]
    assert rows[0]["group"] == {"deployment_name": "accounts/demo/deployments/d1",
                                "accelerator_type": "NVIDIA_H100_80GB"}
    m = api.call("GET", "metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
