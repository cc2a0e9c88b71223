"""The in-memory model of one simulated Fireworks account, driven by a clock.

Time is evaluated lazily and exactly: before anything reads or changes the model, ``advance(now)``
replays every event that fell due since the last call, in time order, at the instant it fell due
(a scale-to-zero that became due at T is recorded at T, not when someone next looks). Billing
integrates the replica timeline these events produce.

All times inside are POSIX seconds (float); the wire format is produced by the ``*_wire`` methods.
Callers hold ``lock`` around ``advance`` plus the operation (the HTTP layer does this).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import string
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import billing, catalog, metrics
from .config import SimConfig
from .wire import (
    ApiError,
    bool_param,
    camel,
    check_range,
    first,
    fmt_duration,
    invalid,
    not_found,
    paginate,
    parse_duration,
    parse_ts,
    precondition,
    ts,
)

# assumption: ids breaking the documented rule (uppercase, underscores, ...) are 400 INVALID_ARGUMENT.
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")

CREATING, READY, UPDATING, DELETING, DELETED, FAILED = (
    "CREATING", "READY", "UPDATING", "DELETING", "DELETED", "FAILED")

# assumption: DELETING is brief; one second before the deployment shows as DELETED.
DELETING_SECONDS = 1.0
# assumption: an uploaded LoRA model turns READY one second after it is created, and a loaded
# addon is DEPLOYED one second after the load (once its deployment is serving).
MODEL_UPLOAD_SECONDS = 1.0
ADDON_LOAD_SECONDS = 1.0
# assumption: one replica serves 5 requests/s at 100 % load; desired replicas are
# ceil(rate / (5 * loadTarget)) over the last minute.
REPLICA_CAPACITY_RPS = 5.0
# Contract §2.1 leaves "in use" undefined; traffic within this long before a delete counts.
IN_USE_SECONDS = 60.0

DEFAULT_AUTOSCALING = {
    "scaleUpWindow": "30s",
    "scaleDownWindow": "600s",
    "scaleToZeroWindow": "3600s",
    "loadTargets": {"default": 0.8},
}
LOAD_TARGET_KEYS = {"default", "tokens_generated_per_second", "prompt_tokens_per_second",
                    "requests_per_second", "concurrent_requests"}

# Every field a client may set, with the value grpc-gateway emits when it is unset.
# assumption: zero values and empty lists/maps are emitted (grpc-gateway EmitUnpopulated), unset
# timestamps are omitted, and unknown request keys are ignored.
DEFAULT_SPEC: dict[str, Any] = {
    "displayName": "",
    "description": "",
    "annotations": {},
    "minReplicaCount": 0,
    "maxReplicaCount": 0,  # filled in as max(min, 1) unless given
    "maxWithRevocableReplicaCount": 0,
    "autoscalingPolicy": DEFAULT_AUTOSCALING,
    "baseModel": "",
    "acceleratorCount": 0,
    "acceleratorType": "ACCELERATOR_TYPE_UNSPECIFIED",
    "precision": "PRECISION_UNSPECIFIED",
    "enableAddons": False,
    "draftTokenCount": 0,
    "draftModel": "",
    "ngramSpeculationLength": 0,
    "enableSessionAffinity": False,
    "directRouteApiKeys": [],
    "numPeftDeviceCached": 0,
    "directRouteType": "DIRECT_ROUTE_TYPE_UNSPECIFIED",
    "deploymentTemplate": "",
    "autoTune": {"longPrompt": False},
    "placement": {"multiRegion": "GLOBAL"},
    "maxContextLength": 0,
    "disableDeploymentSizeValidation": False,
    "enableHotLoad": False,
    "hotLoadBucketType": "BUCKET_TYPE_UNSPECIFIED",
    "enableHotReloadLatestAddon": False,
    "enableMtp": False,
    "deploymentShape": "",
    "activeModelVersion": "",
    "targetModelVersion": "",
    "hotLoadBucketUrl": "",
    "pricingPlanId": "",
    "hotLoadTrainerJob": "",
    "expireTime": None,
}
OUTPUT_ONLY = {"name", "createTime", "updateTime", "purgeTime", "deleteTime", "state", "status",
               "desiredReplicaCount", "replicaCount", "replicaStats", "region", "cluster",
               "directRouteHandle"}
INT_FIELDS = ("minReplicaCount", "maxReplicaCount", "maxWithRevocableReplicaCount", "acceleratorCount",
              "draftTokenCount", "ngramSpeculationLength", "numPeftDeviceCached", "maxContextLength")
BOOL_FIELDS = ("enableAddons", "enableSessionAffinity", "disableDeploymentSizeValidation", "enableHotLoad",
               "enableHotReloadLatestAddon", "enableMtp")
STRING_FIELDS = ("displayName", "description", "baseModel", "draftModel", "deploymentTemplate",
                 "deploymentShape", "activeModelVersion", "targetModelVersion", "hotLoadBucketUrl",
                 "pricingPlanId", "hotLoadTrainerJob")
ENUM_FIELDS = {
    "acceleratorType": catalog.ACCELERATOR_TYPES,
    "precision": catalog.PRECISIONS,
    "directRouteType": catalog.DIRECT_ROUTE_TYPES,
    "hotLoadBucketType": catalog.BUCKET_TYPES,
}
# assumption: a change to any of these rolls new replicas out (UPDATING, create_seconds long, old
# replicas keep serving and billing); scaling fields apply in place without UPDATING.
SERVING_FIELDS = ("deploymentShape", "acceleratorType", "acceleratorCount", "precision", "baseModel",
                  "maxContextLength", "autoTune", "draftModel", "draftTokenCount", "ngramSpeculationLength",
                  "enableMtp")
# assumption: a deployment's description is held to the limit documented for model and shape
# descriptions (fewer than 1000 characters, contract §1).
DESCRIPTION_LIMIT = 1000
SCALING_FIELDS = ("minReplicaCount", "maxReplicaCount", "autoscalingPolicy")
# Map-valued fields: an update replaces them whole rather than key by key.
WHOLE_FIELDS = {"annotations", "placement", "autoTune", "directRouteApiKeys", "autoscalingPolicy.loadTargets",
                "autoscalingPolicy.scalingSchedules"}


@dataclass
class Deployment:
    """One deployment and the autoscaler's bookkeeping for it."""

    id: str
    seq: int
    spec: dict[str, Any]
    create_time: float
    update_time: float
    state: str = CREATING
    status_code: str = "OK"
    status_message: str = ""
    ready_at: float | None = None
    replicas: int = 0
    desired: int = 0
    pending_at: float | None = None  # when ``replicas`` reaches ``desired`` (start-up)
    upscale_at: float | None = None  # an autoscaler decision waiting out the scale-up window
    upscale_to: int = 0
    high_load_until: float = 0.0  # last time the load needed the current replica count
    idle_since: float = 0.0  # start of the current no-traffic period, for scale-to-zero
    anchor: float = 0.0  # start of the unused period, for auto-delete
    last_traffic: float | None = None
    deleted_at: float | None = None
    deleting_until: float | None = None
    purge_time: float | None = None
    billed_type: str = ""
    billed_count: int = 0

    @property
    def name(self) -> str:
        return self.spec["_name"]

    @property
    def min(self) -> int:
        return int(self.spec["minReplicaCount"])

    @property
    def max(self) -> int:
        return int(self.spec["maxReplicaCount"])

    def window(self, key: str) -> float:
        return parse_duration(self.spec["autoscalingPolicy"][key], key)


@dataclass
class OwnModel:
    """A model uploaded to the account (LoRA addons)."""

    id: str
    spec: dict[str, Any]
    create_time: float
    ready_at: float


@dataclass
class DeployedModel:
    """A model loaded onto a deployment."""

    id: str
    model: str
    deployment: str
    create_time: float
    update_time: float
    loaded_at: float
    display_name: str = ""
    description: str = ""
    default: bool = False
    public: bool = False
    serverless: bool = False


@dataclass
class HttpRequest:
    """One request the simulator answered, for tests that count calls."""

    method: str
    path: str
    status: int
    t: float


def _random_id(rng: random.Random) -> str:
    # assumption: observed generated ids are 8 lowercase alphanumerics starting with a letter (contract §1).
    return rng.choice(string.ascii_lowercase) + "".join(
        rng.choice(string.ascii_lowercase + string.digits) for _ in range(7))


def _get_path(obj: dict[str, Any], path: str) -> tuple[bool, Any]:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


def _leaf_paths(body: dict[str, Any], prefix: str = "") -> list[str]:
    """The field paths present in a PATCH body (grpc-gateway infers the mask from these)."""
    out = []
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in WHOLE_FIELDS and value:
            out.extend(_leaf_paths(value, path + "."))
        else:
            out.append(path)
    return out


def _as_int(value: Any, field_name: str, fmt: str = "int32") -> int:
    # protojson accepts int32 as a JSON number or a decimal string, and refuses one that overflows
    # the field's format (every integer a deployment request carries is int32 in the OpenAPI).
    if isinstance(value, bool):
        raise invalid(f"invalid value for {field_name}: {value!r}")
    if isinstance(value, int):
        return check_range(value, field_name, fmt)
    if isinstance(value, float) and value.is_integer():
        return check_range(int(value), field_name, fmt)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return check_range(int(value), field_name, fmt)
    raise invalid(f"invalid value for {field_name}: {value!r}")


class SimState:
    """Deployments, models, deployed models, traffic and the billing ledger of one account."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.account = config.account_id
        self.lock = threading.RLock()
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self.deployments: dict[str, Deployment] = {}
        self.models: dict[str, OwnModel] = {}
        self.deployed_models: dict[str, DeployedModel] = {}
        self.ledgers: dict[str, billing.Ledger] = {}
        self.traffic: dict[str, deque[metrics.RequestRecord]] = {}
        self.requests: list[HttpRequest] = []
        self.metrics_calls: deque[float] = deque()
        self.seq = 0
        self.dirty = False
        # Set by the simulator so that test helpers read the model as of the clock's now.
        self.now_fn: Callable[[], float] | None = None

    # --- time ----------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Process every event due up to ``now``, each at its own due time."""
        if now < self.now:
            return  # a clock that stepped back: never undo history
        self.now = now
        for dep_id in list(self.deployments):
            d = self.deployments[dep_id]
            for _ in range(10_000):
                event = self._next_event(d, now)
                if event is None:
                    break
                t, kind = event
                self._apply(d, t, kind)
                self.dirty = True
                if dep_id not in self.deployments:
                    break

    def _next_event(self, d: Deployment, now: float) -> tuple[float, str] | None:
        candidates: list[tuple[float, int, str]] = []
        if d.state in (CREATING, UPDATING) and d.ready_at is not None:
            candidates.append((d.ready_at, 0, "ready"))
        if d.state in (READY, UPDATING):
            if d.pending_at is not None:
                candidates.append((d.pending_at, 1, "pending"))
            if d.upscale_at is not None:
                candidates.append((d.upscale_at, 2, "upscale"))
            floor = min(max(d.min, 1), d.max)
            if d.replicas > floor and d.pending_at is None and d.desired == d.replicas:
                candidates.append((d.high_load_until + d.window("scaleDownWindow"), 3, "scale_down"))
            if d.min == 0 and d.desired > 0:
                candidates.append((d.idle_since + d.window("scaleToZeroWindow"), 4, "scale_to_zero"))
        if d.state not in (DELETING, DELETED) and d.min == 0:
            # assumption: deleteTime = last traffic (or create/undelete, or min dropping to 0) +
            # auto_delete_after; reaching it soft-deletes exactly like DELETE would.
            candidates.append((d.anchor + self.config.auto_delete_after, 5, "auto_delete"))
        if d.state == DELETING and d.deleting_until is not None:
            candidates.append((d.deleting_until, 6, "deleted"))
        if d.state == DELETED and d.purge_time is not None:
            candidates.append((d.purge_time, 7, "purge"))
        due = sorted(c for c in candidates if c[0] <= now)
        return (due[0][0], due[0][2]) if due else None

    def _apply(self, d: Deployment, t: float, kind: str) -> None:
        if kind == "ready":
            was = d.state
            d.state, d.ready_at = READY, None
            d.billed_type, d.billed_count = d.spec["acceleratorType"], int(d.spec["acceleratorCount"])
            if was == CREATING or (d.replicas < d.desired and d.pending_at is None):
                # New replicas started during the roll-out (a create, or recovery from FAILED).
                d.replicas, d.pending_at = d.desired, None
                d.idle_since = max(d.idle_since, t)
                d.high_load_until = t
            self._record(d, t)
        elif kind == "pending":
            d.replicas, d.pending_at = d.desired, None
            # assumption: the idle (scale-to-zero) window restarts when replicas come up, since
            # the autoscaler cannot call a deployment idle before it has been able to serve.
            d.idle_since = max(d.idle_since, t)
            self._record(d, t)
        elif kind == "upscale":
            target = min(d.upscale_to, d.max)
            d.upscale_at = None
            if target > d.desired:
                self._set_desired(d, target, t)
        elif kind == "scale_down":
            floor = min(max(d.min, 1), d.max)
            d.desired = d.replicas = floor
            self._record(d, t)
        elif kind == "scale_to_zero":
            # assumption: state stays READY; desired and current replicas both become 0.
            d.desired = d.replicas = 0
            d.pending_at = d.upscale_at = None
            self._record(d, t)
        elif kind == "auto_delete":
            self._soft_delete(d, t, "deleted automatically: no traffic for "
                              f"{fmt_duration(self.config.auto_delete_after)}")
        elif kind == "deleted":
            d.state, d.deleting_until = DELETED, None
        elif kind == "purge":
            self._purge(d, t)

    def _record(self, d: Deployment, t: float) -> None:
        ledger = self.ledgers.get(d.name)
        if ledger is None:
            ledger = self.ledgers[d.name] = billing.Ledger(
                d.name, d.spec["baseModel"], self._placement_label(d.spec))
        ledger.annotations = dict(d.spec.get("annotations") or {})
        ledger.base_model = d.spec["baseModel"]
        ledger.record(t, d.replicas, d.billed_type or d.spec["acceleratorType"],
                      d.billed_count or int(d.spec["acceleratorCount"]))

    def _set_desired(self, d: Deployment, n: int, t: float) -> None:
        """Aim for ``n`` replicas: removals are immediate, additions start up for create_seconds."""
        d.desired = n
        if n <= d.replicas:
            d.replicas, d.pending_at = n, None
            self._record(d, t)
        elif d.pending_at is None:
            d.pending_at = t + self.config.create_seconds

    def _soft_delete(self, d: Deployment, t: float, message: str) -> None:
        d.state, d.status_message = DELETING, message
        d.deleted_at, d.deleting_until = t, t + DELETING_SECONDS
        d.purge_time = t + self.config.purge_after
        d.desired = d.replicas = 0
        d.pending_at = d.upscale_at = d.ready_at = None
        d.update_time = t
        self._record(d, t)

    def _purge(self, d: Deployment, t: float) -> None:
        d.desired = d.replicas = 0
        self._record(d, t)
        del self.deployments[d.id]
        for dm_id in [k for k, v in self.deployed_models.items() if v.deployment == d.name]:
            del self.deployed_models[dm_id]

    def _initial_replicas(self, spec: dict[str, Any]) -> int:
        # assumption (contract §2.4): min 0 and max >= 1 starts with one replica to reach READY;
        # max 0 reaches READY with no replicas.
        mx = int(spec["maxReplicaCount"])
        return 0 if mx == 0 else min(max(int(spec["minReplicaCount"]), 1), mx)

    # --- models --------------------------------------------------------------------------------

    def _own_model_name(self, model_id: str) -> str:
        return f"accounts/{self.account}/models/{model_id}"

    def resolve_base(self, model_name: str) -> catalog.CatalogModel | None:
        """The catalog model a model name ultimately runs on (a LoRA's base), if known."""
        if model_name in catalog.CATALOG_BY_NAME:
            return catalog.CATALOG_BY_NAME[model_name]
        prefix = f"accounts/{self.account}/models/"
        if model_name.startswith(prefix):
            own = self.models.get(model_name[len(prefix):])
            if own is not None:
                base = (own.spec.get("peftDetails") or {}).get("baseModel", "")
                return catalog.CATALOG_BY_NAME.get(base)
        return None

    def model_wire(self, m: OwnModel, with_refs: bool = False) -> dict[str, Any]:
        """An account model as the Model message."""
        spec = m.spec
        ready = self.now >= m.ready_at
        base = self.resolve_base(self._own_model_name(m.id))
        peft = spec.get("peftDetails")
        out: dict[str, Any] = {
            "name": self._own_model_name(m.id),
            "displayName": spec.get("displayName", ""),
            "description": spec.get("description", ""),
            "createTime": ts(m.create_time),
            "updateTime": ts(m.ready_at if ready else m.create_time),
            "state": "READY" if ready else "UPLOADING",
            "status": {"code": "OK", "message": ""},
            "kind": spec.get("kind", "HF_PEFT_ADDON"),
            "githubUrl": spec.get("githubUrl", ""),
            "huggingFaceUrl": spec.get("huggingFaceUrl", ""),
            "public": bool(spec.get("public", False)),
            "contextLength": int(spec.get("contextLength") or (base.context_length if base else 0)),
            "supportsImageInput": False,
            "supportsTools": False,
            "importedFrom": "",
            "fineTuningJob": "",
            "defaultDraftModel": "",
            "defaultDraftTokenCount": 0,
            "deployedModelRefs": self._refs(self._own_model_name(m.id)) if with_refs else [],
            "cluster": "",
            "calibrated": False,
            "tunable": False,
            "supportsLora": False,
            "useHfApplyChatTemplate": False,
            "supportsServerless": False,
        }
        if peft is not None:
            out["peftDetails"] = {
                "baseModel": peft.get("baseModel", ""),
                "r": int(peft.get("r", 8)),
                "targetModules": list(peft.get("targetModules") or []),
                "baseModelType": base.model_type if base else "",
                "mergeAddonModelName": peft.get("mergeAddonModelName", ""),
            }
        return out

    def _refs(self, model_name: str) -> list[dict[str, Any]]:
        return [{"name": self._dm_name(dm.id), "deployment": dm.deployment, "state": self._dm_state(dm),
                 "default": dm.default, "public": dm.public}
                for dm in self.deployed_models.values() if dm.model == model_name]

    def get_model(self, account: str, model_id: str) -> dict[str, Any]:
        """GET models/{id}: the catalog under ``fireworks``, uploads under the own account."""
        if account == catalog.PUBLIC_ACCOUNT:
            m = catalog.CATALOG_BY_NAME.get(f"accounts/{account}/models/{model_id}")
            if m is None:
                raise not_found(f"model accounts/{account}/models/{model_id} not found")
            return catalog.catalog_model_wire(m, self._refs(m.name))
        own = self.models.get(model_id)
        if own is None:
            raise not_found(f"model {self._own_model_name(model_id)} not found")
        return self.model_wire(own, with_refs=True)

    def list_models(self, account: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """GET models (default order: name)."""
        if account == catalog.PUBLIC_ACCOUNT:
            items = [catalog.catalog_model_wire(m) for m in catalog.CATALOG]
        else:
            items = [self.model_wire(m) for m in self.models.values()]
        items = _order(_filter(items, first(query, "filter")), first(query, "orderBy") or "name")
        return paginate(items, "models", query, _list_params(query, account, "models"))

    def create_model(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """POST models {modelId, model}: an addon upload, UPLOADING and then READY."""
        model_id = body.get("modelId")
        if not isinstance(model_id, str) or not ID_RE.match(model_id):
            raise invalid(f"invalid model id {model_id!r}: must match {ID_RE.pattern}")
        spec = body.get("model") or {}
        if not isinstance(spec, dict):
            raise invalid("model must be an object")
        spec = copy.deepcopy(spec)
        kind = spec.setdefault("kind", "HF_PEFT_ADDON")
        if kind not in catalog.MODEL_KINDS:
            raise invalid(f"invalid model kind {kind!r}")
        if len(spec.get("displayName", "")) >= 64:
            raise invalid("display_name must be fewer than 64 characters")
        if len(spec.get("description", "")) >= 1000:
            raise invalid("description must be fewer than 1000 characters")
        if kind == "HF_PEFT_ADDON":
            peft = spec.get("peftDetails")
            if not isinstance(peft, dict) or not peft.get("baseModel"):
                raise invalid("peft_details.base_model is required for an HF_PEFT_ADDON model")
            base = catalog.CATALOG_BY_NAME.get(peft["baseModel"])
            if base is None:
                raise invalid(f"unknown base model {peft['baseModel']!r}")
            if not base.supports_lora:
                raise precondition(f"base model {base.name} does not support LoRA addons")
            r = _as_int(peft.get("r", 8), "peft_details.r")
            if not 4 <= r <= 64:
                raise invalid("peft_details.r must be between 4 and 64")
        if model_id in self.models:
            raise ApiError("ALREADY_EXISTS", f"model {self._own_model_name(model_id)} already exists")
        m = OwnModel(model_id, spec, now, now + MODEL_UPLOAD_SECONDS)
        self.models[model_id] = m
        self.dirty = True
        return self.model_wire(m)

    def delete_model(self, model_id: str) -> dict[str, Any]:
        """DELETE models/{id}; refused while the model is loaded somewhere."""
        if model_id not in self.models:
            raise not_found(f"model {self._own_model_name(model_id)} not found")
        if any(dm.model == self._own_model_name(model_id) for dm in self.deployed_models.values()):
            raise precondition("model is deployed; unload it first")
        del self.models[model_id]
        self.dirty = True
        return {}

    # --- deployments: reading ------------------------------------------------------------------

    def _dep_name(self, dep_id: str) -> str:
        return f"accounts/{self.account}/deployments/{dep_id}"

    @staticmethod
    def _placement_label(spec: dict[str, Any]) -> str:
        p = spec.get("placement") or {}
        if p.get("region"):
            return str(p["region"])
        if p.get("regions"):
            return ",".join(p["regions"])
        return str(p.get("multiRegion") or "GLOBAL")

    def deployment_wire(self, d: Deployment, *, validate_only: bool = False) -> dict[str, Any]:
        """The Deployment message, every field present as grpc-gateway emits them."""
        s = d.spec
        delete_time = None
        if d.state in (DELETING, DELETED):
            delete_time = d.deleted_at
        elif d.min == 0 and not validate_only:
            delete_time = d.anchor + self.config.auto_delete_after
        placement = s["placement"]
        out: dict[str, Any] = {
            "name": d.name,
            "displayName": s["displayName"],
            "description": s["description"],
            "createTime": ts(d.create_time),
        }
        if s.get("expireTime"):
            out["expireTime"] = s["expireTime"]
        if d.purge_time is not None and d.state in (DELETING, DELETED):
            out["purgeTime"] = ts(d.purge_time)
        if delete_time is not None:
            out["deleteTime"] = ts(delete_time)
        starting = max(d.desired - d.replicas, 0)
        out.update({
            # assumption: a validateOnly answer describes a deployment that does not exist yet.
            "state": "STATE_UNSPECIFIED" if validate_only else d.state,
            "status": {"code": d.status_code, "message": d.status_message},
            "annotations": dict(s["annotations"]),
            "minReplicaCount": d.min,
            "maxReplicaCount": d.max,
            "maxWithRevocableReplicaCount": int(s["maxWithRevocableReplicaCount"]),
            "desiredReplicaCount": d.desired,
            "replicaCount": d.replicas,
            "autoscalingPolicy": copy.deepcopy(s["autoscalingPolicy"]),
            "baseModel": s["baseModel"],
            "acceleratorCount": int(s["acceleratorCount"]),
            "acceleratorType": s["acceleratorType"],
            "precision": s["precision"],
            "cluster": "",
            "enableAddons": bool(s["enableAddons"]),
            "draftTokenCount": int(s["draftTokenCount"]),
            "draftModel": s["draftModel"],
            "ngramSpeculationLength": int(s["ngramSpeculationLength"]),
            "enableSessionAffinity": bool(s["enableSessionAffinity"]),
            "directRouteApiKeys": list(s["directRouteApiKeys"]),
            "numPeftDeviceCached": int(s["numPeftDeviceCached"]),
            "directRouteType": s["directRouteType"],
            "directRouteHandle": "",
            "deploymentTemplate": s["deploymentTemplate"],
            "autoTune": dict(s["autoTune"]),
            "placement": copy.deepcopy(placement),
            # assumption: multi-region placements currently sit in US_IOWA_1.
            "region": placement.get("region") or "US_IOWA_1",
            "maxContextLength": int(s["maxContextLength"]),
            "updateTime": ts(d.update_time),
            "disableDeploymentSizeValidation": bool(s["disableDeploymentSizeValidation"]),
            "enableHotLoad": bool(s["enableHotLoad"]),
            "hotLoadBucketType": s["hotLoadBucketType"],
            "enableHotReloadLatestAddon": bool(s["enableHotReloadLatestAddon"]),
            "enableMtp": bool(s["enableMtp"]),
            "deploymentShape": s["deploymentShape"],
            "activeModelVersion": s["activeModelVersion"],
            "targetModelVersion": s["targetModelVersion"],
            "replicaStats": {
                "pendingSchedulingReplicaCount": 0,
                "downloadingModelReplicaCount": 0,
                "initializingReplicaCount": starting,
                "readyReplicaCount": d.replicas,
                "revocableReplicaCount": 0,
                "partialReplicaCount": 0,
            },
            "hotLoadBucketUrl": s["hotLoadBucketUrl"],
            "pricingPlanId": s["pricingPlanId"],
            "hotLoadTrainerJob": s["hotLoadTrainerJob"],
        })
        return out

    def _live(self, dep_id: str) -> Deployment:
        d = self.deployments.get(dep_id)
        if d is None:
            raise not_found(f"deployment {self._dep_name(dep_id)} not found")
        return d

    def get_deployment_wire(self, dep_id: str) -> dict[str, Any]:
        """GET deployments/{id} (soft-deleted ones too, until purged)."""
        return self.deployment_wire(self._live(dep_id))

    def list_deployments(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """GET deployments with showDeleted, filter, orderBy (default create_time) and paging."""
        show_deleted = bool_param(query, "showDeleted")
        deps = [d for d in self.deployments.values() if show_deleted or d.state != DELETED]
        deps.sort(key=lambda d: d.seq)
        items = [self.deployment_wire(d) for d in deps]
        items = _order(_filter(items, first(query, "filter"), DEPLOYMENT_FIELDS),
                       first(query, "orderBy") or "create_time", DEPLOYMENT_FIELDS)
        return paginate(items, "deployments", query, _list_params(query, self.account, "deployments"))

    # --- deployments: validation ---------------------------------------------------------------

    def _normalize(self, spec: dict[str, Any], explicit_max: bool) -> None:
        """Type-check, fill defaults and validate a complete spec in place (400 on bad input)."""
        for key in INT_FIELDS:
            spec[key] = _as_int(spec.get(key, 0) if spec.get(key) is not None else 0, key)
            if spec[key] < 0:
                raise invalid(f"{key} must not be negative")
        for key in BOOL_FIELDS:
            value = spec.get(key)
            if value is None:
                spec[key] = False
            elif not isinstance(value, bool):
                raise invalid(f"invalid value for {key}: {value!r}")
        for key in STRING_FIELDS:
            value = spec.get(key)
            if value is None:
                spec[key] = ""
            elif not isinstance(value, str):
                raise invalid(f"invalid value for {key}: {value!r}")
        if spec.get("expireTime") is not None:
            # A Timestamp is an RFC3339 string; protojson refuses anything else, "" included.
            if not isinstance(spec["expireTime"], str):
                raise invalid(f"invalid value for expireTime: {spec['expireTime']!r}")
            spec["expireTime"] = ts(parse_ts(spec["expireTime"], "expire_time"))
        for key, allowed in ENUM_FIELDS.items():
            value = spec.get(key)
            value = allowed[0] if value is None or value == "" else value
            # assumption: enums are sent by name (protojson would also take an enum number).
            if not isinstance(value, str) or value not in allowed:
                raise invalid(f"invalid value for {key}: {value!r}; expected one of {', '.join(allowed)}")
            spec[key] = value
        if len(spec["displayName"]) >= 64:
            raise invalid("display_name must be fewer than 64 characters")
        if len(spec["description"]) >= DESCRIPTION_LIMIT:
            raise invalid(f"description must be fewer than {DESCRIPTION_LIMIT} characters")
        if not spec["baseModel"]:
            raise invalid("base_model is required")
        if self.resolve_base(spec["baseModel"]) is None:
            # assumption: an unknown base model is a bad argument (400), not a missing resource.
            raise invalid(f"base model {spec['baseModel']!r} not found")
        if not explicit_max:
            spec["maxReplicaCount"] = max(spec["minReplicaCount"], 1)
        if spec["minReplicaCount"] > spec["maxReplicaCount"]:
            # assumption: min > max is 400 INVALID_ARGUMENT.
            raise invalid("min_replica_count must be less than or equal to max_replica_count")
        # A field sent as null is unset (protojson); any other value must have the field's type.
        annotations = {} if spec.get("annotations") is None else spec["annotations"]
        if not isinstance(annotations, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
            raise invalid("annotations must map strings to strings")
        spec["annotations"] = annotations
        keys = [] if spec.get("directRouteApiKeys") is None else spec["directRouteApiKeys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise invalid("direct_route_api_keys must be a list of strings")
        spec["directRouteApiKeys"] = keys
        auto_tune = {} if spec.get("autoTune") is None else spec["autoTune"]
        if not isinstance(auto_tune, dict) or not isinstance(auto_tune.get("longPrompt", False), bool | None):
            raise invalid("auto_tune must be an object whose long_prompt is true or false")
        spec["autoTune"] = {"longPrompt": bool(auto_tune.get("longPrompt"))}
        spec["placement"] = self._check_placement(spec.get("placement"))
        spec["autoscalingPolicy"] = self._check_autoscaling(spec.get("autoscalingPolicy"))
        for name, sched in (spec["autoscalingPolicy"].get("scalingSchedules") or {}).items():
            if sched["minReplicaCount"] > spec["maxReplicaCount"]:
                raise invalid(f"scaling schedule {name!r}: min_replica_count must be less than or equal to "
                              "max_replica_count")

    @staticmethod
    def _check_placement(p: Any) -> dict[str, Any]:
        if p is None:
            return {"multiRegion": "GLOBAL"}
        if not isinstance(p, dict):
            raise invalid("placement must be an object")
        unset = (None, "", [], "REGION_UNSPECIFIED", "MULTI_REGION_UNSPECIFIED")
        set_keys = [k for k in ("region", "multiRegion", "regions") if p.get(k) not in unset]
        if not set_keys:
            return {"multiRegion": "GLOBAL"}
        if len(set_keys) != 1:
            raise invalid("placement: exactly one of region, multi_region or regions must be set")
        key = set_keys[0]
        if key == "multiRegion" and p[key] not in catalog.MULTI_REGIONS[1:]:
            raise invalid(f"invalid value for placement.multi_region: {p[key]!r}; expected one of "
                          f"{', '.join(catalog.MULTI_REGIONS[1:])}")
        if key == "regions" and not (isinstance(p[key], list) and all(isinstance(r, str) for r in p[key])):
            raise invalid("placement.regions must be a list of region names")
        # Enums are strings on the wire; protojson refuses a name the enum does not have.
        for region in (p[key] if key == "regions" else [p[key]] if key == "region" else []):
            if not isinstance(region, str) or region not in catalog.REGIONS[1:]:
                raise invalid(f"invalid value for placement.{'regions' if key == 'regions' else 'region'}: "
                              f"{region!r}; expected a Region such as US_IOWA_1, EU_FRANKFURT_1 or AP_TOKYO_1")
        return {key: p[key]}

    def _check_speculation(self, spec: dict[str, Any], *, creating: bool, disabled: bool = False) -> None:
        """Speculative decoding: a draft model or n-grams, never both; the tokens per step with
        either; none of it with disableSpeculativeDecoding (create only). On create, a deployment
        that sets none of it and does not disable it gets its base model's default draft model.

        # assumption: Fireworks' speculative-decoding guide says draft_model and
        # ngram_speculation_length "cannot be used together" and that draft_token_count is
        # "required when using draft model or n-gram"; both are refused with 400 INVALID_ARGUMENT,
        # as is an unknown draft model (like an unknown base model) and a disable that contradicts
        # the settings sent with it.
        """
        draft, ngram = spec["draftModel"], spec["ngramSpeculationLength"]
        if disabled and (draft or spec["draftTokenCount"] or ngram or spec["enableMtp"]):
            raise invalid("disable_speculative_decoding cannot be combined with draft_model, draft_token_count, "
                          "ngram_speculation_length or enable_mtp")
        if draft and ngram:
            raise invalid("draft_model and ngram_speculation_length cannot be used together")
        if draft and self.resolve_base(draft) is None:
            raise invalid(f"draft model {draft!r} not found")
        base = catalog.CATALOG_BY_NAME.get(spec["baseModel"])
        if creating and not disabled and base is not None and base.default_draft_model:
            if not draft and not ngram:
                spec["draftModel"] = draft = base.default_draft_model
            if draft == base.default_draft_model and not spec["draftTokenCount"]:
                spec["draftTokenCount"] = base.default_draft_token_count
        if (draft or ngram) and not spec["draftTokenCount"]:
            raise invalid("draft_token_count is required when draft_model or ngram_speculation_length is set")

    def _check_autoscaling(self, policy: Any) -> dict[str, Any]:
        if policy is None:
            policy = {}
        if not isinstance(policy, dict):
            raise invalid("autoscaling_policy must be an object")
        out = copy.deepcopy(DEFAULT_AUTOSCALING)
        for key in ("scaleUpWindow", "scaleDownWindow", "scaleToZeroWindow"):
            if policy.get(key) not in (None, ""):
                out[key] = policy[key]
        up = parse_duration(out["scaleUpWindow"], "autoscaling_policy.scale_up_window")
        down = parse_duration(out["scaleDownWindow"], "autoscaling_policy.scale_down_window")
        stz = parse_duration(out["scaleToZeroWindow"], "autoscaling_policy.scale_to_zero_window")
        if self.config.relaxed:
            # Relaxed mode (tests and demos): any window from 1 s, no upper bounds.
            if stz < 1:
                raise invalid("autoscaling_policy.scale_to_zero_window must be at least 1s (relaxed)")
        else:
            if stz < 300:
                raise invalid("autoscaling_policy.scale_to_zero_window must be at least 5 minutes")
            for name, value in (("scale_up_window", up), ("scale_down_window", down)):
                if value > 3600:
                    raise invalid(f"autoscaling_policy.{name} must be less than or equal to 1 hour")
        for key in ("scaleUpWindow", "scaleDownWindow", "scaleToZeroWindow"):
            out[key] = fmt_duration(parse_duration(out[key], key))
        targets = policy.get("loadTargets")
        if targets is not None:
            if not isinstance(targets, dict):
                raise invalid("autoscaling_policy.load_targets must be an object")
            for k, v in targets.items():
                if k not in LOAD_TARGET_KEYS:
                    raise invalid(f"unsupported load target {k!r}")
                if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                    raise invalid(f"load target {k!r} must be a positive number")
            out["loadTargets"] = dict(targets)
        if policy.get("scalingSchedules") is not None:
            out["scalingSchedules"] = _check_schedules(policy["scalingSchedules"])
        return out

    def _apply_shape(self, spec: dict[str, Any], given: set[str], *, creating: bool,
                     skip_validation: bool) -> None:
        """Resolve ``deploymentShape`` into accelerator settings, or check the shapeless path."""
        ref = spec.get("deploymentShape") or ""
        base = self.resolve_base(spec.get("baseModel") or "")
        if not ref:
            if spec.get("acceleratorType") in (None, "", "ACCELERATOR_TYPE_UNSPECIFIED"):
                # Fireworks' training SDK: the shapeless path requires accelerator_type.
                raise invalid("accelerator_type is required when deployment_shape is not set; "
                              "pass deployment_shape (see deploymentShapeVersions:match) or an accelerator")
            if not spec.get("acceleratorCount") and base is not None:
                spec["acceleratorCount"] = base.min_gpus  # the estimated minimum for the model
            if spec.get("precision") in (None, "", "PRECISION_UNSPECIFIED"):
                spec["precision"] = "BF16" if spec.get("enableAddons") else "FP8"
            return
        if ref == "default" and creating:
            shape = catalog.default_shape(base, bool(spec.get("enableAddons"))) if base else None
            if shape is None:
                raise precondition(f"no validated deployment shape for {spec.get('baseModel')!r}")
        else:
            shape = catalog.resolve_shape(ref)
            if shape is None:
                raise invalid(f"deployment shape {ref!r} not found")
        if not skip_validation and (base is None or shape.model.name != base.name):
            raise invalid(f"deployment shape {shape.name} is for {shape.model.name}, "
                          f"not {spec.get('baseModel')}")
        for key, value in (("acceleratorType", shape.accelerator_type),
                           ("acceleratorCount", shape.accelerator_count), ("precision", shape.precision)):
            sent = spec.get(key)
            unset = sent in (None, "", 0, "ACCELERATOR_TYPE_UNSPECIFIED", "PRECISION_UNSPECIFIED")
            # assumption: sending the shape's own values is harmless; a different value conflicts.
            if key in given and not unset and sent != value:
                raise invalid(f"{key} conflicts with deployment_shape {shape.name}; "
                              "do not set it on the shape path")
            spec[key] = value
        if shape.enable_addons:
            spec["enableAddons"] = True
        spec["deploymentShape"] = shape.version_name

    # --- deployments: GPU quota ----------------------------------------------------------------

    @staticmethod
    def _gpus(d: Deployment) -> int:
        """The GPUs a deployment holds against its type's quota: its ceiling (max replicas, or a
        manual scale above it) times GPUs per replica."""
        return max(d.max, d.desired) * int(d.spec["acceleratorCount"])

    def _check_quota(self, dep_id: str, spec: dict[str, Any], replicas: int, verb: str,
                     held: Deployment | None = None) -> None:
        """429 RESOURCE_EXHAUSTED when ``replicas`` × ``spec``'s GPUs per replica, plus what the
        account's other live deployments hold of that type, exceed the type's quota (contract §3).

        # assumption: usage counts every deployment not DELETING/DELETED at its ceiling; a change
        # that does not grow a deployment's own footprint is never refused, so a deployment that is
        # already over (a lowered quota) can still be shrunk or edited.
        """
        accelerator, per_replica = spec["acceleratorType"], int(spec["acceleratorCount"])
        quota = self.config.quota_for(accelerator)
        if quota is None:
            return
        asked = replicas * per_replica
        if asked == 0:
            return  # holding nothing is never over a quota
        if held is not None and held.state not in (DELETING, DELETED) \
                and held.spec["acceleratorType"] == accelerator and asked <= self._gpus(held):
            return
        in_use = sum(self._gpus(d) for d in self.deployments.values()
                     if d.id != dep_id and d.state not in (DELETING, DELETED)
                     and d.spec["acceleratorType"] == accelerator)
        if in_use + asked <= quota:
            return
        quota_id = f"gpu_quota/{accelerator}"
        message = (f"quota exceeded for {quota_id}: this account's quota is {quota} x {accelerator} "
                   f"and {in_use} are in use; the {verb} of {self._dep_name(dep_id)} asks for {asked} "
                   f"({replicas} replica{'' if replicas == 1 else 's'} x {per_replica})")
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "GPU_QUOTA_EXCEEDED",
                "domain": "fireworks.ai",
                "metadata": {"quota": quota_id, "acceleratorType": accelerator, "limit": str(quota),
                             "inUse": str(in_use), "requested": str(asked), "replicas": str(replicas),
                             "acceleratorsPerReplica": str(per_replica)}}
        # Waiting does not free quota: tell SDKs not to retry (contract §3, x-should-retry).
        raise ApiError("RESOURCE_EXHAUSTED", message, details=[info], headers={"x-should-retry": "false"})

    # --- deployments: changes ------------------------------------------------------------------

    def create_deployment(self, body: dict[str, Any], query: dict[str, list[str]], now: float) -> dict[str, Any]:
        """POST deployments."""
        dep_id = first(query, "deploymentId") or ""
        if dep_id:
            if not ID_RE.match(dep_id):
                raise invalid(f"invalid deployment id {dep_id!r}: 1-63 characters of a-z, 0-9 and '-', "
                              "starting with a letter and not ending with '-'")
        else:
            dep_id = _random_id(self.rng)
            while dep_id in self.deployments:
                dep_id = _random_id(self.rng)
        validate_only = bool_param(query, "validateOnly")
        disable_auto_deploy = bool_param(query, "disableAutoDeploy")
        skip_shape = bool_param(query, "skipShapeValidation")
        disable_speculation = bool_param(query, "disableSpeculativeDecoding")
        bool_param(query, "skipImageTagValidation")  # type-checked, otherwise no effect here
        if bool_param(query, "acceptShapelessRisk") and body.get("deploymentShape"):
            raise invalid("accept_shapeless_risk and deployment_shape are mutually exclusive")
        given = {k for k in body if k in DEFAULT_SPEC}
        spec = copy.deepcopy(DEFAULT_SPEC)
        for key in given:
            spec[key] = copy.deepcopy(body[key])
        explicit_max = body.get("maxReplicaCount") is not None
        self._normalize(spec, explicit_max)
        self._check_speculation(spec, creating=True, disabled=disable_speculation)
        self._apply_shape(spec, given, creating=True, skip_validation=skip_shape)
        if dep_id in self.deployments:
            raise ApiError("ALREADY_EXISTS", f"deployment {self._dep_name(dep_id)} already exists")
        spec["_name"] = self._dep_name(dep_id)
        self.seq += 1
        d = Deployment(dep_id, self.seq, spec, now, now, ready_at=now + self.config.create_seconds,
                       idle_since=now, anchor=now, high_load_until=now)
        d.desired = self._initial_replicas(spec)
        self._check_quota(dep_id, spec, max(d.max, d.desired), "create")
        if validate_only:
            return self.deployment_wire(d, validate_only=True)
        self.deployments[dep_id] = d
        self._record(d, now)
        if not disable_auto_deploy:
            self._load(spec["baseModel"], d, now, display_name="", description="")
        self.dirty = True
        return self.deployment_wire(d)

    def update_deployment(self, dep_id: str, body: dict[str, Any], query: dict[str, list[str]],
                          now: float) -> dict[str, Any]:
        """PATCH deployments/{id}, honouring updateMask (snake_case or camelCase paths)."""
        d = self._live(dep_id)
        skip_shape = bool_param(query, "skipShapeValidation")
        if d.state in (DELETING, DELETED):
            raise precondition(f"deployment {d.name} is {d.state}; undelete it first")
        mask = first(query, "updateMask") or first(query, "update_mask")
        if mask is None and self.config.require_update_mask:
            raise invalid("update_mask is required")
        if mask is not None and mask.strip() in ("*", ""):
            paths = [k for k in DEFAULT_SPEC if k != "expireTime"] if mask.strip() == "*" else []
        elif mask is not None:
            paths = [camel(p.strip()) for p in mask.split(",") if p.strip()]
        else:
            paths = _leaf_paths(body)
        new = copy.deepcopy(d.spec)
        given: set[str] = set()
        for path in paths:
            top = path.split(".")[0]
            if top in OUTPUT_ONLY:
                continue  # output-only fields in a PATCH are ignored (contract §2.1)
            if top not in DEFAULT_SPEC:
                if mask is None:
                    continue  # an unknown body key is ignored, as on create (contract §0)
                # assumption: an updateMask path naming no field is a bad mask (400, AIP-161).
                raise invalid(f"unknown field in update_mask: {path!r}")
            present, value = _get_path(body, path)
            if not present:
                # A masked path missing from the body is cleared to its default (AIP-134).
                _, value = _get_path(DEFAULT_SPEC, path)
            if path == "maxReplicaCount" and value is None:
                value = 0
            _set_path(new, path, copy.deepcopy(value))
            given.add(top)
        # A cleared max falls back to its documented default, max(min, 1).
        max_cleared = "maxReplicaCount" in given and body.get("maxReplicaCount") is None
        self._normalize(new, explicit_max=not max_cleared)
        self._check_speculation(new, creating=False)
        shape_changed = new["deploymentShape"] != d.spec["deploymentShape"]
        if shape_changed or not new["deploymentShape"]:
            # A new shape brings its own accelerator settings; a full-object PATCH still carries
            # the old ones, so they are overwritten rather than reported as conflicts.
            self._apply_shape(new, set(), creating=False,
                              skip_validation=skip_shape)
        else:
            for key in ("acceleratorType", "acceleratorCount", "precision"):
                if new[key] != d.spec[key]:
                    raise invalid(f"{key} conflicts with deployment_shape {new['deploymentShape']}; "
                                  "change deployment_shape or clear it")
        if new["placement"] != d.spec["placement"]:
            raise precondition("placement cannot be changed in place; create a new deployment")
        self._check_quota(d.id, new, int(new["maxReplicaCount"]), "update", held=d)
        old = d.spec
        d.spec = new
        d.update_time = now
        if any(new[k] != old[k] for k in SERVING_FIELDS):
            if d.state == FAILED:
                d.desired = self._initial_replicas(new)
            if d.state in (READY, UPDATING, FAILED):
                d.state, d.status_code, d.status_message = UPDATING, "OK", ""
            d.ready_at = now + self.config.create_seconds
        if any(new[k] != old[k] for k in SCALING_FIELDS):
            self._rescale(d, now, int(old["minReplicaCount"]))
        if d.name in self.ledgers:
            self.ledgers[d.name].annotations = dict(new["annotations"])
        self.dirty = True
        return self.deployment_wire(d)

    def _rescale(self, d: Deployment, t: float, old_min: int) -> None:
        if old_min > 0 and d.min == 0:
            d.anchor = max(d.anchor, t)  # the unused period starts when min drops to 0
        d.idle_since = max(d.idle_since, t)
        d.high_load_until = max(d.high_load_until, t)
        if d.state == CREATING:
            d.desired = self._initial_replicas(d.spec)
            return
        if d.state not in (READY, UPDATING):
            return
        target = min(max(d.desired, d.min), d.max)
        d.upscale_at = None
        self._set_desired(d, target, t)

    def scale_deployment(self, dep_id: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """PATCH deployments/{id}:scale {replicaCount}: set desired replicas and converge.

        # assumption: min/max stay as they are; the autoscaler takes over again afterwards (a count
        # above the floor drifts down after scaleDownWindow, a min-0 deployment still scales to zero
        # after scaleToZeroWindow without traffic).
        """
        d = self._live(dep_id)
        n = _as_int(body.get("replicaCount", 0), "replica_count")
        if n < 0:
            raise invalid("replica_count must be non-negative")
        if d.state in (DELETING, DELETED):
            raise precondition(f"deployment {d.name} is {d.state}")
        self._check_quota(d.id, d.spec, max(d.max, n), "scale", held=d)
        d.update_time = now
        d.idle_since = max(d.idle_since, now)
        d.high_load_until = max(d.high_load_until, now)
        d.upscale_at = None
        if d.state == CREATING:
            d.desired = n
        else:
            self._set_desired(d, n, now)
        self.dirty = True
        return {}

    def delete_deployment(self, dep_id: str, query: dict[str, list[str]], now: float) -> dict[str, Any]:
        """DELETE deployments/{id}: soft by default, ``hard=true`` purges.

        # assumption: "in use" means it has replicas and served traffic in the last minute; such a
        # deployment needs ignoreChecks=true (else 400 FAILED_PRECONDITION). Soft-deleting an
        # already deleted deployment is a no-op so that retried deletes succeed.
        """
        d = self._live(dep_id)
        hard = bool_param(query, "hard")
        ignore_checks = bool_param(query, "ignoreChecks")
        in_use = d.replicas > 0 and d.last_traffic is not None and now - d.last_traffic < IN_USE_SECONDS
        if in_use and not ignore_checks and d.state not in (DELETING, DELETED):
            raise precondition(f"deployment {d.name} is in use (served traffic in the last minute); "
                               "pass ignore_checks=true to delete it anyway")
        if hard:
            self._purge(d, now)
        elif d.state not in (DELETING, DELETED):
            self._soft_delete(d, now, "deleted")
        self.dirty = True
        return {}

    def undelete_deployment(self, dep_id: str, now: float) -> dict[str, Any]:
        """POST deployments/{id}:undelete: a soft-deleted deployment comes back via CREATING.

        # assumption: undelete starts replicas afresh (CREATING for create_seconds, then READY as
        # after a create), resets the auto-delete clock and clears purgeTime; anything not deleted
        # is 400 FAILED_PRECONDITION.
        """
        d = self._live(dep_id)
        if d.state not in (DELETING, DELETED):
            raise precondition(f"deployment {d.name} is not deleted")
        self._check_quota(d.id, d.spec, max(d.max, self._initial_replicas(d.spec)), "undelete")
        d.state, d.status_message = CREATING, ""
        d.ready_at = now + self.config.create_seconds
        d.deleted_at = d.deleting_until = d.purge_time = None
        d.anchor = d.idle_since = d.high_load_until = now
        d.desired, d.replicas = self._initial_replicas(d.spec), 0
        d.update_time = now
        self.dirty = True
        return self.deployment_wire(d)

    # --- deployed models -----------------------------------------------------------------------

    def _dm_name(self, dm_id: str) -> str:
        return f"accounts/{self.account}/deployedModels/{dm_id}"

    def _dm_state(self, dm: DeployedModel) -> str:
        if dm.serverless:
            return "DEPLOYED"
        dep = self.deployments.get(dm.deployment.rsplit("/", 1)[-1])
        if dep is None or dep.state in (DELETING, DELETED):
            return "UNDEPLOYING"
        if dep.state in (READY, UPDATING) and self.now >= dm.loaded_at:
            return "DEPLOYED"
        return "DEPLOYING"

    def deployed_model_wire(self, dm: DeployedModel) -> dict[str, Any]:
        """The DeployedModel message."""
        return {
            "name": self._dm_name(dm.id),
            "displayName": dm.display_name,
            "description": dm.description,
            "createTime": ts(dm.create_time),
            "model": dm.model,
            "deployment": dm.deployment,
            "default": dm.default,
            "state": self._dm_state(dm),
            "serverless": dm.serverless,
            "status": {"code": "OK", "message": ""},
            "public": dm.public,
            "updateTime": ts(dm.update_time),
        }

    def _load(self, model: str, d: Deployment, now: float, *, display_name: str, description: str,
              public: bool = False) -> DeployedModel:
        stem = re.sub(r"[^a-z0-9-]", "-", model.rsplit("/", 1)[-1].lower()).strip("-")[:50] or "model"
        if not stem[0].isalpha():
            stem = "m" + stem
        dm_id = f"{stem}-{_random_id(self.rng)}"
        is_default = not any(x.model == model and x.default for x in self.deployed_models.values())
        addon = model != d.spec["baseModel"]
        dm = DeployedModel(dm_id, model, d.name, now, now,
                           loaded_at=now + (ADDON_LOAD_SECONDS if addon else 0.0),
                           display_name=display_name, description=description, default=is_default,
                           public=public)
        self.deployed_models[dm_id] = dm
        return dm

    def load_model(self, body: dict[str, Any], now: float,
                   query: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """POST deployedModels {model, deployment}: load a LoRA addon onto a deployment.

        # assumption (contract §2.6, firectl load-lora): a hot-reload deployment
        # (enableHotReloadLatestAddon) holds one addon; loading one onto it needs
        # replaceMergedAddon=true (else 400 FAILED_PRECONDITION) and replaces the addon it has.
        # On any other deployment replaceMergedAddon changes nothing. ``public`` is stored and echoed.
        """
        replace = bool_param(query or {}, "replaceMergedAddon")
        for key, kind in (("model", str), ("deployment", str), ("displayName", str), ("description", str),
                          ("default", bool), ("public", bool), ("serverless", bool)):
            if body.get(key) is not None and not isinstance(body[key], kind):
                raise invalid(f"invalid value for {key}: {body[key]!r}")
        model = body.get("model") or ""
        dep_name = body.get("deployment") or ""
        if not model:
            raise invalid("model is required")
        if not dep_name:
            raise invalid("deployment is required")
        if body.get("serverless"):
            raise invalid("serverless must be false or omitted for a LoRA addon")
        prefix = f"accounts/{self.account}/deployments/"
        if not dep_name.startswith(prefix):
            raise invalid(f"deployment {dep_name!r} is not a deployment of accounts/{self.account}")
        d = self._live(dep_name[len(prefix):])
        if d.state in (DELETING, DELETED, FAILED):
            raise precondition(f"deployment {d.name} is {d.state}")
        hot_reload = bool(d.spec["enableHotReloadLatestAddon"])
        if model != d.spec["baseModel"]:
            own_prefix = f"accounts/{self.account}/models/"
            own = self.models.get(model[len(own_prefix):]) if model.startswith(own_prefix) else None
            if own is None:
                raise not_found(f"model {model} not found")
            if now < own.ready_at:
                raise precondition(f"model {model} is still UPLOADING")
            peft = own.spec.get("peftDetails") or {}
            if own.spec.get("kind") != "HF_PEFT_ADDON":
                raise precondition(f"model {model} is not a PEFT addon and is not the deployment's base model")
            if not d.spec["enableAddons"] and not hot_reload:
                # assumption (contract §2.6): loading an addon needs enable_addons on the deployment.
                raise precondition(f"deployment {d.name} was not created with enable_addons=true")
            if peft.get("baseModel") != d.spec["baseModel"]:
                raise precondition(f"addon {model} is for {peft.get('baseModel')}, "
                                   f"but {d.name} serves {d.spec['baseModel']}")
            if hot_reload and not replace:
                raise precondition(f"deployment {d.name} hot-reloads its addon: loading {model} onto it needs "
                                   "replace_merged_addon=true")
        replacing = hot_reload and replace and model != d.spec["baseModel"]
        if not replacing and any(x.model == model and x.deployment == d.name for x in self.deployed_models.values()):
            raise ApiError("ALREADY_EXISTS", f"model {model} is already deployed to {d.name}")
        if replacing:
            for old in [x for x in self.deployed_models.values()
                        if x.deployment == d.name and x.model != d.spec["baseModel"]]:
                self.unload_model(old.id)
        dm = self._load(model, d, now, display_name=body.get("displayName") or "",
                        description=body.get("description") or "", public=bool(body.get("public")))
        self.dirty = True
        return self.deployed_model_wire(dm)

    def get_deployed_model(self, dm_id: str) -> dict[str, Any]:
        """GET deployedModels/{id}."""
        dm = self.deployed_models.get(dm_id)
        if dm is None:
            raise not_found(f"deployed model {self._dm_name(dm_id)} not found")
        return self.deployed_model_wire(dm)

    def list_deployed_models(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """GET deployedModels (default order: name)."""
        items = [self.deployed_model_wire(dm) for dm in self.deployed_models.values()]
        items = _order(_filter(items, first(query, "filter")), first(query, "orderBy") or "name")
        return paginate(items, "deployedModels", query, _list_params(query, self.account, "deployedModels"))

    def update_deployed_model(self, dm_id: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """PATCH deployedModels/{id}: display name, description, default, public."""
        dm = self.deployed_models.get(dm_id)
        if dm is None:
            raise not_found(f"deployed model {self._dm_name(dm_id)} not found")
        if "displayName" in body:
            dm.display_name = str(body["displayName"] or "")
        if "description" in body:
            dm.description = str(body["description"] or "")
        if "public" in body:
            dm.public = bool(body["public"])
        if body.get("default"):
            for other in self.deployed_models.values():
                if other.model == dm.model:
                    other.default = other is dm
        dm.update_time = now
        self.dirty = True
        return self.deployed_model_wire(dm)

    def unload_model(self, dm_id: str) -> dict[str, Any]:
        """DELETE deployedModels/{id}."""
        dm = self.deployed_models.pop(dm_id, None)
        if dm is None:
            raise not_found(f"deployed model {self._dm_name(dm_id)} not found")
        if dm.default:
            for other in self.deployed_models.values():
                if other.model == dm.model:
                    other.default = True
                    break
        self.dirty = True
        return {}

    # --- shapes --------------------------------------------------------------------------------

    def match_shapes(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST deploymentShapeVersions:match (hand-written in the SDK; not in the OAS)."""
        request = body.get("createDeploymentRequest") or {}
        deployment = request.get("deployment") or {}
        model = deployment.get("baseModel") or deployment.get("base_model") or ""
        if not model:
            raise invalid("create_deployment_request.deployment.base_model is required")
        base = self.resolve_base(model)
        if base is None:
            raise invalid(f"base model {model!r} not found")
        addons = bool(deployment.get("enableAddons") or deployment.get("enable_addons"))
        shapes = [s for s in catalog.shapes_for(base) if s.enable_addons or not addons]
        if addons:
            shapes = [s for s in shapes if s.enable_addons]
        versions = [s.version_wire() for s in shapes]
        return {"deploymentShapeVersions": versions, "nextPageToken": "", "totalSize": len(versions)}

    def list_shapes(self, account: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """GET deploymentShapes (the public ones live under accounts/fireworks)."""
        shapes = list(catalog.ALL_SHAPES) if account == catalog.PUBLIC_ACCOUNT else []
        target = first(query, "targetModel")
        if target:
            base = self.resolve_base(target)
            shapes = [s for s in shapes if base is not None and s.model.name == base.name]
        items = _filter([s.wire() for s in shapes], first(query, "filter"))
        return paginate(items, "deploymentShapes", query, _list_params(query, account, "deploymentShapes"))

    @staticmethod
    def get_shape(account: str, shape_id: str, version_id: str | None = None) -> dict[str, Any]:
        """GET deploymentShapes/{shape} or .../versions/{version}."""
        shape = catalog.SHAPES_BY_ID.get(shape_id) if account == catalog.PUBLIC_ACCOUNT else None
        if shape is None:
            raise not_found(f"deployment shape accounts/{account}/deploymentShapes/{shape_id} not found")
        if version_id is None:
            return shape.wire()
        if version_id != shape.version_id:
            raise not_found(f"deployment shape version {shape.name}/versions/{version_id} not found")
        return shape.version_wire()

    def list_shape_versions(self, account: str, shape_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """GET deploymentShapes/{shape}/versions: one current version per shape."""
        version = self.get_shape(account, shape_id, catalog.SHAPES_BY_ID[shape_id].version_id
                                 if shape_id in catalog.SHAPES_BY_ID else "-")
        return paginate([version], "deploymentShapeVersions", query,
                        _list_params(query, account, "versions:" + shape_id))

    # --- inference -----------------------------------------------------------------------------

    def infer(self, body: dict[str, Any], now: float, chat: bool) -> tuple[int, dict[str, Any]]:
        """One completion against a deployment: (HTTP status, OpenAI-style body)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 400, _openai_error("model is required", "invalid_request_error", "INVALID_ARGUMENT")
        d, served_model = self._route(model)
        if d is None:
            return 404, _openai_error(f"Model not found, inaccessible, and/or not deployed: {model}",
                                      "invalid_request_error", "NOT_FOUND")
        d.last_traffic = now
        d.anchor = max(d.anchor, now)
        d.idle_since = max(d.idle_since, now)
        self.dirty = True
        if d.state not in (READY, UPDATING):
            self._log(d, now, 0, 0, 0.0, 503)
            return 503, _openai_error(f"Deployment {d.name} is {d.state} and not ready to serve requests",
                                      "error", "DEPLOYMENT_NOT_READY")
        if d.replicas == 0:
            self._log(d, now, 0, 0, 0.0, 503)
            if d.max == 0:
                # assumption: max_replica_count 0 pins the deployment at zero; nothing scales up.
                return 503, _openai_error(f"Deployment {d.name} has max_replica_count=0 and cannot serve",
                                          "error", "DEPLOYMENT_SCALED_TO_ZERO")
            if d.desired == 0:
                self._set_desired(d, min(max(d.min, 1), d.max), now)
            return 503, _openai_error(
                f"Deployment {d.name} is currently scaled to zero and is scaling up. "
                "Please retry your request in a few minutes.", "error", "DEPLOYMENT_SCALING_UP")
        if served_model != d.spec["baseModel"]:
            dm = next((x for x in self.deployed_models.values()
                       if x.model == served_model and x.deployment == d.name), None)
            if dm is not None and self._dm_state(dm) != "DEPLOYED":
                self._log(d, now, 0, 0, 0.0, 503)
                return 503, _openai_error(f"Model {served_model} is still being loaded onto {d.name}",
                                          "error", "MODEL_LOADING")
        prompt_text = _prompt_text(body, chat)
        prompt_tokens = max(1, len(prompt_text.split()))
        answer = f"This is a simulated answer from {d.name}."
        completion_tokens = len(answer.split())
        latency_ms = 40.0 + 6.0 * completion_tokens + 0.05 * prompt_tokens
        self._log(d, now, prompt_tokens, completion_tokens, latency_ms, 200)
        self._autoscale_on_load(d, now)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        created = int(now)
        rid = "".join(self.rng.choice(string.hexdigits.lower()) for _ in range(24))
        if chat:
            return 200, {"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": created,
                         "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": answer}}],
                         "usage": usage}
        return 200, {"id": f"cmpl-{rid}", "object": "text_completion", "created": created, "model": model,
                     "choices": [{"index": 0, "text": answer, "finish_reason": "stop", "logprobs": None}],
                     "usage": usage}

    def _route(self, model: str) -> tuple[Deployment | None, str]:
        prefix = f"accounts/{self.account}/deployments/"
        if "#" in model:
            served, dep_name = model.split("#", 1)
            d = self.deployments.get(dep_name[len(prefix):]) if dep_name.startswith(prefix) else None
            if d is None or d.state in (DELETED, DELETING):
                return None, served
            loaded = any(x.model == served and x.deployment == d.name for x in self.deployed_models.values())
            return (d if loaded or served == d.spec["baseModel"] else None), served
        if model.startswith(prefix):
            d = self.deployments.get(model[len(prefix):])
            if d is None or d.state in (DELETED, DELETING):
                return None, model
            return d, d.spec["baseModel"]
        dm = next((x for x in self.deployed_models.values() if x.model == model and x.default), None)
        if dm is None:
            return None, model  # serverless inference is not simulated
        d = self.deployments.get(dm.deployment[len(prefix):])
        if d is None or d.state in (DELETED, DELETING):
            return None, model
        return d, model

    def _log(self, d: Deployment, now: float, prompt: int, completion: int, latency: float, code: int) -> None:
        log = self.traffic.setdefault(d.name, deque())
        log.append(metrics.RequestRecord(now, prompt, completion, latency, code))
        while log and log[0].t < now - 600:
            log.popleft()

    def _autoscale_on_load(self, d: Deployment, now: float) -> None:
        recent = sum(1 for r in self.traffic.get(d.name, ()) if now - metrics.WINDOW < r.t <= now
                     and r.http_code < 400)
        target = float(d.spec["autoscalingPolicy"].get("loadTargets", {}).get("default", 0.8))
        need = math.ceil((recent / metrics.WINDOW) / (REPLICA_CAPACITY_RPS * target))
        need = min(max(need, d.min, 1), d.max)
        if need >= d.desired:
            d.high_load_until = now
        if need > d.desired:
            if d.upscale_at is None:
                d.upscale_at = now + d.window("scaleUpWindow")
            d.upscale_to = max(d.upscale_to if d.upscale_at else 0, need)

    # --- metrics and billing -------------------------------------------------------------------

    def metrics_text(self, now: float) -> str:
        """GET metrics, rate-limited per account (contract §2.8)."""
        while self.metrics_calls and self.metrics_calls[0] <= now - 60:
            self.metrics_calls.popleft()
        if len(self.metrics_calls) >= self.config.metrics_per_minute:
            retry = max(1, math.ceil(self.metrics_calls[0] + 60 - now))
            raise ApiError("RESOURCE_EXHAUSTED",
                           f"metrics are limited to {self.config.metrics_per_minute} requests per minute",
                           retry_after=retry)
        self.metrics_calls.append(now)
        rows = []
        for d in sorted(self.deployments.values(), key=lambda x: x.seq):
            if d.replicas <= 0:
                continue  # assumption: only deployments with running replicas are exported
            labels = {"base_model": d.spec["baseModel"], "deployment": d.name,
                      "deployment_account": self.account, "deployment_id": d.id}
            rows.append((labels, list(self.traffic.get(d.name, ()))))
        return metrics.render(rows, now)

    def billing_usage(self, query: dict[str, list[str]], now: float) -> dict[str, Any]:
        """GET billingUsage: daily dedicated accelerator-seconds from the replica timeline."""
        start_s, end_s = first(query, "startTime"), first(query, "endTime")
        if not start_s or not end_s:
            raise invalid("start_time and end_time are required")
        start, end = parse_ts(start_s, "start_time"), parse_ts(end_s, "end_time")
        if end <= start:
            raise invalid("end_time must be after start_time")
        if end - start > 31 * 86400:
            raise invalid("end_time must not be more than 31 days after start_time")
        # An enum query parameter is parsed by name; an empty one names nothing and is refused.
        usage_type = first(query, "usageType", "USAGE_TYPE_UNSPECIFIED")
        if usage_type not in ("USAGE_TYPE_UNSPECIFIED", "SERVERLESS", "DEDICATED_DEPLOYMENT", "TRAINING"):
            raise invalid(f"invalid usage_type {usage_type!r}")
        tz_name = first(query, "timezone") or "UTC"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid(f"invalid timezone {tz_name!r}") from None
        filters: dict[str, list[str]] = {}
        for key, values in query.items():
            m = re.fullmatch(r"filter\[([^\]]+)\]\[values\](?:\[\d*\])?", key)
            if m:
                filters.setdefault(m.group(1), []).extend(values)
        dedicated: list[dict[str, Any]] = []
        if usage_type in ("USAGE_TYPE_UNSPECIFIED", "DEDICATED_DEPLOYMENT"):
            dedicated = billing.dedicated_costs(list(self.ledgers.values()), start, end, now, tz,
                                                query.get("groupBy", []), filters)
        # Serverless inference is not simulated, so its stream is always empty.
        return {"serverlessCosts": [], "dedicatedCosts": dedicated}

    # --- test and admin helpers ----------------------------------------------------------------

    def get_deployment(self, dep_id: str) -> dict[str, Any] | None:
        """The wire form of a deployment as of the last request (None when gone)."""
        with self.lock:
            if self.now_fn is not None:
                self.advance(self.now_fn())
            d = self.deployments.get(dep_id)
            return self.deployment_wire(d) if d else None

    def fail_deployment(self, dep_id: str, message: str = "injected failure") -> None:
        """Put a deployment into FAILED with no replicas (contract §5: FAILED can be injected)."""
        with self.lock:
            if self.now_fn is not None:
                self.advance(self.now_fn())
            d = self._live(dep_id)
            d.state, d.status_code, d.status_message = FAILED, "INTERNAL", message
            d.ready_at = d.pending_at = d.upscale_at = None
            d.desired = d.replicas = 0
            self._record(d, self.now)
            self.dirty = True

    def load_serverless(self, model: str) -> dict[str, Any]:
        """Put a LoRA addon on the serverless platform, as accounts that loaded one before serverless
        LoRA was withdrawn still have (the API refuses new ones); for tests and demos of unloading it."""
        with self.lock:
            if self.now_fn is not None:
                self.advance(self.now_fn())
            stem = re.sub(r"[^a-z0-9-]", "-", model.rsplit("/", 1)[-1].lower()).strip("-")[:50] or "model"
            dm = DeployedModel(f"{stem}-{_random_id(self.rng)}", model, "", self.now, self.now, loaded_at=self.now,
                               default=not any(x.model == model and x.default for x in self.deployed_models.values()),
                               serverless=True)
            self.deployed_models[dm.id] = dm
            self.dirty = True
            return self.deployed_model_wire(dm)

    def count_requests(self, method: str | None = None, path: str | None = None,
                       status: int | None = None) -> int:
        """How many HTTP requests matched; ``path`` is a regular expression for the whole path."""
        with self.lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method.upper())
                       and (path is None or re.fullmatch(path, r.path))
                       and (status is None or r.status == status))

    def dump(self) -> dict[str, Any]:
        """Everything, for ``GET /_sim/state``."""
        with self.lock:
            return self._dump()

    def _dump(self) -> dict[str, Any]:
        return {
            "now": ts(self.now),
            "deployments": [self.deployment_wire(d) for d in self.deployments.values()],
            "models": [self.model_wire(m) for m in self.models.values()],
            "deployedModels": [self.deployed_model_wire(dm) for dm in self.deployed_models.values()],
            "ledgers": [asdict(x) for x in self.ledgers.values()],
            "requests": len(self.requests),
        }

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Write the durable state atomically (temp file + rename)."""
        data = {
            "version": 1,
            "now": self.now,
            "seq": self.seq,
            "deployments": [asdict(d) for d in self.deployments.values()],
            "models": [asdict(m) for m in self.models.values()],
            "deployedModels": [asdict(dm) for dm in self.deployed_models.values()],
            "ledgers": [asdict(x) for x in self.ledgers.values()],
        }
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".fwsim-", dir=directory)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
        self.dirty = False

    def load(self, path: str) -> None:
        """Read a file written by ``save`` (missing file: start empty)."""
        if not os.path.exists(path):
            return
        with open(path) as fh:
            data = json.load(fh)
        self.now = float(data.get("now", 0.0))
        self.seq = int(data.get("seq", 0))
        self.deployments = {d["id"]: Deployment(**d) for d in data.get("deployments", [])}
        self.models = {m["id"]: OwnModel(**m) for m in data.get("models", [])}
        self.deployed_models = {x["id"]: DeployedModel(**x) for x in data.get("deployedModels", [])}
        self.ledgers = {x["name"]: billing.Ledger(**x) for x in data.get("ledgers", [])}


def _check_schedules(schedules: Any) -> dict[str, dict[str, Any]]:
    """``autoscalingPolicy.scalingSchedules`` (contract §2.3): at most 5, each with a min replica
    count, a 5-field cron ``schedule``, a whole-second ``duration`` of 300s..604800s and an IANA
    ``timezone``; 400 otherwise. Stored and echoed; they do not drive the simulated replicas.
    """
    from datetime import UTC, datetime

    from cronsim import CronSim, CronSimError

    if not isinstance(schedules, dict) or not all(isinstance(v, dict) for v in schedules.values()):
        raise invalid("autoscaling_policy.scaling_schedules must map names to schedules")
    if len(schedules) > 5:
        raise invalid("autoscaling_policy.scaling_schedules holds at most 5 schedules")
    out: dict[str, dict[str, Any]] = {}
    for name, sched in schedules.items():
        where = f"scaling schedule {name!r}"
        raw_min = sched.get("minReplicaCount")
        minimum = 0 if raw_min is None else _as_int(raw_min, f"{where}: min_replica_count")
        if minimum < 0:
            raise invalid(f"{where}: min_replica_count must not be negative")
        texts = {key: sched.get(key) for key in ("schedule", "duration", "timezone", "description")}
        if not all(v is None or isinstance(v, str) for v in texts.values()):
            raise invalid(f"{where}: schedule, duration, timezone and description must be strings")
        if not isinstance(sched.get("disabled", False), bool | None):
            raise invalid(f"{where}: disabled must be true or false")
        cron = texts["schedule"] or ""
        try:
            if len(cron.split()) != 5:
                raise CronSimError("not 5 fields")
            CronSim(cron, datetime(2026, 1, 1, tzinfo=UTC))  # parsed only
        except CronSimError:
            raise invalid(f"{where}: schedule {cron!r} is not a 5-field cron expression") from None
        duration = texts["duration"] or ""
        seconds = parse_duration(duration, f"{where}: duration")
        if seconds != int(seconds) or not 300 <= seconds <= 604800:
            raise invalid(f"{where}: duration must be whole seconds from 300s to 604800s")
        try:
            ZoneInfo(texts["timezone"] or "")
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid(f"{where}: timezone {texts['timezone']!r} is not an IANA time zone") from None
        out[name] = {"minReplicaCount": minimum, "schedule": cron, "duration": fmt_duration(seconds),
                     "timezone": texts["timezone"], "description": texts["description"] or "",
                     "disabled": bool(sched.get("disabled"))}
    return out


def _openai_error(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"object": "error", "type": kind, "code": code, "message": message}}


def _prompt_text(body: dict[str, Any], chat: bool) -> str:
    if not chat:
        prompt = body.get("prompt", "")
        return " ".join(prompt) if isinstance(prompt, list) else str(prompt)
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else ""
        if isinstance(content, list):
            parts.extend(str(c.get("text", "")) for c in content if isinstance(c, dict))
        else:
            parts.append(str(content or ""))
    return " ".join(parts)


def _list_params(query: dict[str, list[str]], account: str, collection: str) -> dict[str, Any]:
    """The parameters a page token is bound to (all but pageSize and pageToken)."""
    return {"account": account, "collection": collection,
            **{k: v for k, v in sorted(query.items()) if k not in ("pageSize", "pageToken")}}


_TERM = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(!=|=|:)\s*(?:"([^"]*)"|(\S+))\s*$')


# The fields of a Deployment message (contract §2.2), for filter and order_by: a field the message
# has is known even where an object leaves it out (``deleteTime``, ``purgeTime``, ``expireTime``).
DEPLOYMENT_FIELDS = frozenset({
    "name", "displayName", "description", "createTime", "updateTime", "expireTime", "deleteTime", "purgeTime",
    "state", "status", "annotations", "minReplicaCount", "maxReplicaCount", "maxWithRevocableReplicaCount",
    "desiredReplicaCount", "replicaCount", "replicaStats", "autoscalingPolicy", "baseModel", "acceleratorCount",
    "acceleratorType", "precision", "deploymentShape", "deploymentTemplate", "cluster", "enableAddons",
    "enableHotReloadLatestAddon", "enableHotLoad", "hotLoadBucketType", "hotLoadBucketUrl", "hotLoadTrainerJob",
    "draftModel", "draftTokenCount", "ngramSpeculationLength", "enableMtp", "enableSessionAffinity",
    "directRouteType", "directRouteApiKeys", "directRouteHandle", "numPeftDeviceCached", "autoTune", "placement",
    "region", "maxContextLength", "disableDeploymentSizeValidation", "activeModelVersion", "targetModelVersion",
    "pricingPlanId",
})


def _field_path(path: str, fields: frozenset[str] | None, what: str) -> str:
    """``path`` checked against the message's fields (its first segment) before any item is looked
    at, so an unknown field is refused whether or not anything would have matched."""
    if fields is not None and path.split(".", 1)[0] not in fields:
        raise invalid(f"unknown field in {what}: {path!r}")
    return path


def _lookup(item: dict[str, Any], path: str, fields: frozenset[str] | None, what: str) -> Any:
    """The value at ``path``; a field the message has but this object leaves out reads as unset."""
    present, value = _get_path(item, path)
    if present:
        return value
    if fields is None:
        raise invalid(f"unknown field in {what}: {path!r}")
    return None


def _filter(items: list[dict[str, Any]], expression: str | None,
            fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """A small AIP-160 subset: ``field = "value"`` terms (``=``, ``!=``, ``:``) joined by AND.

    ``fields``: the message's top-level fields; with them, every term's field is checked before
    anything is filtered (an unknown one is 400 even on an empty list). Without them, a field is
    known when the objects have it."""
    if not expression or not expression.strip():
        return items
    terms = []
    for raw in re.split(r"\s+AND\s+", expression.strip()):
        m = _TERM.match(raw)
        if not m:
            raise invalid(f"unsupported filter expression {raw!r}")
        path = _field_path(camel(m.group(1)), fields, "filter")
        terms.append((path, m.group(2), m.group(3) if m.group(3) is not None else m.group(4)))

    def text(value: Any) -> str:
        if value is None:
            return ""
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    out = []
    for item in items:
        ok = True
        for path, op, value in terms:
            got = _lookup(item, path, fields, "filter")
            if op == "=":
                ok = text(got) == value
            elif op == "!=":
                ok = text(got) != value
            else:
                ok = value in (got if isinstance(got, list | dict) else text(got))
            if not ok:
                break
        if ok:
            out.append(item)
    return out


def _order(items: list[dict[str, Any]], order_by: str,
           fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Sort by a comma-separated ``field [asc|desc]`` list (stable, so ties keep creation order).
    ``fields`` as for :func:`_filter`."""
    keys = []
    for part in order_by.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise invalid(f"invalid order_by {order_by!r}")
        keys.append((_field_path(camel(words[0]), fields, "order_by"), len(words) == 2 and words[1].lower() == "desc"))
    for path, desc in reversed(keys):
        def key(item: dict[str, Any], path: str = path) -> Any:
            value = _lookup(item, path, fields, "order_by")
            if path.endswith("Time") and isinstance(value, str):
                return (False, parse_ts(value, path))  # fractional seconds do not sort as text
            return (value is None, value)
        items = sorted(items, key=key, reverse=desc)
    return items
