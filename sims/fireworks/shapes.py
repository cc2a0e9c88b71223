"""Deployment shapes: the catalog's shapes listed and matched to a model, and a deployment's shape
resolved into its accelerator settings."""

from __future__ import annotations

from typing import Any

from . import catalog
from .listing import filter_items, list_params
from .records import Account
from .wire import first, invalid, not_found, paginate, precondition


class ShapesMixin(Account):
    """The deploymentShapes resource and shape resolution (part of SimState)."""

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
        items = filter_items([s.wire() for s in shapes], first(query, "filter"))
        return paginate(items, "deploymentShapes", query, list_params(query, account, "deploymentShapes"))

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
                        list_params(query, account, "versions:" + shape_id))
