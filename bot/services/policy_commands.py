"""``/fw policy`` and ``/fw quota``: what the team policy says here, and GPUs against its quotas."""

from __future__ import annotations

from bot.core import requests
from bot.core.clock import iso
from bot.services import guardrails
from bot.services.context import Context
from bot.services.policy import policy_book
from bot.ui import kit
from bot.ui import policy as ui
from bot.ui.kit import Message


def do_policy(ctx: Context, cmd: requests.PolicyCommand) -> Message:
    s = ctx.services
    book = policy_book(s)
    who, channel = ctx.actor.user_id, ctx.actor.channel_id
    if cmd.target is not None:
        kind, target = cmd.target
        if kind == "channel":
            channel = target
        else:
            who = target
    loaded, refused = book.loaded, book.refused
    groups = book.usergroups_of(who)
    effective = book.for_person(who, channel)
    applying = {("channel", channel), *(("usergroup", g) for g in groups)}
    others = [r.source for r in loaded.policy.rules if (r.scope, r.scope_id) not in applying]
    view = ui.PolicyView(who=who, channel=channel, effective=effective, groups=groups, path=loaded.path,
                         loaded_at=iso(loaded.loaded_at) if loaded.loaded_at else None,
                         refused=refused.error if refused else None, other_rules=others)
    return ui.policy_message(view, simulated=s.simulated)


def do_quota(ctx: Context, cmd: requests.QuotaCommand) -> Message:
    s = ctx.services
    who = cmd.user_id or ctx.actor.user_id
    gov = guardrails.governing(s, who, ctx.actor.channel_id)
    kind, scope_id, _ = gov.team
    person_used, team_used = guardrails.usage(s, gov)
    scope = {"usergroup": f"user group <!subteam^{scope_id}>", "channel": f"deployments in {kit.channel_link(scope_id)}",
             "account": "the whole Fireworks account"}[kind]
    e = gov.effective
    lines = [ui.QuotaLine("You" if who == ctx.actor.user_id else "Them", person_used, e.max_gpus_per_person.value,
                          e.max_gpus_per_person.source, "deployments they own"),
             ui.QuotaLine("Team", team_used, e.max_gpus_per_team.value, e.max_gpus_per_team.source, scope)]
    mine = [(r.id, r.worst_case_gpus) for r in s.store.deployments(owner=who)
            if r.state not in ("DELETED", "DELETING")]
    return ui.quota_message(who, lines, mine, simulated=s.simulated)
