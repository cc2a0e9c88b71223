"""A deployment's life on the clock: start-up, autoscaling, scale to zero, auto-delete, purge.

Time is evaluated lazily and exactly: before anything reads or changes the model, ``advance(now)``
replays every event that fell due since the last call, in time order, at the instant it fell due
(a scale-to-zero that became due at T is recorded at T, not when someone next looks). Billing
integrates the replica timeline these events produce.
"""

from __future__ import annotations

from typing import Any

from . import billing
from .records import CREATING, DELETED, DELETING, READY, UPDATING, Account, Deployment
from .wire import fmt_duration

# assumption: DELETING is brief; one second before the deployment shows as DELETED.
DELETING_SECONDS = 1.0


def _placement_label(spec: dict[str, Any]) -> str:
    p = spec.get("placement") or {}
    if p.get("region"):
        return str(p["region"])
    if p.get("regions"):
        return ",".join(p["regions"])
    return str(p.get("multiRegion") or "GLOBAL")


class LifecycleMixin(Account):
    """The clock-driven events of every deployment, and the ledger they write (part of SimState)."""

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
                d.name, d.spec["baseModel"], _placement_label(d.spec))
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
