"""Deployment operations: authorise, act through the gateway, remember, audit.

Handlers (slash commands, buttons, modals) and approvals all call these, so a change made from
any surface follows the same rules. Each returns a result for the caller to render; anything a
user can cause is raised as ``UserError`` with a message written for them.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.adapters.fireworks import FireworksError, NotFound, deployment_id_of
from bot.core.durations import parse_api_duration
from bot.core.errors import UserFacingError
from bot.core.names import short_model, unknown_model_message
from bot.core.pricing import deployment_worst_case, is_single_region, not_offered, worst_case_usd_per_hour
from bot.core.requests import DeploymentChange, DeploymentSpec
from bot.services.container import Services
from storage.deployments import DeploymentRecord

log = logging.getLogger("fwbot.operations")

DEFAULT_ACCELERATOR = "NVIDIA_H100_80GB"


class UserError(UserFacingError):
    """Something the user asked that cannot be done; the message is for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyYours(UserError):
    """``/fw adopt`` of a deployment the person owns already: nothing to do, said plainly."""


class DeploymentInUse(UserError):
    """Fireworks refused a delete because the deployment is in use (400 FAILED_PRECONDITION to a
    delete without ``ignoreChecks``). Nothing was deleted; every surface that can delete answers it
    with the same sentence and a *Delete anyway* offer (bot/ui/deployments.in_use)."""

    def __init__(self, deployment_id: str, *, hard: bool, fireworks_message: str) -> None:
        super().__init__(f"Fireworks refused to delete `{deployment_id}`: it is in use (serving traffic). "
                         "Nothing was deleted.")
        self.deployment_id = deployment_id
        self.hard = hard
        self.fireworks_message = fireworks_message


# google.rpc.Code FAILED_PRECONDITION: what Fireworks answers a delete of a deployment in use.
FAILED_PRECONDITION = 9


@dataclass(frozen=True)
class Actor:
    user_id: str
    channel_id: str | None
    is_admin: bool = False


@dataclass
class Planned:
    """A resolved deploy request: what will be sent and what it can cost."""

    deployment_id: str
    spec: DeploymentSpec
    fields: dict[str, Any]
    usd_per_hour: float | None
    accelerator_type: str | None
    accelerator_count: int | None
    shape: str | None
    single_region: bool = False  # pinned to one region: billed ×1.5, and priced so

    @property
    def worst_case_gpus(self) -> int:
        """GPUs it could run at once: max replicas × GPUs per replica (what quotas count)."""
        return self.spec.max_replica_count * (self.accelerator_count or 1)


def deployment_id_stem(base_model: str) -> str:
    """The readable start of an id fwbot chooses: the model's short name, made a valid id."""
    stem = short_model(base_model).lower()
    stem = "".join(c if c.isalnum() else "-" for c in stem).strip("-")[:48].strip("-") or "dep"
    return stem if stem[0].isalpha() else "d-" + stem


def new_deployment_id(base_model: str) -> str:
    """A readable id the bot chooses, so a retried create is recognisable as ours."""
    return f"{deployment_id_stem(base_model)}-{secrets.token_hex(3)}"


class Operations:
    def __init__(self, services: Services) -> None:
        self.s = services

    # -- rules -----------------------------------------------------------------------------------
    def authorize_change(self, actor: Actor, deployment_id: str) -> DeploymentRecord | None:
        """Only the owner or an admin may change a deployment; others are told who owns it.

        Existence comes before ownership: a deployment fwbot cannot vouch for (never seen, no
        owner, or gone) is looked up in Fireworks first, so one that does not exist is said not
        to exist instead of to need an owner.
        """
        record = self.s.store.deployment(deployment_id)
        if record is None or record.owner is None or record.gone_at is not None:
            self.require_exists(deployment_id)
        if actor.is_admin:
            return record
        if record is None or record.owner is None:
            raise UserError(
                f"`{deployment_id}` has no owner in fwbot. Claim it first with `/fw adopt {deployment_id}`, "
                "or ask an admin."
            )
        if record.owner != actor.user_id:
            raise UserError(
                f"`{deployment_id}` is owned by <@{record.owner}>. Only the owner or an admin can change it; "
                f"ask <@{record.owner}>, or an admin for `/fw owner {deployment_id} @you`."
            )
        return record

    def require_exists(self, deployment_id: str) -> dict:
        """The deployment as Fireworks shows it; ``UserError`` saying so when it has none."""
        try:
            return self.s.gateway.get_deployment(deployment_id)
        except NotFound:
            raise UserError(no_such_deployment(deployment_id)) from None

    def _refusal(self, error: FireworksError, deployment_id: str, verb: str) -> UserError | None:
        """A sentence for a refusal Fireworks is known to give, read back from the deployment's
        state rather than from the wording of its message; ``None`` for anything else."""
        if isinstance(error, NotFound):
            return UserError(no_such_deployment(deployment_id))
        if error.retryable:
            return None
        try:
            state = self.s.gateway.get_deployment(deployment_id).get("state")
        except NotFound:
            return UserError(no_such_deployment(deployment_id))
        except FireworksError:
            return None
        deleted = state in ("DELETED", "DELETING")
        if verb == "undelete" and not deleted:
            return UserError(f"`{deployment_id}` is not deleted (it is {state}); nothing to undelete.")
        if verb == "scale" and deleted:
            return UserError(f"`{deployment_id}` is deleted; `/fw undelete {deployment_id}` first. "
                             "Nothing was changed.")
        return None

    def approved_by(self, approval_id: str, actor: Actor, kind: str, deployment_id: str) -> str:
        """The approver of an approved, not yet finished request for exactly this operation.

        The approval is read from the store, never taken from the caller, so only a decided
        request can stand in for the owner's permission. Raises ``UserError`` otherwise.
        """
        record = self.s.store.approval(approval_id)
        if (record is None or record.status != "approved" or record.result is not None or record.kind != kind
                or record.deployment_id != deployment_id or record.requester != actor.user_id
                or not record.decided_by or record.decided_by == record.requester):
            raise UserError(f"there is no approved request to {kind} `{deployment_id}` for "
                            f"<@{actor.user_id}>; nothing was changed.")
        return record.decided_by

    def audit(self, actor: str, action: str, result: str, *, deployment_id: str | None = None,
              channel: str | None = None, request: Any = None, detail: str | None = None) -> None:
        self.s.store.audit(actor=actor, action=action, result=result, now=self.s.clock.now(),
                           deployment_id=deployment_id, channel=channel, request=request, detail=detail)

    # -- deploy ----------------------------------------------------------------------------------
    def plan_deploy(self, spec: DeploymentSpec) -> Planned:
        """Check the model, resolve a shape or accelerator defaults, and price it."""
        model = self.s.find_model(spec.base_model)
        if model is None:
            raise UserError(
                f"unknown model `{spec.base_model}`. See `/fw models` for deployable base models."
            )
        if spec.draft_model:
            self.check_draft_model(spec.draft_model)
        deployment_id = spec.deployment_id or new_deployment_id(spec.base_model)
        # The shape (a name or a preset) is resolved below; the id travels as a query parameter.
        fields = spec.model_copy(update={"deployment_shape": None}).api_fields()
        fields.pop("deployment_id", None)
        shape_name = None
        acc_type = spec.accelerator_type
        acc_count = spec.accelerator_count
        if spec.deployment_shape:
            shape = self.resolve_shape(spec.base_model, spec.deployment_shape, spec.enable_addons)
            snap = shape.get("snapshot") or {}
            shape_name = snap.get("name") or shape.get("name")
            fields["deployment_shape"] = shape_name
            # On the shape path the server rejects an explicit accelerator type.
            fields.pop("accelerator_type", None)
            fields.pop("accelerator_count", None)
            acc_type = snap.get("acceleratorType")
            acc_count = snap.get("acceleratorCount")
        else:
            if acc_type is None:
                acc_type = DEFAULT_ACCELERATOR
                fields["accelerator_type"] = acc_type
            if acc_count is None:
                details = model.get("baseModelDetails") or {}
                acc_count = int(details.get("worldSize") or 1)
                fields["accelerator_count"] = acc_count
        if acc_type and (refusal := not_offered(acc_type, self.s.prices)):
            raise UserError(refusal)
        usd = worst_case_usd_per_hour(spec.max_replica_count, acc_count, acc_type, self.s.prices,
                                      single_region=spec.single_region)
        return Planned(deployment_id, spec, fields, usd, acc_type, acc_count, shape_name, spec.single_region)

    def check_draft_model(self, name: str) -> None:
        """A ``--draft-model`` that Fireworks has, or ``UserError`` with the closest catalog ids."""
        if self.s.find_model(name) is None:
            message = unknown_model_message(name, [m.get("name", "") for m in self.s.catalog()])
            raise UserError("`--draft-model`: " + message.replace("deployable base models", "the catalog's models"))

    def resolve_shape(self, base_model: str, wanted: str, enable_addons: bool) -> dict:
        shapes = self.s.gateway.match_shapes(base_model, enable_addons=enable_addons)
        if not shapes:
            raise UserError(f"Fireworks has no validated deployment shape for `{short_model(base_model)}`; "
                            "deploy with `--accelerator-type` and `--accelerator-count` instead.")
        wanted_names = {wanted.lower(), wanted.lower().replace("-", "_")}
        for s in shapes:
            snap = s.get("snapshot") or {}
            names = {
                str(snap.get("presetType", "")).lower(),
                str(snap.get("name", "")).lower(),
                str(s.get("name", "")).lower(),
                str(snap.get("name", "")).rsplit("/", 1)[-1].lower(),
            }
            if wanted_names & names:
                return s
        offered = ", ".join(
            sorted({str((s.get("snapshot") or {}).get("presetType", "")).lower() for s in shapes} - {""})
        )
        raise UserError(f"no deployment shape `{wanted}` for `{short_model(base_model)}`; offered: {offered}")

    def validate_deploy(self, planned: Planned) -> dict:
        """Ask Fireworks to validate without creating (``validateOnly``)."""
        return self.s.gateway.create_deployment(planned.deployment_id, planned.fields, validate_only=True)

    def create(self, actor: Actor, planned: Planned, *, approved_by: str | None = None) -> dict:
        """Create a deployment whose owner claim the caller recorded first (so a crash leaves no
        orphan): mirror what Fireworks answers, or drop the claim when it refused."""
        store = self.s.store
        channel = actor.channel_id
        request = {"spec": planned.spec.model_dump(mode="json"), "fields": planned.fields}
        if approved_by:
            request["approved_by"] = approved_by
        try:
            asked_at = self.s.clock.now()
            wire = self.s.gateway.create_deployment(planned.deployment_id, planned.fields)
        except FireworksError as e:
            if not e.retryable:
                store.forget_deployment(planned.deployment_id)
            self.audit(actor.user_id, "deploy", "error", deployment_id=planned.deployment_id,
                       channel=channel, request=request, detail=e.message)
            raise
        self.mirror(wire, observed_at=asked_at)
        self.audit(actor.user_id, "deploy", "ok", deployment_id=planned.deployment_id, channel=channel,
                   request=request)
        return wire

    def mirror(self, wire: dict, observed_at: datetime | None = None) -> tuple[DeploymentRecord | None,
                                                                                DeploymentRecord]:
        """Mirror one API object into the store (also records replica change points).

        ``observed_at``: when the API was asked; older views than the stored one are ignored.
        """
        now = self.s.clock.now()
        dep_id = deployment_id_of(wire["name"])
        mirrored = mirrored_fields(wire)
        before, after = self.s.store.mirror(dep_id, mirrored, now, observed_at)
        if before is after:
            return before, after
        self.s.store.record_replicas(
            dep_id, now, int(wire.get("replicaCount") or 0), mirrored["accelerator_type"],
            mirrored["accelerator_count"], bool(mirrored["single_region"]),
        )
        return before, after

    # -- changes ---------------------------------------------------------------------------------
    def update(self, actor: Actor, deployment_id: str, change: DeploymentChange, *, dry_run: bool = False,
               approval_id: str | None = None) -> dict:
        """Apply a change. ``approval_id``: the approved request this runs (audited with its approver)."""
        self.authorize_change(actor, deployment_id)
        approved_by = self.approved_by(approval_id, actor, "update", deployment_id) if approval_id else None
        current = self.s.gateway.get_deployment(deployment_id)
        after = change.apply_to(current)
        if dry_run:
            return after
        mask = change.update_mask()
        wire = current
        if mask:
            wire = self.s.gateway.update_deployment(deployment_id, sdk_fields(after, mask), mask)
        if change.unused_auto_delete_s is not None:
            self.s.store.set_deployment_fields(deployment_id, self.s.clock.now(),
                                               unused_delete_s=change.unused_auto_delete_s)
        self.mirror(wire)
        self.audit(actor.user_id, "update", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                   request={"mask": mask, "change": change.model_dump(mode="json"),
                            **({"approved_by": approved_by, "approval": approval_id} if approved_by else {})})
        return wire

    def scale(self, actor: Actor, deployment_id: str, replicas: int) -> dict:
        self.authorize_change(actor, deployment_id)
        try:
            self.s.gateway.scale_deployment(deployment_id, replicas)
        except FireworksError as e:
            raise self._refusal(e, deployment_id, "scale") or e from None
        wire = self.s.gateway.get_deployment(deployment_id)
        self.mirror(wire)
        self.audit(actor.user_id, "scale", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                   request={"replicas": replicas})
        return wire

    def delete(self, actor: Actor, deployment_id: str, *, hard: bool = False, ignore_checks: bool = False,
               approval_id: str | None = None) -> None:
        """Delete a deployment. Only its owner or an admin may, or anyone whose request to delete
        exactly this deployment an approver approved (``approval_id``, checked against the store).

        ``ignore_checks`` is sent only when asked (``--ignore-checks``, *Delete anyway*): without it
        Fireworks refuses to delete a deployment in use, raised as :class:`DeploymentInUse` (and
        audited as refused)."""
        if approval_id:
            approved_by = self.approved_by(approval_id, actor, "delete", deployment_id)
        else:
            approved_by = None
            self.authorize_change(actor, deployment_id)
        asked: dict[str, Any] = {"hard": hard, **({"ignore_checks": True} if ignore_checks else {})}
        try:
            self.s.gateway.delete_deployment(deployment_id, hard=hard, ignore_checks=ignore_checks)
        except FireworksError as e:
            if ignore_checks or e.status != 400 or e.code not in (FAILED_PRECONDITION, None):
                raise
            # Read back rather than parse the wording: a refusal of a deployment that is still up is
            # the in-use check (a deleted one is never refused for it).
            try:
                state = self.s.gateway.get_deployment(deployment_id).get("state")
            except NotFound:
                raise UserError(no_such_deployment(deployment_id)) from None
            if state in ("DELETED", "DELETING"):
                raise
            self.audit(actor.user_id, "delete", "refused", deployment_id=deployment_id, channel=actor.channel_id,
                       request={**asked, **({"approved_by": approved_by, "approval": approval_id}
                                            if approved_by else {})},
                       detail=f"in use: {e.message}")
            raise DeploymentInUse(deployment_id, hard=hard, fireworks_message=e.message) from None
        try:
            _, after = self.mirror(self.s.gateway.get_deployment(deployment_id))
        except NotFound:
            self.s.store.mark_gone(deployment_id, self.s.clock.now())
        else:
            # Said only once Fireworks shows it: a delete it accepted but did not carry out is no deletion.
            if after.state not in ("DELETING", "DELETED"):
                self.audit(actor.user_id, "delete", "error", deployment_id=deployment_id, channel=actor.channel_id,
                           request=asked, detail=f"Fireworks accepted the delete but shows it {after.state}")
                raise UserError(f"Fireworks accepted the delete, but `{deployment_id}` is still {after.state}; "
                                "it was not deleted. Try again in a minute.")
        self.audit(actor.user_id, "delete", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                   request={**asked, **({"approved_by": approved_by, "approval": approval_id} if approved_by else {})})

    def undelete(self, actor: Actor, deployment_id: str) -> dict:
        self.authorize_change(actor, deployment_id)
        try:
            wire = self.s.gateway.undelete_deployment(deployment_id)
        except FireworksError as e:
            raise self._refusal(e, deployment_id, "undelete") or e from None
        self.mirror(wire)
        # It comes up again: its READY time (and the "READY in …" it shows) starts over.
        self.s.store.set_deployment_fields(deployment_id, self.s.clock.now(), ready_at=None, ready_announced=0)
        self.audit(actor.user_id, "undelete", "ok", deployment_id=deployment_id, channel=actor.channel_id)
        return wire

    def lora(self, actor: Actor, action: str, addon_model: str, deployment_id: str | None, *,
             public: bool = False, replace_merged_addon: bool = False) -> LoraResult:
        """Load or unload an addon, as firectl's load-lora and unload-lora do: on a deployment its
        owner (or an admin) may change, or, for an unload without a deployment, from Fireworks'
        serverless platform (admins only: nobody owns it in fwbot). Says what happened where."""
        if deployment_id is None:
            if action == "load":
                raise UserError("loading an addon needs `--deployment <id>`")
            loaded = self.serverless_addons(actor, addon_model)
            for dm in loaded:
                self.s.gateway.unload_deployed_model(dm["name"])
            names = [str(dm["name"]) for dm in loaded]
            self.audit(actor.user_id, "lora unload", "ok", channel=actor.channel_id,
                       request={"model": addon_model, "serverless": True, "deployed_models": names})
            return LoraResult(action, addon_model, None, names)
        self.authorize_change(actor, deployment_id)
        if action == "load":
            before = self.s.gateway.list_deployed_models(deployment_id) if replace_merged_addon else []
            try:
                wire = self.s.gateway.load_lora(addon_model, deployment_id, public=public,
                                                replace_merged_addon=replace_merged_addon)
            except FireworksError as e:
                raise self._load_refusal(e, deployment_id, replace_merged_addon) or e from None
            after = {dm.get("name") for dm in self.s.gateway.list_deployed_models(deployment_id)} if before else set()
            replaced = [str(dm.get("model")) for dm in before
                        if dm.get("name") not in after and dm.get("model") != addon_model]
            request: dict[str, Any] = {"model": addon_model, "deployed_model": wire.get("name")}
            if public:
                request["public"] = True
            if replace_merged_addon:
                request["replace_merged_addon"] = True
                request["replaced"] = replaced
            self.audit(actor.user_id, "lora load", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                       request=request)
            return LoraResult(action, addon_model, deployment_id, [str(wire.get("name") or "")],
                              replaced=replaced, public=bool(wire.get("public", public)))
        mine = [dm for dm in self.s.gateway.list_deployed_models(deployment_id) if dm.get("model") == addon_model]
        if not mine:
            raise UserError(self._not_loaded(addon_model, f"on `{deployment_id}`"))
        for dm in mine:
            self.s.gateway.unload_deployed_model(dm["name"])
        names = [str(dm["name"]) for dm in mine]
        self.audit(actor.user_id, "lora unload", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                   request={"model": addon_model, "deployed_models": names})
        return LoraResult(action, addon_model, deployment_id, names)

    def serverless_addons(self, actor: Actor, addon_model: str) -> list[dict]:
        """The addon's deployed models on Fireworks' serverless platform, which only an admin may
        unload; ``UserError`` saying where it is loaded instead when it is not there."""
        loaded = self.s.gateway.list_deployed_models(model=addon_model)
        serverless = [dm for dm in loaded if dm.get("serverless")]
        if not serverless:
            raise UserError(self._not_loaded(addon_model, "on Fireworks' serverless platform, which is what "
                                             "`/fw lora unload` without `--deployment` unloads from (as firectl "
                                             "does)", loaded))
        if not actor.is_admin:
            raise UserError(f"`{short_model(addon_model)}` is loaded on Fireworks' serverless platform, which has no "
                            "owner in fwbot: only an fwbot admin can unload it from there. Nothing was unloaded.")
        return serverless

    def _not_loaded(self, addon_model: str, where: str, loaded: list[dict] | None = None) -> str:
        """That an addon is not loaded ``where``, and where it is loaded instead."""
        if loaded is None:
            loaded = self.s.gateway.list_deployed_models(model=addon_model)
        on = sorted({deployment_id_of(str(dm["deployment"])) for dm in loaded if dm.get("deployment")})
        text = f"`{short_model(addon_model)}` is not loaded {where}; nothing was unloaded."
        if on:
            text += (" It is loaded on " + ", ".join(f"`{d}`" for d in on)
                     + f": `/fw lora unload {short_model(addon_model)} --deployment {on[0]}`.")
        else:
            text += " It is not loaded on any deployment either."
        return text

    def _load_refusal(self, error: FireworksError, deployment_id: str, replace: bool) -> UserError | None:
        """A load refusal in words, read back from the deployment: one that hot-reloads its addon
        takes a new one only with ``--replace-merged-addon``."""
        if replace or error.status != 400:
            return None
        try:
            wire = self.s.gateway.get_deployment(deployment_id)
        except FireworksError:
            return None
        if not wire.get("enableHotReloadLatestAddon"):
            return None
        return UserError(f"`{deployment_id}` hot-reloads its addon: Fireworks loads one onto it only with "
                         "`--replace-merged-addon`, which replaces the addon it has. Nothing was loaded.")

    def transfer(self, actor: Actor, deployment_id: str, new_owner: str) -> DeploymentRecord:
        record = self.authorize_change(actor, deployment_id)
        if record is None:
            wire = self.s.gateway.get_deployment(deployment_id)
            _, record = self.mirror(wire)
        self.s.store.set_deployment_fields(deployment_id, self.s.clock.now(), owner=new_owner)
        self.audit(actor.user_id, "owner", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                   request={"from": record.owner, "to": new_owner})
        updated = self.s.store.deployment(deployment_id)
        assert updated is not None
        return updated

    def adopt(self, actor: Actor, deployment_id: str) -> DeploymentRecord:
        """Claim a deployment that has no owner in fwbot (e.g. created with firectl)."""
        wire = self.require_exists(deployment_id)  # existence first, then who owns it
        record = self.s.store.deployment(deployment_id)
        if record is not None and record.owner == actor.user_id:
            where = f"; fwbot tracks it in <#{record.channel}>" if record.channel else ""
            raise AlreadyYours(f"You already own `{deployment_id}`{where}. Nothing changed.")
        if record is not None and record.owner and not actor.is_admin:
            raise UserError(f"`{deployment_id}` is already owned by <@{record.owner}>; ask them, or an admin, "
                            f"for `/fw owner {deployment_id} @you`.")
        _, record = self.mirror(wire)
        now = self.s.clock.now()
        self.s.store.set_deployment_fields(
            deployment_id, now, owner=actor.user_id,
            channel=record.channel or actor.channel_id,
        )
        self.audit(actor.user_id, "adopt", "ok", deployment_id=deployment_id, channel=actor.channel_id)
        updated = self.s.store.deployment(deployment_id)
        assert updated is not None
        return updated


@dataclass(frozen=True)
class LoraResult:
    """What a LoRA load or unload did: the deployed models (``accounts/…/deployedModels/…``) made
    or removed, where (``deployment_id`` ``None``: Fireworks' serverless platform), and for a load
    the addons a ``--replace-merged-addon`` replaced and whether it is public."""

    action: str
    model: str
    deployment_id: str | None
    deployed_models: list[str]
    replaced: list[str] = field(default_factory=list)
    public: bool = False


def no_such_deployment(deployment_id: str) -> str:
    """What to say of an id Fireworks has no deployment for."""
    return f"there is no deployment `{deployment_id}` (see `/fw list all`); nothing was changed."


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def sdk_fields(after: dict, mask: str) -> dict[str, Any]:
    """SDK keyword arguments for the top-level fields an ``updateMask`` names, taken from ``after``."""
    out: dict[str, Any] = {}
    for path in mask.split(","):
        top = path.split(".", 1)[0]
        value = after.get(_camel(top))
        if isinstance(value, dict):
            value = {_snake(k): v for k, v in value.items()}
        out[top] = value
    return out


def mirrored_fields(wire: dict) -> dict[str, Any]:
    """The columns the store mirrors from an API Deployment object."""

    policy = wire.get("autoscalingPolicy") or {}
    return {
        "name": wire.get("name"),
        "state": wire.get("state"),
        "replicas": int(wire.get("replicaCount") or 0),
        "desired_replicas": int(wire.get("desiredReplicaCount") or 0),
        "min_replicas": int(wire.get("minReplicaCount") or 0),
        "max_replicas": int(wire.get("maxReplicaCount") or 0),
        "accelerator_type": wire.get("acceleratorType"),
        "accelerator_count": int(wire.get("acceleratorCount") or 1),
        "base_model": wire.get("baseModel"),
        "display_name": wire.get("displayName"),
        "scale_to_zero_s": parse_api_duration(policy.get("scaleToZeroWindow")),
        "delete_time": wire.get("deleteTime") or None,
        "single_region": is_single_region(wire.get("placement")),
        "create_time": wire.get("createTime"),
        "wire": wire,
    }


def record_usd_per_hour(record: DeploymentRecord, prices: dict[str, float]) -> float | None:
    if record.wire:
        return deployment_worst_case(record.wire, prices)
    return None
