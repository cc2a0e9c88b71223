"""Deployments: their wire form, the list, and create, update, scale, delete and undelete."""

from __future__ import annotations

import copy
from typing import Any

from .listing import filter_items, list_params, order_items
from .records import (
    CREATING,
    DELETED,
    DELETING,
    FAILED,
    ID_RE,
    READY,
    UPDATING,
    Account,
    Deployment,
    random_id,
)
from .validation import DEFAULT_AUTOSCALING, as_int
from .wire import (
    ApiError,
    bool_param,
    camel,
    first,
    get_path,
    invalid,
    not_found,
    paginate,
    precondition,
    set_path,
    ts,
)

# Contract §2.1 leaves "in use" undefined; traffic within this long before a delete counts.
IN_USE_SECONDS = 60.0

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
# assumption: a change to any of these rolls new replicas out (UPDATING, create_seconds long, old
# replicas keep serving and billing); scaling fields apply in place without UPDATING.
SERVING_FIELDS = ("deploymentShape", "acceleratorType", "acceleratorCount", "precision", "baseModel",
                  "maxContextLength", "autoTune", "draftModel", "draftTokenCount", "ngramSpeculationLength",
                  "enableMtp")
SCALING_FIELDS = ("minReplicaCount", "maxReplicaCount", "autoscalingPolicy")
# Map-valued fields: an update replaces them whole rather than key by key.
WHOLE_FIELDS = {"annotations", "placement", "autoTune", "directRouteApiKeys", "autoscalingPolicy.loadTargets",
                "autoscalingPolicy.scalingSchedules"}

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


class DeploymentsMixin(Account):
    """The deployments resource (part of SimState)."""

    def _dep_name(self, dep_id: str) -> str:
        return f"accounts/{self.account}/deployments/{dep_id}"

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
        items = order_items(filter_items(items, first(query, "filter"), DEPLOYMENT_FIELDS),
                       first(query, "orderBy") or "create_time", DEPLOYMENT_FIELDS)
        return paginate(items, "deployments", query, list_params(query, self.account, "deployments"))

    def create_deployment(self, body: dict[str, Any], query: dict[str, list[str]], now: float) -> dict[str, Any]:
        """POST deployments."""
        dep_id = first(query, "deploymentId") or ""
        if dep_id:
            if not ID_RE.match(dep_id):
                raise invalid(f"invalid deployment id {dep_id!r}: 1-63 characters of a-z, 0-9 and '-', "
                              "starting with a letter and not ending with '-'")
        else:
            dep_id = random_id(self.rng)
            while dep_id in self.deployments:
                dep_id = random_id(self.rng)
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
            present, value = get_path(body, path)
            if not present:
                # A masked path missing from the body is cleared to its default (AIP-134).
                _, value = get_path(DEFAULT_SPEC, path)
            if path == "maxReplicaCount" and value is None:
                value = 0
            set_path(new, path, copy.deepcopy(value))
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
        n = as_int(body.get("replicaCount", 0), "replica_count")
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
