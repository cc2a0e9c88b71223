"""Models: the public catalog under accounts/fireworks and the account's own uploads (LoRA addons)."""

from __future__ import annotations

import copy
from typing import Any

from . import catalog
from .listing import filter_items, list_params, order_items
from .records import ID_RE, Account, OwnModel
from .validation import as_int
from .wire import ApiError, first, invalid, not_found, paginate, precondition, ts

# assumption: an uploaded LoRA model turns READY one second after it is created.
MODEL_UPLOAD_SECONDS = 1.0


class ModelsMixin(Account):
    """The models resource (part of SimState)."""

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
        items = order_items(filter_items(items, first(query, "filter")), first(query, "orderBy") or "name")
        return paginate(items, "models", query, list_params(query, account, "models"))

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
            r = as_int(peft.get("r", 8), "peft_details.r")
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
