"""Schemathesis against the Fireworks simulator, on the operations fwbot uses.

Cases are generated from Fireworks' gateway OpenAPI (``../shared/fireworks/gateway-openapi.yml``,
read in place; skipped with a reason when it is absent) with a fixed seed and a bounded count,
and sent over HTTP to a simulator on 127.0.0.1: the coverage phase's deterministic cases plus
MAX_EXAMPLES generated ones per operation, about 2,500 requests in all. Every answer must be no
server error and match the response schema of its operation, and an invalid request must be
refused. Status codes are not checked against the document: it lists only 200 for every
operation. Where the document says something Fireworks does not do, the exclusion is narrow and
says why (``_valid_as_fireworks_reads_it``, ``allow-extra-parameters``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import hypothesis
import pytest
import yaml

schemathesis = pytest.importorskip("schemathesis")

from jsonschema import Draft202012Validator  # noqa: E402
from referencing import Registry, Resource  # noqa: E402
from referencing.jsonschema import DRAFT202012  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    negative_data_rejection,
    response_schema_conformance,
)

from bot.core.clock import FakeClock  # noqa: E402
from sims.fireworks import FireworksSimulator, SimConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OAS_FILE = REPO / ".." / "shared" / "fireworks" / "gateway-openapi.yml"
if not OAS_FILE.exists():
    pytest.skip(f"{OAS_FILE} is absent", allow_module_level=True)

ACCOUNT = "demo"
KEY = "sim-key"
SEED = 20261123

# The gateway operations bot/adapters/fireworks.py calls (through the SDK or plain HTTP) on the bot's own
# account. deploymentShapeVersions:match and the Prometheus metrics endpoint are not in the document.
ACCOUNT_OPERATIONS = [
    "Gateway_ListAccounts",
    "Gateway_CreateDeployment",
    "Gateway_GetDeployment",
    "Gateway_ListDeployments",
    "Gateway_UpdateDeployment",
    "Gateway_DeleteDeployment",
    "Gateway_UndeleteDeployment",
    "Gateway_ScaleDeployment",
    "Gateway_CreateDeployedModel",
    "Gateway_ListDeployedModels",
    "Gateway_DeleteDeployedModel",
    "Gateway_GetAccountUsage",
]
# ... and on the public catalog (accounts/fireworks): its models and their deployment shapes.
CATALOG_OPERATIONS = [
    "Gateway_GetModel",
    "Gateway_ListModels",
    "Gateway_ListDeploymentShapes",
    "Gateway_GetDeploymentShape",
    "Gateway_ListDeploymentShapeVersions",
    "Gateway_GetDeploymentShapeVersion",
]

MODEL = "llama-v3p1-8b-instruct"
SHAPE = f"{MODEL}-fast"
# Known names, so that generated requests reach existing objects as well as missing ones.
DICTIONARIES = {
    "deployments": ["live", "gone", "missing-one"],
    "models": [MODEL, "qwen3-8b", "no-such-model"],
    "base_models": [f"accounts/fireworks/models/{MODEL}", "accounts/fireworks/models/qwen3-8b"],
    "addons": [f"accounts/{ACCOUNT}/models/my-lora", f"accounts/fireworks/models/{MODEL}"],
    "deployment_names": [f"accounts/{ACCOUNT}/deployments/live", f"accounts/{ACCOUNT}/deployments/gone"],
    "shapes": ["default", f"accounts/fireworks/deploymentShapes/{SHAPE}"],
    "shape_ids": [SHAPE, f"{MODEL}-multi-lora", "no-such-shape"],
    "times": ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-20T00:00:00Z"],
    "timezones": ["UTC", "America/New_York"],
}
MAX_EXAMPLES = 40  # per operation, on top of the coverage phase's deterministic cases

# Requests Fireworks accepts, added to the document (in memory) as examples: its schemas cannot
# say that a create needs a shape or an accelerator type, a LoRA load an addon-enabled deployment
# or a usage report a real time zone and an end after its start, so generated requests are
# nearly always refused and the accepting path would go unchecked.
REQUEST_EXAMPLES = {
    ("/v1/accounts/{account_id}/deployments", "post"): {
        "shaped": {"baseModel": f"accounts/fireworks/models/{MODEL}", "deploymentShape": "default",
                   "displayName": "shaped", "minReplicaCount": 0, "maxReplicaCount": 2,
                   "autoscalingPolicy": {"scaleToZeroWindow": "600s", "loadTargets": {"default": 0.7}},
                   "annotations": {"team": "ml"}},
        "shapeless": {"baseModel": f"accounts/fireworks/models/{MODEL}", "acceleratorType": "NVIDIA_H100_80GB",
                      "acceleratorCount": 1, "precision": "FP8", "placement": {"multiRegion": "US"}},
        "addons": {"baseModel": f"accounts/fireworks/models/{MODEL}", "deploymentShape": "default",
                   "enableAddons": True, "placement": {"region": "US_IOWA_1"}},
    },
    ("/v1/accounts/{account_id}/deployedModels", "post"): {
        "lora": {"model": f"accounts/{ACCOUNT}/models/my-lora", "deployment": f"accounts/{ACCOUNT}/deployments/live"},
    },
    ("/v1/accounts/{account_id}/deployments/{deployment_id}", "patch"): {
        "rescale": {"baseModel": f"accounts/fireworks/models/{MODEL}", "minReplicaCount": 1, "maxReplicaCount": 3,
                    "displayName": "patched"},
    },
    ("/v1/accounts/{account_id}/deployments/{deployment_id}:scale", "patch"): {
        "scale": {"replicaCount": 2},
    },
}
PARAMETER_EXAMPLES = {
    ("/v1/accounts/{account_id}/billingUsage", "get"): {
        "startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-03T00:00:00Z", "timezone": "Europe/Berlin",
        "usageType": "DEDICATED_DEPLOYMENT", "groupBy": ["deployment_name", "accelerator_type"],
    },
}


def _document() -> dict:
    doc = yaml.load(OAS_FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for (path, method), examples in REQUEST_EXAMPLES.items():
        media = doc["paths"][path][method]["requestBody"]["content"]["application/json"]
        media["examples"] = {name: {"value": value} for name, value in examples.items()}
    for (path, method), values in PARAMETER_EXAMPLES.items():
        for parameter in doc["paths"][path][method]["parameters"]:
            if parameter["name"] in values:
                parameter["example"] = values[parameter["name"]]
    return doc


DOCUMENT = _document()


def load(account: str, operations: list[str]):
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {KEY}"},
        "dictionaries": {name: {"values": values} for name, values in DICTIONARIES.items()},
        "parameters": {
            "path.account_id": account,
            "path.deployment_id": {"dictionary": "deployments", "probability": 0.7},
            "path.model_id": {"dictionary": "models", "probability": 0.7},
            "path.deployment_shape_id": {"dictionary": "shape_ids", "probability": 0.7},
            "body.baseModel": {"dictionary": "base_models", "probability": 0.7},
            "body.model": {"dictionary": "addons", "probability": 0.7},
            "body.deployment": {"dictionary": "deployment_names", "probability": 0.7},
            "body.deploymentShape": {"dictionary": "shapes", "probability": 0.5},
            "query.startTime": {"dictionary": "times", "probability": 0.8},
            "query.endTime": {"dictionary": "times", "probability": 0.8},
            "query.timezone": {"dictionary": "timezones", "probability": 0.8},
        },
        # Extra query parameters are not sent: grpc-gateway ignores a parameter that names no
        # field, as the simulator does, so they would only be invalid in the document's eyes.
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "allow-extra-parameters": False},
        "phases": {"stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_dict(DOCUMENT, config=config).include(operation_id=operations)


account_schema = load(ACCOUNT, ACCOUNT_OPERATIONS)
catalog_schema = load("fireworks", CATALOG_OPERATIONS)
REGISTRY = Registry().with_resource("urn:oas", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = REGISTRY.resolver("urn:oas").lookup("urn:oas" + schema["$ref"]).contents
    return schema


def _without_null_fields(value, schema: dict):
    """``value`` without the fields it sets to null (map entries and list items are kept)."""
    schema = _resolve(schema)
    if not isinstance(value, dict):
        return value
    fields = schema.get("properties") or {}
    return {k: _without_null_fields(v, fields[k]) if k in fields else v
            for k, v in value.items() if not (k in fields and v is None)}


def _valid_as_fireworks_reads_it(case) -> bool:
    """Whether a negative case whose only negated part is its body is valid as Fireworks reads it.

    Three things the document says differently from what Fireworks does, and only these:

    - Fireworks reads JSON with protojson, for which null is a valid value of every field and
      means the field's default (the document marks no field nullable).
    - grpc-gateway reads a body of nothing but whitespace as an empty message (its decoder's
      end-of-input is not an error).
    - An update may leave ``baseModel`` out, although the document marks it required: Fireworks'
      own training SDK PATCHes ``{"minReplicaCount": 0, "maxReplicaCount": 0}`` alone to scale a
      deployment to zero (contract §2.1).
    """
    meta = case.meta
    negative = {loc for loc, component in meta.components.items() if component.mode.is_negative}
    if negative != {ParameterLocation.BODY}:
        return False
    method = case.operation.method.lower()
    where = ("paths", case.operation.path, method, "requestBody", "content", "application/json", "schema")
    schema = DOCUMENT
    for key in where:
        schema = schema[key]
    if isinstance(case.body, str | bytes) and not case.body.strip():
        reading = {}
    elif isinstance(case.body, dict):
        reading = _without_null_fields(case.body, schema)
    else:
        return False
    if (case.operation.path, method) == ("/v1/accounts/{account_id}/deployments/{deployment_id}", "patch"):
        reading.setdefault("baseModel", f"accounts/fireworks/models/{MODEL}")
    pointer = "/".join(quote(k.replace("~", "~0").replace("/", "~1")) for k in where)
    validator = Draft202012Validator({"$ref": f"urn:oas#/{pointer}"}, registry=REGISTRY)
    return reading != case.body and validator.is_valid(reading)


def rejects_invalid_data(ctx, response, case):
    """``negative_data_rejection``, except for bodies Fireworks reads as valid where the document
    says otherwise (see ``_valid_as_fireworks_reads_it``): those are narrowly let through."""
    if case.meta is not None and case.meta.generation.mode.is_negative and _valid_as_fireworks_reads_it(case):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [not_a_server_error, response_schema_conformance, rejects_invalid_data]
SETTINGS = hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None,
                               suppress_health_check=list(hypothesis.HealthCheck))


@pytest.fixture
def sim_url():
    """A fresh simulator per operation, holding a READY deployment (``live``), a soft-deleted one
    (``gone``) and a LoRA addon (``my-lora``)."""
    clock = FakeClock()
    sim = FireworksSimulator(SimConfig(account_id=ACCOUNT, api_key=KEY, create_seconds=5.0), clock=clock)
    sim.start(host="127.0.0.1", port=0)
    api = httpx.Client(base_url=f"{sim.url}/v1/accounts/{ACCOUNT}", headers={"Authorization": f"Bearer {KEY}"})
    for dep_id in ("live", "gone"):
        r = api.post("/deployments", params={"deploymentId": dep_id},
                     json={"baseModel": f"accounts/fireworks/models/{MODEL}", "deploymentShape": "default",
                           "enableAddons": True})
        assert r.status_code == 200, r.text
    r = api.post("/models", json={"modelId": "my-lora",
                                  "model": {"peftDetails": {"baseModel": f"accounts/fireworks/models/{MODEL}"}}})
    assert r.status_code == 200, r.text
    clock.advance(60)
    assert api.delete("/deployments/gone").status_code == 200
    clock.advance(60)
    assert [api.get(f"/deployments/{d}").json()["state"] for d in ("live", "gone")] == ["READY", "DELETED"]
    api.close()
    yield sim.url
    sim.stop()


@account_schema.parametrize()
@SETTINGS
def test_account_operations(case, sim_url):
    case.call_and_validate(base_url=sim_url, checks=CHECKS)


@catalog_schema.parametrize()
@SETTINGS
def test_catalog_operations(case, sim_url):
    case.call_and_validate(base_url=sim_url, checks=CHECKS)
