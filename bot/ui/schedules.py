"""Block Kit and sentences for off-hours schedules: the schedule in words with its zone and its
next transition, ``/fw schedule``'s replies, and the thread notes of the transitions fwbot made."""

from __future__ import annotations

from datetime import datetime

from bot.core.lifecycle import DeploymentLike
from bot.core.pricing import format_usd
from bot.core.schedules import RunningSchedule, postponed_down
from bot.ui import kit
from bot.ui.kit import Message
from bot.ui.lifecycle import COLD_START, local_time, remaining


def next_text(running: RunningSchedule, now: datetime, postponed: datetime | None = None, *,
              relative: bool = True) -> str:
    """The schedule's next transition (in its own zone), with what postponed a scale-down;
    ``relative`` adds how soon (not on a message that stays up for days)."""
    up = running.next(now, "up")
    down = postponed_down(running, postponed)
    zone = running.zone_name
    options: list[tuple[datetime, str]] = []
    if down is not None:
        at, moved = down
        why = " (postponed by a keep-warm or snooze)" if moved else ""
        options.append((at, f"scale to 0{why}"))
    if up is not None:
        options.append((up.at, f"back to min {running.schedule.up_min}"))
    if not options:
        return "no transition within a week"
    at, what = min(options, key=lambda o: o[0])
    if at <= now:
        return f"{what}, due now"
    soon = f", in {remaining((at - now).total_seconds())}" if relative else ""
    return f"{what} {local_time(at, zone, now)}{soon}"


def schedule_line(running: RunningSchedule | None, now: datetime, postponed: datetime | None = None, *,
                  relative: bool = True) -> str | None:
    """``*Schedule:* scale to 0 at 19:00 Mon–Fri, … (Europe/Berlin) · next: …``; ``None`` without one."""
    if running is None:
        return None
    upcoming = next_text(running, now, postponed, relative=relative)
    return f"*Schedule:* {kit.escape(running.describe())} · next: {upcoming}"


def render_schedule(deployment_id: str, running: RunningSchedule | None, *, now: datetime,
                    postponed: datetime | None = None, simulated: bool = False, set_by: str | None = None,
                    set_at: datetime | None = None) -> Message:
    """``/fw schedule <id>``: the schedule in force, or that there is none and how to set one."""
    name = f"`{kit.escape(deployment_id)}`"
    if running is None:
        text = (f":calendar: {name} has no schedule. Set one with `/fw schedule {kit.escape(deployment_id)} "
                "--down \"19:00 Mon-Fri\" --up \"08:00 Mon-Fri\"`.")
        return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])
    who = f" Set by {kit.mention(set_by)} {local_time(set_at, running.zone_name, now)}." if set_by and set_at else ""
    if running.from_policy:
        dep = kit.escape(deployment_id)
        who = (f" It is the team policy's schedule for {kit.escape(running.source or 'everyone')}, not one set on this "
               f"deployment. To override it, give `{dep}` a schedule of its own: `/fw schedule {dep} --down \"19:00 "
               "Mon-Fri\" --up \"08:00 Mon-Fri\"` (its own schedule wins over the policy's).")
    text = (f":calendar: {name}: {kit.escape(running.describe())}.\nNext: {next_text(running, now, postponed)}.{who}\n"
            "A keep-warm or snooze postpones a scale-down while it holds; one that lasts past the next "
            "scale-up skips that night.")
    return Message(text=f"{deployment_id}: {running.describe()}", blocks=[kit.section(text),
                                                                        kit.footer_context(simulated)])


def render_schedule_set(deployment_id: str, running: RunningSchedule, *, actor: str, now: datetime,
                        replaced: bool, dry_run: bool = False, simulated: bool = False,
                        overrides: str | None = None) -> Message:
    """``overrides``: the team policy's schedule that this one wins over, in words."""
    name = f"`{kit.escape(deployment_id)}`"
    what = f"{kit.escape(running.describe())}. Next: {next_text(running, now)}"
    if overrides:
        what += f". It overrides the team policy's schedule ({kit.escape(overrides)})"
    if dry_run:
        text = f":mag: Dry run — would {'replace the schedule of' if replaced else 'schedule'} {name}: {what}."
    else:
        text = (f":calendar: {kit.mention(actor)} {'changed the schedule of' if replaced else 'scheduled'} {name}: "
                f"{what}. fwbot warns in its thread before each scale-down.")
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def render_schedule_cleared(deployment_id: str, *, actor: str, had: str | None, dry_run: bool = False,
                            simulated: bool = False, policy: str | None = None) -> Message:
    """``policy``: the policy's schedule that applies once its own is gone (or that applies now,
    when it has none of its own: that one cannot be cleared here)."""
    name = f"`{kit.escape(deployment_id)}`"
    if had is None and policy is not None:
        text = (f":information_source: {name} has no schedule of its own to clear; the team policy's applies to it "
                f"({kit.escape(policy)}). Only a change to the policy file removes that one; a schedule of its own "
                f"(`/fw schedule {kit.escape(deployment_id)} --down …`) overrides it.")
    elif had is None:
        text = f":information_source: {name} has no schedule; nothing to clear."
    elif dry_run:
        text = f":mag: Dry run — would clear the schedule of {name} ({kit.escape(had)})."
    else:
        text = (f":calendar: {kit.mention(actor)} cleared the schedule of {name} (it was: {kit.escape(had)}). "
                "Its replicas stay as they are now.")
        if policy is not None:
            text += f" From now on the team policy's schedule applies to it: {kit.escape(policy)}."
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def render_scaled_down(dep: DeploymentLike, running_text: str, *, at: datetime, zone: str, lowered_from: int | None,
                       saved_usd_per_hour: float | None, simulated: bool = False) -> Message:
    """The thread note once Fireworks shows the scheduled scale-down."""
    lowered = f" (min replicas {lowered_from} → 0)" if lowered_from else ""
    text = (f":crescent_moon: {kit.mention(dep.owner)} fwbot scaled `{kit.escape(dep.id)}` to zero on its schedule "
            f"at {local_time(at, zone, at)}{lowered}; Fireworks shows 0 replicas. That saves "
            f"{format_usd(saved_usd_per_hour)}. The next request waits for {COLD_START}.\n"
            f"_Schedule: {kit.escape(running_text)}_")
    return Message(text=f"{dep.id} scaled to zero on its schedule", blocks=[kit.section(text),
                                                                            kit.footer_context(simulated)])


def render_scaled_up(dep: DeploymentLike, running_text: str, *, at: datetime, zone: str, up_min: int,
                     replicas: int, usd_per_hour: float | None, simulated: bool = False) -> Message:
    """The thread note once Fireworks shows the min replicas the schedule brings back."""
    starting = (f"{kit.counted(replicas, 'replica')} running" if replicas >= up_min
                else f"{kit.counted(replicas, 'replica')} running so far; Fireworks is starting the rest, "
                "which can take a few minutes")
    text = (f":sunrise: {kit.mention(dep.owner)} fwbot set min replicas of `{kit.escape(dep.id)}` back to {up_min} "
            f"on its schedule at {local_time(at, zone, at)}; Fireworks shows min replicas {up_min} ({starting}). "
            f"At min {up_min} it costs at least {format_usd(usd_per_hour)} however idle it is.\n"
            f"_Schedule: {kit.escape(running_text)}_")
    return Message(text=f"{dep.id} scaled back up on its schedule", blocks=[kit.section(text),
                                                                            kit.footer_context(simulated)])


def render_transition_failed(dep: DeploymentLike, kind: str, *, attempts: int, error: str,
                             usd_per_hour: float | None, simulated: bool = False) -> Message:
    """The truth when fwbot gave up on a scheduled transition."""
    what = "scale it to zero" if kind == "schedule_down" else "set its min replicas back up"
    state = (dep.state or "running").lower()
    text = (f":rotating_light: {kit.mention(dep.owner)} fwbot tried {kit.counted(attempts, 'time')} to {what} on "
            f"its schedule and could not: {kit.escape(error)}. `{kit.escape(dep.id)}` is still {state} with "
            f"{kit.counted(dep.replicas or 0, 'replica')} and can cost {format_usd(usd_per_hour)}. "
            f"`/fw scale {kit.escape(dep.id)} …` or `/fw update {kit.escape(dep.id)} --min-replica-count …` does "
            "it by hand.")
    return Message(text=f"fwbot could not carry out the schedule of {dep.id}",
                   blocks=[kit.section(text), kit.footer_context(simulated)])
