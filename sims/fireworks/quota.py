"""GPU quota: what each deployment holds against its accelerator type's quota, and the 429 when a
create, update, scale or undelete would go over it."""

from __future__ import annotations

from typing import Any

from .records import DELETED, DELETING, Account, Deployment
from .wire import ApiError


class QuotaMixin(Account):
    """The GPU quota check (part of SimState)."""

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
