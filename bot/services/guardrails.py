"""The team's policy enforced where a change starts: ``/fw deploy`` (and its form), ``/fw update``,
``/fw undelete``, and approvals when they run (checked again right before execution).

A deployment is governed by its owner's rules in the channel it is tracked in: for a create, the
person asking, where they ask. What is asked is checked against the allow-lists and limits
(:func:`bot.core.policy.check_request`); the GPU quotas are checked in the same serialised write
transaction that records the owner claim (a create) or the new worst case (an update), so
requests arriving together can never exceed a quota between them. A quota counts each live
deployment at its worst case, max replicas × GPUs per replica, because autoscaling reaches that
without asking anyone: so the quota holds whatever the traffic.

An admin may go ahead anyway with ``--override "reason"``; each override is audited with the rules
it broke.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core import policy as rules
from bot.core.policy import DeploymentAsk, EffectivePolicy, Violation
from bot.core.pricing import format_usd
from bot.services.container import Services
from bot.services.deployments import Actor
from bot.services.policy import PolicyRefusal, policy_book

log = logging.getLogger("fwbot.guardrails")


@dataclass(frozen=True)
class Governing:
    """The rules that govern one deployment, and whose GPUs its quotas count."""

    effective: EffectivePolicy
    person: str | None
    channel: str | None
    team: tuple[str, str | None, frozenset[str] | None]  # PolicyBook.team_scope

    @property
    def has_quotas(self) -> bool:
        e = self.effective
        return e.max_gpus_per_person.value is not None or e.max_gpus_per_team.value is not None


def governing(services: Services, person: str | None, channel: str | None) -> Governing:
    """Asks Slack for user groups (cached): call it before any write transaction."""
    book = policy_book(services)
    effective = book.for_person(person or "", channel)
    team = book.team_scope(person or "", channel) if effective.max_gpus_per_team.value is not None \
        else ("account", None, None)
    return Governing(effective, person, channel, team)


def ask_for_create(planned: Any) -> DeploymentAsk:
    spec = planned.spec
    return DeploymentAsk(model=spec.base_model, accelerator_type=planned.accelerator_type,
                         accelerator_count=planned.accelerator_count, region=spec.region,
                         min_replicas=spec.min_replica_count, max_replicas=spec.max_replica_count,
                         unused_auto_delete_s=spec.unused_auto_delete_s, scale_to_zero_s=spec.scale_to_zero_window_s,
                         usd_per_hour=planned.usd_per_hour)


def ask_for_wire(wire: Mapping[str, Any], *, unused_delete_s: float | None, usd_per_hour: float | None) -> DeploymentAsk:
    """What a deployment is (or would be after an update), as the policy sees it: a camelCase
    wire Deployment."""
    min_replicas = int(wire.get("minReplicaCount") or 0)
    raw_max = wire.get("maxReplicaCount")
    placement = wire.get("placement") or {}
    region = placement.get("region") or (placement.get("regions") or [None])[0]
    window = (wire.get("autoscalingPolicy") or {}).get("scaleToZeroWindow")
    return DeploymentAsk(model=str(wire.get("baseModel") or ""), accelerator_type=wire.get("acceleratorType"),
                         accelerator_count=int(wire.get("acceleratorCount") or 1),
                         region=region, min_replicas=min_replicas,
                         max_replicas=int(raw_max) if raw_max is not None else max(min_replicas, 1),
                         unused_auto_delete_s=unused_delete_s, scale_to_zero_s=_seconds(window),
                         usd_per_hour=usd_per_hour)


def _seconds(duration: Any) -> float | None:
    """A wire duration (``"1800s"``) in seconds."""
    if duration is None:
        return None
    try:
        return float(str(duration).rstrip("s"))
    except ValueError:
        return None


def refusal_text(violations: list[Violation], *, admin: bool) -> str:
    lead = "the team policy does not allow this" if len(violations) == 1 else \
        f"the team policy does not allow this, for {len(violations)} reasons"
    lines = [f"{lead}:"] + [f"• {v.message}" for v in violations]
    lines.append("Nothing was changed. `/fw policy` shows the rules in force here.")
    if admin:
        lines.append('As an admin you may go ahead anyway with `--override "<reason>"` (audited).')
    return "\n".join(lines)


def enforce(services: Services, actor: Actor, violations: list[Violation], *, override: str | None,
            action: str, deployment_id: str | None) -> None:
    """Refuse (PolicyRefusal naming each rule and its source) unless there is nothing to refuse or
    an admin overrides with a reason, which is audited with the rules it broke."""
    if override is not None and not actor.is_admin:
        raise PolicyRefusal("`--override` is for fwbot admins (FWBOT_ADMINS); nothing was changed. "
                            "Ask an admin, or ask for something the policy allows (`/fw policy`).")
    if not violations:
        return
    if override is None:
        raise PolicyRefusal(refusal_text(violations, admin=actor.is_admin))
    services.store.audit(actor=actor.user_id, action="policy-override", result="ok", now=services.clock.now(),
                         deployment_id=deployment_id, channel=actor.channel_id,
                         request={"action": action, "reason": override,
                                  "rules": [{"rule": v.rule, "source": v.source} for v in violations]},
                         detail="; ".join(v.message for v in violations))


def check_ask(services: Services, actor: Actor, gov: Governing, ask: DeploymentAsk, *, override: str | None,
              action: str, deployment_id: str | None) -> None:
    enforce(services, actor, rules.check_request(gov.effective, ask), override=override, action=action,
            deployment_id=deployment_id)


def usage(services: Services, gov: Governing) -> tuple[int, int]:
    """GPUs committed now for the person and for their team (see :meth:`gpus_committed`)."""
    store = services.store
    person = store.gpus_committed(owners=[gov.person] if gov.person else [])
    kind, scope_id, members = gov.team
    if kind == "usergroup":
        team = store.gpus_committed(owners=members or frozenset())
    elif kind == "channel":
        team = store.gpus_committed(channel=scope_id)
    else:
        team = store.gpus_committed()
    return person, team


def check_quota(services: Services, actor: Actor, gov: Governing, asking_gpus: int, *, override: str | None,
                action: str, deployment_id: str | None) -> None:
    """Call inside ``store.db.write()``, before recording the claim or reservation: the count and
    the record are then one serialised step."""
    if asking_gpus <= 0 or not gov.has_quotas:
        return
    person, team = usage(services, gov)
    violations = rules.check_quota(gov.effective, person_gpus_running=person, team_gpus_running=team,
                                   asking_gpus=asking_gpus)
    enforce(services, actor, violations, override=override, action=action, deployment_id=deployment_id)


def approval_threshold_reason(services: Services, gov: Governing, *, new_usd: float | None,
                              before_usd: float | None = None) -> str | None:
    """Why the policy's ``max_usd_per_hour_without_approval`` needs an approver here, or None (the
    policy sets no threshold, or the request is within it: the global threshold decides then)."""
    setting = gov.effective.max_usd_per_hour_without_approval
    verdict = rules.needs_approval(gov.effective, new_usd)
    if not verdict:
        return None
    if before_usd is not None and new_usd is not None and new_usd <= before_usd:
        return None  # it does not raise the worst case
    shown = "unknown" if new_usd is None else format_usd(new_usd)
    return (f"its worst case, {shown}, is above the {format_usd(setting.value)} the policy allows without "
            f"approval ({setting.cite()})")


# -- updates -----------------------------------------------------------------------------------------
def worst_case_gpus(wire: Mapping[str, Any]) -> int:
    return ask_for_wire(wire, unused_delete_s=None, usd_per_hour=None).worst_case_gpus


def governing_deployment(services: Services, actor: Actor, record: Any) -> Governing:
    """The rules of an existing deployment: its owner's where it is tracked (the asker's, here,
    for one fwbot does not track)."""
    owner = record.owner if record is not None and record.owner else actor.user_id
    channel = record.channel if record is not None and record.channel else actor.channel_id
    return governing(services, owner, channel)


def check_change(services: Services, actor: Actor, gov: Governing, before: DeploymentAsk, after: DeploymentAsk, *,
                 override: str | None, deployment_id: str) -> None:
    """Refuse an update that breaks a rule anew, or makes a broken size limit worse. A deployment
    made before a rule existed may still be changed in other ways, and brought back within it."""
    was = {v.rule for v in rules.check_request(gov.effective, before)}
    worse = {"max_gpus_per_deployment": after.worst_case_gpus > before.worst_case_gpus,
             "max_replicas": after.max_replicas > before.max_replicas}
    violations = [v for v in rules.check_request(gov.effective, after)
                  if v.rule not in was or worse.get(v.rule, False)]
    enforce(services, actor, violations, override=override, action="update", deployment_id=deployment_id)


def reserve_update(services: Services, actor: Actor, gov: Governing, deployment_id: str,
                   before: DeploymentAsk, after: DeploymentAsk, *, override: str | None) -> None:
    """Check the GPUs an update adds against the quotas and count them at once, in one serialised
    write (the caller asks Fireworks next; a refusal there is mirrored back by
    :func:`apply_update`)."""
    added = after.worst_case_gpus - before.worst_case_gpus
    if added <= 0 or not gov.has_quotas:
        return
    with services.store.db.write():
        check_quota(services, actor, gov, added, override=override, action="update", deployment_id=deployment_id)
        services.store.reserve_gpus(deployment_id, max_replicas=after.max_replicas,
                                    accelerator_count=after.accelerator_count, now=services.clock.now())


def guarded_update(ctx, deployment_id: str, record, current: dict, after: dict, change, before_usd: float | None,
                   after_usd: float | None, *, override: str | None):
    """The policy's verdict on an update (raises PolicyRefusal): the governing rules and what the
    deployment is before and after, as the policy sees it."""
    s = ctx.services
    gov = governing_deployment(s, ctx.actor, record)
    unused_before = record.unused_delete_s if record else None
    unused_after = change.unused_auto_delete_s if change.unused_auto_delete_s is not None else unused_before
    before_ask = ask_for_wire(current, unused_delete_s=unused_before, usd_per_hour=before_usd)
    after_ask = ask_for_wire(after, unused_delete_s=unused_after, usd_per_hour=after_usd)
    check_change(s, ctx.actor, gov, before_ask, after_ask, override=override, deployment_id=deployment_id)
    return gov, before_ask, after_ask


def apply_update(ctx, gov, deployment_id: str, change, before_ask, after_ask, *, override: str | None,
                 approval_id: str | None = None) -> dict:
    """Count the GPUs it adds against the quotas (atomically), then ask Fireworks; when Fireworks
    refuses, the deployment is mirrored again so the reservation goes."""
    s = ctx.services
    reserve_update(s, ctx.actor, gov, deployment_id, before_ask, after_ask, override=override)
    try:
        return ctx.ops.update(ctx.actor, deployment_id, change, approval_id=approval_id)
    except Exception:
        if after_ask.worst_case_gpus > before_ask.worst_case_gpus:
            try:
                ctx.ops.mirror(s.gateway.get_deployment(deployment_id))
            except Exception:  # noqa: BLE001 - the next sync mirrors it
                log.warning("could not re-read %s after a failed update", deployment_id)
        raise


def guard_create(ctx, planned: Any, *, override: str | None = None) -> Governing:
    """The policy's verdict on a create (raises PolicyRefusal), for ``/fw deploy``, the deploy form
    and an approved request about to run: what it asks, then the quotas (said now, before an
    approver is bothered; counted again, atomically, with the owner claim in ``execute_deploy``)."""
    s = ctx.services
    gov = governing(s, ctx.actor.user_id, ctx.actor.channel_id)
    check_ask(s, ctx.actor, gov, ask_for_create(planned), override=override, action="deploy",
              deployment_id=planned.deployment_id)
    check_quota(s, ctx.actor, gov, planned.worst_case_gpus, override=override, action="deploy",
                deployment_id=planned.deployment_id)
    return gov


def undelete(services: Services, ops: Any, actor: Actor, deployment_id: str) -> dict:
    """Undelete within the quotas (``/fw undelete`` and the Undelete button on a deletion notice):
    a deployment that runs again counts its GPUs, checked and counted (its row marked as coming
    back) in one serialised write before Fireworks is asked; a refusal there is mirrored back."""
    reserved = False
    record = services.store.deployment(deployment_id)
    if record is not None:
        gov = governing_deployment(services, actor, record)  # asks Slack: before the transaction
        if gov.has_quotas:
            with services.store.db.write():
                record = services.store.deployment(deployment_id)
                if record is not None and record.state in ("DELETED", "DELETING"):
                    check_quota(services, actor, gov, record.worst_case_gpus,
                                override=None, action="undelete", deployment_id=deployment_id)
                    services.store.set_deployment_fields(deployment_id, services.clock.now(), state="CREATING")
                    reserved = True
    try:
        return ops.undelete(actor, deployment_id)
    except Exception:
        if reserved:
            try:
                ops.mirror(services.gateway.get_deployment(deployment_id))
            except Exception:  # noqa: BLE001 - the next sync mirrors it
                log.warning("could not re-read %s after a failed undelete", deployment_id)
        raise
