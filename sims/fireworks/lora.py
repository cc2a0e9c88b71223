"""Deployed models: addons (and base models) loaded onto deployments, each model's default one, and
the serverless LoRA addons older accounts still have."""

from __future__ import annotations

import re
from typing import Any

from .listing import filter_items, list_params, order_items
from .records import (
    DELETED,
    DELETING,
    FAILED,
    READY,
    UPDATING,
    Account,
    DeployedModel,
    Deployment,
    random_id,
)
from .wire import ApiError, bool_param, first, invalid, not_found, paginate, precondition, ts

# assumption: a loaded addon is DEPLOYED one second after the load (once its deployment is serving).
ADDON_LOAD_SECONDS = 1.0


class DeployedModelsMixin(Account):
    """The deployedModels resource (part of SimState)."""

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
        dm_id = f"{stem}-{random_id(self.rng)}"
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
        items = order_items(filter_items(items, first(query, "filter")), first(query, "orderBy") or "name")
        return paginate(items, "deployedModels", query, list_params(query, self.account, "deployedModels"))

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

    # --- test and admin helpers ----------------------------------------------------------------

    def load_serverless(self, model: str) -> dict[str, Any]:
        """Put a LoRA addon on the serverless platform, as accounts that loaded one before serverless
        LoRA was withdrawn still have (the API refuses new ones); for tests and demos of unloading it."""
        with self.lock:
            if self.now_fn is not None:
                self.advance(self.now_fn())
            stem = re.sub(r"[^a-z0-9-]", "-", model.rsplit("/", 1)[-1].lower()).strip("-")[:50] or "model"
            dm = DeployedModel(f"{stem}-{random_id(self.rng)}", model, "", self.now, self.now, loaded_at=self.now,
                               default=not any(x.model == model and x.default for x in self.deployed_models.values()),
                               serverless=True)
            self.deployed_models[dm.id] = dm
            self.dirty = True
            return self.deployed_model_wire(dm)
