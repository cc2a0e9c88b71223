"""The lifecycle engine's shell: scrape traffic, sweep the idle timers, carry out what they decide.

Two scheduled jobs (see bot/jobs/scheduler.py):

``metrics``
    :class:`TrafficScraper` reads the account's metrics endpoint every ``FWBOT_METRICS_INTERVAL``
    (never less than 10 s apart, so at most 6 scrapes a minute) and records when each deployment
    last served requests. On 429 it waits as long as ``Retry-After`` says, on other failures it
    backs off exponentially.
``lifecycle``
    :meth:`LifecycleEngine.sweep` runs every ``FWBOT_SYNC_INTERVAL``. It carries out the bot's own
    due actions (``bot_actions``: auto-deletes, keep-warm reverts), then, per deployment, computes
    the idle timers (bot/core/lifecycle.py), edits warnings that no longer hold, claims the warnings
    that are due in SQLite *before* posting them (one digest per channel, paced), and offers the
    deployments of owners who left Slack to their channel.

Everything the bot must not forget is a row: a warning is claimed before it is posted and marked
sent after, so a restart re-posts what was claimed but never sent and never warns a key twice;
an action is scheduled under an idempotency key and re-run safely after a crash, re-checking the
deployment (and, before a deletion, fresh traffic) first. Buttons, ``/fw keep`` and the App Home
use the same engine, so every surface follows the same rules.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.adapters.fireworks import FireworksError, NotFound, RateLimited
from bot.adapters.outbox import Kind, Posted, Target, deployment_targets
from bot.core.clock import iso, parse_iso
from bot.core.durations import humanize
from bot.core.lifecycle import (
    GONE_STATES,
    METRICS_RATE_WINDOW_S,
    LifecyclePolicy,
    Lifetime,
    Timer,
    TimerWarning,
    WarningKey,
    action_key,
    can_keep_warm,
    can_wait_until,
    current_usd_per_hour,
    deletion_from_audit,
    digest,
    due_actions,
    due_warnings,
    earliest_last_request,
    keep_warm_revert_key,
    lifetime_due,
    lifetime_start,
    quiet_until,
    schedule_actions,
    stale_reason,
    timers,
    warning_key,
)
from bot.core.pricing import worst_case_usd_per_hour
from bot.core.requests import DeploymentChange
from bot.core.schedules import RunningSchedule
from bot.services.container import Services
from bot.services.deployments import Actor, Operations, UserError
from bot.services.lifetimes import lifetimes_for, quiet_now
from bot.services.people import SlackDirectory
from bot.services.policy import policy_book
from bot.services.schedules import policy_schedule_due, policy_schedules_for
from bot.services.schedules import running as running_schedule
from bot.services.tracking import announce_deletion, deletion_key, render_tracking
from bot.ui import lifecycle as ui
from bot.ui import schedules as schedule_ui
from bot.ui.kit import Message
from storage.actions import BotActionRow
from storage.deployments import DeploymentRecord
from storage.leases import LeaseLost
from storage.rows import new_token
from storage.schedules import ScheduleRow
from storage.warnings import WarningRow

log = logging.getLogger("fwbot.lifecycle")

FWBOT = "fwbot"  # the audit actor of the bot's own actions
BOT_ACTOR = Actor(FWBOT, None, is_admin=True)
KEEP_WARM_MIN_REPLICAS = 1
KEEP_WARM_LIMITS_S = (60.0, 30 * 86400.0)
SNOOZE_S = 24 * 3600.0
# The metrics endpoint allows 6 requests per minute per account.
MIN_SCRAPE_SPACING_S = 10.0
MAX_SCRAPE_BACKOFF_S = 600.0
# People are looked up in Slack at most this often (timezone, deactivated).
ACTION_MAX_ATTEMPTS = 5
ACTION_RETRY_FIRST_S = 30.0  # then 1m, 2m, 4m: about a quarter of an hour before a human is told
WARNINGS = "warnings"  # the outbox kind of warning posts
FINISHED = ("done", "cancelled", "failed")


class NotConfirmed(Exception):
    """Fireworks answered, but reading the deployment back does not show the change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- traffic ----------------------------------------------------------------------------------
class TrafficScraper:
    """Records per deployment when it last served requests, from the metrics endpoint.

    Never scrapes twice within :data:`MIN_SCRAPE_SPACING_S` (the account allows 6 a minute),
    whoever asks (the scheduled job or an auto-delete's re-check), and waits out a 429 for as
    long as its ``Retry-After`` says.
    """

    def __init__(self, services: Services) -> None:
        self.s = services
        self._lock = threading.Lock()
        self._last_attempt: datetime | None = None
        self._not_before: datetime | None = None
        self._failures = 0

    def scrape(self) -> dict[str, float] | None:
        """One scrape, if allowed now: request rates by deployment id, else ``None``."""
        now = self.s.clock.now()
        with self._lock:
            if self._not_before is not None and now < self._not_before:
                return None
            if self._last_attempt is not None and (now - self._last_attempt).total_seconds() < MIN_SCRAPE_SPACING_S:
                return None
            self._last_attempt = now
            try:
                rates = self.s.gateway.request_rates()
            except FireworksError as e:
                self._failures += 1
                if isinstance(e, RateLimited) and e.retry_after is not None:
                    wait = max(e.retry_after, MIN_SCRAPE_SPACING_S)
                else:
                    wait = min(self.s.settings.metrics_interval * 2 ** (self._failures - 1), MAX_SCRAPE_BACKOFF_S)
                self._not_before = now + timedelta(seconds=wait)
                log.warning("metrics scrape failed (%s); next attempt in %.0fs", e.message, wait)
                return None
            self._failures = 0
            self._not_before = None
        store = self.s.store
        # Deployments missing from the scrape served nothing (the endpoint lists running ones).
        known = store.known_live_ids()
        # A rate is over the minute before the scrape: the store records serving stretches (and
        # the timers bound the last request) with that window, never at the scrape itself.
        with store.db.write():
            store.hold_fence()  # a scrape from before this replica lost the lease is not recorded
            store.record_traffic_many({**dict.fromkeys(known, 0.0), **rates}, now,
                                      rate_window_s=METRICS_RATE_WINDOW_S)
        return rates


# -- people -----------------------------------------------------------------------------------
# What fwbot reads of a Slack user object, and so all it keeps.
# -- what the timers depend on ----------------------------------------------------------------
@dataclass(frozen=True)
class IdleState:
    """What one deployment's timers depend on besides its record, all read from history.

    ``last_traffic`` is when the metrics last showed requests, ``earliest_traffic`` the earliest
    the last request can have come (see :func:`bot.core.lifecycle.earliest_last_request`)."""

    last_traffic: datetime | None
    snoozed_until: datetime | None
    keep_warm_until: datetime | None
    scaled_up_at: datetime | None
    earliest_traffic: datetime | None = None
    schedule: ScheduleRow | None = None
    schedule_progress: datetime | None = None

    @property
    def postponed(self) -> datetime | None:
        """Until when a keep-warm or snooze holds off fwbot's own actions (the later of the two)."""
        times = [t for t in (self.snoozed_until, self.keep_warm_until) if t is not None]
        return max(times) if times else None
    renewal: tuple[datetime, str] | None = None  # the latest renewal of its lifetime (when, by whom)


@dataclass(frozen=True)
class History:
    """The idle state of every deployment (or of one), read with a few queries."""

    traffic: dict[str, datetime | None]
    postponed: dict[tuple[str, str], datetime]
    restarts: dict[str, datetime]
    earliest: dict[str, datetime | None] = field(default_factory=dict)
    schedules: dict[str, ScheduleRow] = field(default_factory=dict)
    schedule_progress: dict[str, datetime] = field(default_factory=dict)
    renewals: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, store, deployment_id: str | None = None) -> History:
        seen = store.traffic_seen(deployment_id)
        traffic = {k: last for k, (last, _) in seen.items()}
        earliest = {k: earliest_last_request(last, since) for k, (last, since) in seen.items()}
        return cls(traffic, store.postponements(deployment_id), store.scale_clock_restarts(deployment_id), earliest,
                   store.schedules(deployment_id), store.schedule_progress(deployment_id),
                   store.latest_renewals(deployment_id))

    def of(self, deployment_id: str) -> IdleState:
        return IdleState(
            last_traffic=self.traffic.get(deployment_id),
            earliest_traffic=self.earliest.get(deployment_id),
            # The latest postponements count even once they ended: the due time they set stays
            # the same, so its warnings keep their keys.
            snoozed_until=self.postponed.get((deployment_id, "snooze")),
            keep_warm_until=self.postponed.get((deployment_id, "keep_warm_revert")),
            # Replicas up from 0, a manual scale, or a changed replica range or autoscaling policy
            # (a keep-warm's revert among them) restart the platform's scale-to-zero clock.
            scaled_up_at=self.restarts.get(deployment_id),
            schedule=self.schedules.get(deployment_id),
            schedule_progress=self.schedule_progress.get(deployment_id),
            renewal=self.renewals.get(deployment_id),
        )


@dataclass
class Snapshot:
    """Deployments with their timers now, the warnings about those timers, the finished auto-deletes."""

    records: list[DeploymentRecord]
    history: History
    current: dict[str, list[Timer]]
    about: dict[str, list[WarningRow]]
    finished: set[str]
    schedules: dict[str, RunningSchedule] = field(default_factory=dict)

    def keys(self, deployment_id: str) -> list[tuple[str, str, str, float]]:
        return [r.key for r in self.about.get(deployment_id, [])]


# -- warnings as stored -----------------------------------------------------------------------
def snapshot_of(w: TimerWarning, dep: DeploymentRecord | None = None) -> dict:
    """A warning as JSON, so it can be rendered again exactly as it was decided (with the replicas
    the deployment had then)."""
    timer = asdict(w.timer)
    timer["due"], timer["anchor"] = iso(w.timer.due), iso(w.timer.anchor)
    timer["seen_idle_since"] = iso(w.timer.seen_idle_since) if w.timer.seen_idle_since else None
    snap = {"timer": timer, "lead_s": w.lead_s, "channel": w.channel, "decided_at": iso(w.decided_at)}
    if dep is not None:
        snap["as_warned"] = {"replicas": dep.replicas, "min_replicas": dep.min_replicas}
    return snap


@dataclass(frozen=True)
class AsWarned:
    """A deployment as one of its warnings described it, to quote that warning once it is resolved."""

    id: str
    owner: str | None
    replicas: int | None
    min_replicas: int | None

    @classmethod
    def of(cls, row: WarningRow, dep: DeploymentRecord) -> AsWarned:
        then = (row.snapshot or {}).get("as_warned") or {}
        return cls(dep.id, dep.owner, then.get("replicas", dep.replicas), then.get("min_replicas", dep.min_replicas))


def warning_of(row: WarningRow) -> TimerWarning:
    """The warning a stored row stands for."""
    snap = row.snapshot or {}
    data = dict(snap.get("timer") or {})
    due = parse_iso(row.due)
    assert due is not None
    data.update(deployment_id=row.deployment_id, kind=row.timer, due=due,
                anchor=parse_iso(data.get("anchor")) or due, seen_idle_since=parse_iso(data.get("seen_idle_since")))
    data.setdefault("source", "")
    data.setdefault("usd_per_hour", None)
    decided = parse_iso(snap.get("decided_at")) or row.sent_at or row.claimed_at
    return TimerWarning(Timer(**data), float(row.lead_s), row.channel, decided)


def as_of(w: TimerWarning, now: datetime) -> TimerWarning:
    """A warning as it reads at ``now``: a post that waited (a busy channel, a retry, its owner's
    quiet hours) must not promise "in 5m" of a time that is now closer, nor quote the dollars an
    idle stretch had cost when it was decided."""
    t = w.timer
    if t.kind == "idle_paying" and t.usd_per_hour is not None:
        idle_h = max(0.0, (now - (t.seen_idle_since or t.anchor)).total_seconds()) / 3600
        t = replace(t, usd_idle=t.usd_per_hour * idle_h)
    return replace(w, timer=t, decided_at=now)


@dataclass
class SweepReport:
    """What one sweep did (for tests and logs)."""

    warned: list[WarningKey] = field(default_factory=list)
    resolved: list[tuple[WarningKey, str]] = field(default_factory=list)
    posts: int = 0
    actions: list[tuple[str, str, str]] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KeepWarm:
    """The outcome of a keep-warm: until when, and what it changed and costs."""

    deployment_id: str
    until: datetime
    raised_from: int | None  # min replicas before, when the keep-warm raised them
    usd_per_hour: float | None  # what the warm replica costs
    extended: bool  # False when an earlier keep-warm already lasts longer
    dry_run: bool = False


# -- the engine -------------------------------------------------------------------------------
class LifecycleEngine:
    """Idle timers of every deployment, and everything done about them."""

    def __init__(self, services: Services, *, scraper: TrafficScraper | None = None,
                 directory: SlackDirectory | None = None) -> None:
        self.s = services
        self.ops = Operations(services)
        self.policy = LifecyclePolicy.from_settings(services.settings)
        self.scraper = scraper
        self.directory = directory or SlackDirectory(services)

    # -- reading --------------------------------------------------------------------------------
    def timers_for(self, dep: DeploymentRecord, now: datetime, state: IdleState | None = None, *,
                   lifetime: Lifetime | None | bool = True,
                   schedule: RunningSchedule | None | bool = True) -> list[Timer]:
        """The deployment's timers now. ``lifetime``: its :class:`Lifetime` when the caller has it
        (``None``: it has none), else (``True``) looked up in the policy in force."""
        st = state or History.load(self.s.store, dep.id).of(dep.id)
        if lifetime is True:
            lifetime = lifetimes_for(self.s, [dep], {dep.id: st.renewal} if st.renewal else {}).get(dep.id)
        return timers(dep, st.last_traffic, self.policy, now, self.s.prices, snoozed_until=st.snoozed_until,
                      keep_warm_until=st.keep_warm_until, scaled_up_at=st.scaled_up_at,
                      earliest_traffic=st.earliest_traffic,
                      schedule=self.schedule_of(dep, st) if schedule is True else schedule or None,
                      lifetime=lifetime or None)
    def schedule_of(self, dep: DeploymentRecord, state: IdleState | None = None, *,
                    policy: Any = True) -> RunningSchedule | None:
        """The deployment's schedule where it stands, in its owner's zone (``None`` without one):
        its own, else the team policy's (``policy``: the one the caller looked up, else ``True``)."""
        st = state or History.load(self.s.store, dep.id).of(dep.id)
        return running_schedule(self.s, self.directory, dep, st.schedule, st.schedule_progress, policy=policy)

    def _shortest_lifetime_s(self) -> float | None:
        """The shortest ``max_lifetime`` any part of the policy sets: no deployment's is shorter."""
        policy = policy_book(self.s).policy
        limits = [r.values["max_lifetime"] for r in (policy.defaults, *policy.rules) if "max_lifetime" in r.values]
        return min(limits) if limits else None

    def snapshot(self, now: datetime, records: list[DeploymentRecord] | None = None, *,
                 due_only: bool = False) -> Snapshot:
        """Everything a sweep decides from, in a few queries whatever the number of deployments.

        ``due_only`` (every deployment, for the sweep): only deployments with an open warning or
        whose :func:`quiet_until` has come are in it; the others can have nothing due now, and
        cost the sweep a bound from a few columns instead of a record and its timers.
        """
        store = self.s.store
        if due_only:
            history = History.load(store)
            watched, policy, traffic = store.deployments_with_open_warnings(), self.policy, history.traffic
            watched = set(watched) | set(history.schedules)  # a schedule's transitions come whatever the traffic
            fields = store.timer_fields()
            # A policy's schedule, only where its next transition (or the warning before it) has come.
            watched |= policy_schedule_due(self.s, self.directory,
                                           [f for f in fields if f.id not in watched],
                                           history.schedule_progress, now, policy.warn_before_scale_to_zero_s)
            shortest = self._shortest_lifetime_s()
            due_ids = []
            for f in fields:
                if f.id not in watched:
                    # A renewal only moves a lifetime later: the shortest limit from creation bounds it.
                    life = (lifetime_start(f) + timedelta(seconds=shortest)) if shortest else None
                    quiet = quiet_until(f, traffic.get(f.id), policy, history.earliest.get(f.id), life)
                    if quiet is None or now < quiet:
                        continue
                due_ids.append(f.id)
            records = store.deployments_with_ids(due_ids)
        else:
            records = store.deployments() if records is None else records
            history = History.load(store, records[0].id if len(records) == 1 else None)
        by_policy = policy_schedules_for(self.s, [(d.id, d.owner, d.channel) for d in records
                                                  if d.id not in history.schedules])
        scheduled = {d.id: r for d in records
                     if (r := self.schedule_of(d, history.of(d.id), policy=by_policy.get(d.id))) is not None}
        lifetimes = lifetimes_for(self.s, records, history.renewals)
        current = {d.id: self.timers_for(d, now, history.of(d.id), lifetime=lifetimes.get(d.id),
                                         schedule=scheduled.get(d.id)) for d in records}
        about: dict[str, list[WarningRow]] = {}
        for row in store.warnings_about([(t.deployment_id, t.kind, t.due_iso) for ts in current.values() for t in ts]):
            about.setdefault(row.deployment_id, []).append(row)
        candidates = [action_key(t) for ts in current.values() for t in ts if t.bot_acts]
        candidates += [a.key for d in records if d.id in scheduled
                       for a in schedule_actions(d, scheduled[d.id], now, postponed=history.of(d.id).postponed)]
        finished = {k for k, status in store.action_statuses(candidates).items() if status in FINISHED}
        return Snapshot(records, history, current, about, finished, scheduled)

    def refresh(self, deployment_id: str) -> DeploymentRecord | None:
        """Read one deployment from Fireworks now and mirror it (a click must not act on old news).

        A deletion fwbot did not make, seen here first, is announced here (the reconcile loop will
        find nothing left to notice)."""
        store = self.s.store
        try:
            before, after = self.ops.mirror(self.s.gateway.get_deployment(deployment_id))
        except NotFound:
            before = store.deployment(deployment_id)
            store.mark_gone(deployment_id, self.s.clock.now())
            after = store.deployment(deployment_id)
        if before is not None and after is not None and before is not after:
            announce_deletion(self.s, before, after, self.s.clock.now())
        return store.deployment(deployment_id)

    def deletion_reason(self, dep: DeploymentRecord, now: datetime) -> str | None:
        """Who or what deleted a deployment, why and when, as one line (``None`` when not known)."""
        deletion = deletion_from_audit(self.s.store.audit_trail(dep.id, limit=20))
        if deletion is None:
            return None
        return ui.deletion_line(deletion, tz=self.directory.tz(dep.owner), now=now, name_of=self.directory.handle)

    def no_longer_holds(self, row: WarningRow, dep: DeploymentRecord | None, current: list[Timer],
                        now: datetime) -> str | None:
        """Why a warning's message must be edited, or None while its timer still stands as warned."""
        if dep is not None and dep.gone_at is None and dep.state not in GONE_STATES and any(
            t.kind == row.timer and t.due_iso == row.due for t in current
        ):
            return None
        if dep is not None and (dep.gone_at is not None or dep.state in GONE_STATES):
            said = self.deletion_reason(dep, now)
            if said:
                return said
        if dep is not None and row.timer == "scale_to_zero" and dep.replicas == 0:
            return f"it has scaled to zero (seen at {self._when(now, dep.owner, now)})"
        last = self.s.store.last_traffic(row.deployment_id)
        owner = dep.owner if dep is not None else None
        return stale_reason(row.key, current, dep, last, now, warned_at=row.sent_at,
                            show_time=lambda t: self._when(t, owner, now)) or "no longer applies"

    # -- messages -------------------------------------------------------------------------------
    def render_rows(self, rows: list[WarningRow]) -> Message:
        """The message holding these warnings, as it should look now."""
        ws = [warning_of(r) for r in rows]
        resolved = {w.key: r.resolution or "no longer applies" for w, r in zip(ws, rows, strict=True)
                    if not r.is_open}
        deps = {w.deployment_id: self.s.store.deployment(w.deployment_id) for w in ws}
        tzs = {d.owner: self.directory.tz(d.owner) for d in deps.values() if d is not None and d.owner}
        if len(rows) == 1 and resolved:
            w, dep, row = ws[0], deps[ws[0].deployment_id], rows[0]
            tz = tzs.get(dep.owner) if dep is not None and dep.owner else None
            # The warning quoted as it was posted: its time then, the replicas it had then.
            original = None
            if dep is not None:
                as_posted = replace(w, decided_at=row.sent_at or w.decided_at)
                original = ui.warning_text(as_posted, AsWarned.of(row, dep), owner_tz=tz)  # type: ignore[arg-type]
            return ui.render_resolved(w, resolved[w.key], simulated=self.s.simulated, original=original,
                                      owner_tz=tz)
        tokens = {w.key: r.token for w, r in zip(ws, rows, strict=True)}
        return ui.render_digest(ws, deps, tokens, owner_tz=tzs, simulated=self.s.simulated,  # type: ignore[arg-type]
                                resolved=resolved)

    def refresh_message(self, channel: str | None, ts: str | None) -> None:
        """Re-render a posted warning (or digest) after some of its warnings were resolved."""
        if not channel or not ts:
            return
        rows = self.s.store.warnings_in_message(channel, ts)
        if not rows:
            return
        try:
            self.s.poster.update(channel, ts, self.render_rows(rows))
        except SlackApiError as e:
            log.warning("could not edit warning %s/%s: %s", channel, ts, e.response.get("error"))

    def settle(self, deployment_id: str, resolution: str, now: datetime | None = None) -> list[WarningRow]:
        """Resolve every open warning of a deployment whose timer no longer stands, and edit them.

        Called after a change made from a button, ``/fw keep`` or the App Home, with what was done
        as the resolution (e.g. "kept warm until 15:00 by @dana").
        """
        now = now or self.s.clock.now()
        dep = self.s.store.deployment(deployment_id)
        current = self.timers_for(dep, now) if dep else []
        closed = []
        for row in self.s.store.warnings(deployment_id=deployment_id, statuses=("claimed", "sent")):
            if self.no_longer_holds(row, dep, current, now) is None:
                continue
            if self.s.store.resolve_warning(row.id, resolution, now, status="resolved" if row.ts else "stale"):
                closed.append(row)
        for channel, ts in {(r.channel, r.ts) for r in closed}:
            self.refresh_message(channel, ts)
        return closed

    def edit_tracking(self, deployment_id: str) -> None:
        """Show a change the bot made (and mirrored) on the deployment's tracking message."""
        dep = self.s.store.deployment(deployment_id)
        if dep is None or not (dep.channel and dep.thread_ts):
            return
        try:
            self.s.poster.update(dep.channel, dep.thread_ts, render_tracking(self.s, dep))
        except SlackApiError as e:
            log.warning("could not edit the tracking message of %s: %s", deployment_id, e.response.get("error"))

    def note_in_thread(self, dep: DeploymentRecord | None, message: Message, *, key: str | None = None,
                       wait: bool | None = None, **extra: Any) -> dict | None:
        """Post in the deployment's thread, through the outbox: if the thread or channel refuses,
        the owner gets it by DM, else the alert channel. Returns where it landed (``channel``,
        ``ts``), or ``None`` while it waits for its channel's slot or a retry. ``key`` makes a
        repeat of the same intent (a re-run after a crash) post nothing twice."""
        if dep is None:
            return None
        delivery = self.s.outbox.send(key or f"note:{dep.id}:{new_token()}", "note",
                                      deployment_targets(self.s, dep.id, owner=dep.owner), message,
                                      extra=extra or None, wait=wait)
        if delivery.posted is None:
            if delivery.error:
                log.warning("could not post about %s anywhere: %s", dep.id, delivery.error)
            return None
        return {"channel": delivery.posted.channel, "ts": delivery.posted.ts}

    # -- the sweep ------------------------------------------------------------------------------
    def sweep(self) -> SweepReport:
        """One pass: the bot's due actions, then warnings (edits, re-posts, new ones), then owners."""
        report = SweepReport()
        # Posts that wait for a retry, or that a crash left unfinished, go first.
        self.s.outbox.run_due(wait=True)
        now = self.s.clock.now()
        snap = self.snapshot(now, due_only=True)
        for dep in snap.records:
            for action in self._due_actions(dep, snap, now):
                with self.s.store.db.write():
                    self.s.store.hold_fence()  # the leader's decisions, only while it leads
                    self.s.store.schedule_action(action.key, action.kind, dep.id, action.due, now,
                                                 payload={"reason": action.reason})
        self.run_actions(report)
        if report.actions:  # what they changed (a deletion, a revert) shows in the timers from now on
            now = self.s.clock.now()
            snap = self.snapshot(now, due_only=True)
        self._edit_stale(snap, now, report)
        self._post_due(snap, now, report)
        report.orphans = self.offer_orphans(now=now)
        return report

    def _due_actions(self, dep: DeploymentRecord, snap: Snapshot, now: datetime):
        """The auto-deletes and schedule transitions due now. Keep-warm reverts are not asked for:
        :meth:`keep_warm` put each on record, with the minimum to restore, before it raised anything."""
        sent = {r.key: r.sent_at for r in snap.about.get(dep.id, []) if r.sent_at is not None}
        return due_actions(dep, snap.current[dep.id], self.policy, now, warnings_sent=sent,  # type: ignore[arg-type]
                           done=snap.finished) + \
            schedule_actions(dep, snap.schedules.get(dep.id), now,
                             postponed=snap.history.of(dep.id).postponed, done=snap.finished)

    def _edit_stale(self, snap: Snapshot, now: datetime, report: SweepReport) -> None:
        by_id = {d.id: d for d in snap.records}
        touched = set()
        for row in self.s.store.warnings(statuses=("sent",)):
            dep = by_id.get(row.deployment_id) or self.s.store.deployment(row.deployment_id)
            reason = self.no_longer_holds(row, dep, snap.current.get(row.deployment_id, []), now)
            if reason and self.s.store.resolve_warning(row.id, reason, now):
                touched.add((row.channel, row.ts))
                report.resolved.append((warning_key(*row.key), reason))
        for channel, ts in sorted(touched, key=str):
            self.refresh_message(channel, ts)

    def _post_due(self, snap: Snapshot, now: datetime, report: SweepReport) -> None:
        store = self.s.store
        pending: list[tuple[TimerWarning, WarningRow]] = []
        # Claimed rows whose post is in the outbox are delivered (or resumed after a crash) there;
        # those held for their reader's working hours only while they still stand.
        effects = store.effects.open(WARNINGS)
        in_outbox = {int(i) for e in effects for i in e.payload["args"]["rows"]}
        held = {int(i) for e in effects if e.next_at > now for i in e.payload["args"]["rows"]}
        # Claimed but never handed to the outbox (a crash in between): post now if still due.
        for row in store.warnings(statuses=("claimed",)):
            if row.id in in_outbox and row.id not in held:
                continue
            others = [k for k in snap.keys(row.deployment_id) if k != row.key]
            still = [w for w in due_warnings(snap.current.get(row.deployment_id, []), self.policy, now, others)
                     if w.key == warning_key(*row.key)]
            if row.id in held:
                if not still:  # its outbox post is cancelled when its time comes (still_wanted)
                    store.resolve_warning(row.id, "no longer due when quiet hours ended", now, status="stale")
            elif still:
                pending.append((still[0], row))
            else:
                store.resolve_warning(row.id, "no longer due when it could be posted", now, status="stale")
        for dep in snap.records:
            for w in due_warnings(snap.current[dep.id], self.policy, now, snap.keys(dep.id)):
                if w.channel is None:
                    log.warning("no channel to warn about %s in (set FWBOT_ALERT_CHANNEL)", dep.id)
                    continue
                with store.db.write():
                    # Claimed only under the lease the sweep began with: a leader that lost it
                    # (paused past its expiry) claims nothing, and stops here.
                    store.hold_fence()
                    row = store.claim_warning(w.deployment_id, w.kind, w.timer.due_iso, w.lead_s,
                                              channel=w.channel, snapshot=snapshot_of(w, dep), now=now)
                if row is not None:
                    pending.append((w, row))
        rows = {w.key: row for w, row in pending}
        # Quiet hours: what can wait is held until its owner's next working moment; what cannot goes
        # out now and says why.
        batches: dict[datetime | None, list[TimerWarning]] = {}
        notes: dict[WarningKey, str] = {}
        for w, _ in pending:
            dep = next((d for d in snap.records if d.id == w.deployment_id), None)
            quiet = quiet_now(self.s, w.timer.owner, w.timer.channel or (dep.channel if dep else None), now,
                              directory=self.directory)
            if quiet is not None and can_wait_until(w.timer, self.policy, quiet.until):
                batches.setdefault(quiet.until, []).append(w)
                continue
            if quiet is not None:
                notes[w.key] = ui.quiet_hours_note(w, quiet.until, quiet.tz, now)
            batches.setdefault(None, []).append(w)
        for not_before, batch in batches.items():
            self._send_warnings(batch, rows, notes, not_before, report)

    def _send_warnings(self, batch: list[TimerWarning], rows: dict[WarningKey, WarningRow],
                       notes: dict[WarningKey, str], not_before: datetime | None, report: SweepReport) -> None:
        """Hand claimed warnings to the outbox, one digest per channel; held until ``not_before``."""
        store = self.s.store
        for group in digest(batch):
            assert group.channel is not None
            group_rows = [rows[w.key] for w in group.warnings]
            deps = {w.deployment_id: store.deployment(w.deployment_id) for w in group.warnings}
            tzs = {d.owner: self.directory.tz(d.owner) for d in deps.values() if d is not None and d.owner}
            group_notes = {w.key: notes[w.key] for w in group.warnings if w.key in notes}
            message = ui.render_digest(group.warnings, deps, {w.key: rows[w.key].token for w in group.warnings},  # type: ignore[arg-type]
                                       owner_tz=tzs, simulated=self.s.simulated, notes=group_notes)
            targets = [Target("thread", channel=group.channel, thread_ts=group.thread_ts)] if group.thread_ts else []
            targets.append(Target("channel", channel=group.channel))
            targets += [Target("owner DM", user=owner) for owner in dict.fromkeys(
                d.owner for d in deps.values() if d is not None and d.owner)]
            if self.policy.alert_channel and self.policy.alert_channel != group.channel:
                targets.append(Target("alert channel", channel=self.policy.alert_channel))
            ids = sorted(r.id for r in group_rows)
            delivery = self.s.outbox.send(
                f"warnings:{','.join(map(str, ids))}", WARNINGS, targets, message, not_before=not_before,
                args={"rows": ids, "snapshots": {str(rows[w.key].id): snapshot_of(w, deps[w.deployment_id])
                                                 for w in group.warnings},
                      "notes": {str(rows[k].id): note for k, note in group_notes.items()}})
            if delivery.posted is None:
                continue
            report.posts += 1
            report.warned += [w.key for w in group.warnings]

    # -- the bot's own actions ------------------------------------------------------------------
    def run_actions(self, report: SweepReport | None = None) -> None:
        """Carry out every due action, and re-run those a crash interrupted.

        A failed attempt is retried with backoff (:data:`ACTION_RETRY_FIRST_S`, doubling); after
        :data:`ACTION_MAX_ATTEMPTS` the action fails and the people concerned are told the truth.
        """
        now = self.s.clock.now()
        for row in self.s.store.runnable_actions(now):
            retry_at = parse_iso(row.payload.get("retry_at"))
            if retry_at is not None and now < retry_at:
                continue
            try:
                outcome = self._run(row, now)
            except LeaseLost:
                raise  # not the action's failure: the sweep stops, the new leader carries it out
            except Exception as e:  # noqa: BLE001 - one failing action must not hold up the others
                message = getattr(e, "message", None) or str(e) or type(e).__name__
                attempts = int(row.payload.get("failures") or 0) + 1
                log.warning("%s failed (attempt %d of %d): %s", row.key, attempts, ACTION_MAX_ATTEMPTS, message,
                            exc_info=not isinstance(e, FireworksError | SlackApiError | UserError | NotConfirmed))
                if attempts < ACTION_MAX_ATTEMPTS:
                    delay = ACTION_RETRY_FIRST_S * 2 ** max(0, attempts - 1)
                    self.s.store.note_action_progress(row.key, now, retry_at=iso(now + timedelta(seconds=delay)),
                                                      failures=attempts, last_error=message)
                    continue
                self.s.store.finish_action(row.key, "failed", message, now)
                self._tell_action_failed(row, attempts, message, now)
                outcome = ("failed", message)
                if report is not None:
                    report.actions.append((row.key, *outcome))
                continue
            if outcome is None:
                continue
            status, result = outcome
            self.s.store.finish_action(row.key, status, result, now)
            if report is not None:
                report.actions.append((row.key, status, result))

    def _tell_action_failed(self, row: BotActionRow, attempts: int, error: str, now: datetime) -> None:
        """An action fwbot gave up on: the thread, the owner (DM) and the alert channel hear the truth."""
        if row.kind in ("schedule_down", "schedule_up"):
            self._tell_transition_failed(row, attempts, error)
            return
        if row.kind not in ("auto_delete", "lifetime_delete"):
            return
        timer_kind = "max_lifetime" if row.kind == "lifetime_delete" else "auto_delete"
        dep = self.refresh_quietly(row.deployment_id) or self.s.store.deployment(row.deployment_id)
        if dep is None:
            return
        message = ui.render_auto_delete_failed(dep, simulated=self.s.simulated, attempts=attempts, error=error,
                                               usd_per_hour=self._usd_now(dep))
        self.ops.audit(FWBOT, "auto-delete", "error", deployment_id=dep.id, channel=dep.channel,
                       request={"due": iso(row.due_at)}, detail=f"gave up after {attempts} attempts: {error}")
        due = iso(row.due_at)
        for r in self.s.store.warnings(deployment_id=dep.id):
            if r.timer == timer_kind and r.due == due and r.is_open:
                self.s.store.resolve_warning(r.id, f"fwbot could not delete it ({error}); it is still running", now)
                self.refresh_message(r.channel, r.ts)
        outbox, key = self.s.outbox, f"auto-delete-failed:{row.key}"
        outbox.send(f"{key}:thread", "note", deployment_targets(self.s, dep.id, alert=False), message)
        if dep.owner:
            outbox.send(f"{key}:owner", "note", [Target("owner DM", user=dep.owner)], message)
        if self.policy.alert_channel:
            outbox.send(f"{key}:alert", "note", [Target("alert channel", channel=self.policy.alert_channel)], message)

    def _tell_transition_failed(self, row: BotActionRow, attempts: int, error: str) -> None:
        dep = self.refresh_quietly(row.deployment_id) or self.s.store.deployment(row.deployment_id)
        if dep is None:
            return
        message = schedule_ui.render_transition_failed(dep, row.kind, attempts=attempts, error=error,
                                                       usd_per_hour=self._usd_now(dep), simulated=self.s.simulated)
        self.ops.audit(FWBOT, "scheduled scale-down" if row.kind == "schedule_down" else "scheduled scale-up",
                       "error", deployment_id=dep.id, channel=dep.channel, request={"due": iso(row.due_at)},
                       detail=f"gave up after {attempts} attempts: {error}")
        outbox, key = self.s.outbox, f"schedule-failed:{row.key}"
        outbox.send(f"{key}:thread", "note", deployment_targets(self.s, dep.id, owner=dep.owner), message)
        if self.policy.alert_channel:
            outbox.send(f"{key}:alert", "note", [Target("alert channel", channel=self.policy.alert_channel)], message)

    def refresh_quietly(self, deployment_id: str) -> DeploymentRecord | None:
        """:meth:`refresh`, or ``None`` when Fireworks cannot be read right now."""
        try:
            return self.refresh(deployment_id)
        except FireworksError:
            return None

    def _run(self, row: BotActionRow, now: datetime) -> tuple[str, str] | None:
        if row.kind == "snooze":
            return "done", "snooze ended"
        if row.kind == "keep_warm_revert":
            self._start_action(row.key, now)
            return self._revert_keep_warm(row, now)
        if row.kind in ("auto_delete", "lifetime_delete"):
            return self._auto_delete(row, now)
        if row.kind in ("schedule_down", "schedule_up"):
            return self._scheduled(row, now)
        return "failed", f"unknown action kind {row.kind}"

    def _start_action(self, key: str, now: datetime) -> None:
        """Mark an action running; in the sweep, only under the lease it began with."""
        with self.s.store.db.write():
            self.s.store.hold_fence()
            self.s.store.start_action(key, now)

    def _revert_keep_warm(self, row: BotActionRow, now: datetime) -> tuple[str, str]:
        store, dep_id = self.s.store, row.deployment_id
        restore = row.payload.get("restore_min")
        if restore is None:
            return "done", "min replicas were not raised; nothing to put back"
        if not row.payload.get("reverted_at"):
            dep = self.refresh(dep_id)
            if dep is None or dep.gone_at is not None or dep.state in GONE_STATES:
                return "done", "the deployment is gone"
            set_to = int(row.payload.get("set_min", KEEP_WARM_MIN_REPLICAS))
            if dep.min_replicas == int(restore) and row.attempts > 0:
                # An earlier run's update landed but the run died before recording it (a crash):
                # finish that run (audit and note) instead of calling it someone else's change.
                self.ops.audit(BOT_ACTOR.user_id, "update", "ok", deployment_id=dep_id,
                               request={"min_replica_count": int(restore), "revert": row.key},
                               detail="keep-warm revert found already applied after an interrupted run")
            elif dep.min_replicas != set_to:
                return "done", f"min replicas were changed to {dep.min_replicas} meanwhile; left as they are"
            else:
                store.hold_fence()
                self.ops.update(BOT_ACTOR, dep_id, DeploymentChange(min_replica_count=int(restore)))
            store.note_action_progress(row.key, now, reverted_at=iso(now))
            self.edit_tracking(dep_id)
        if not row.payload.get("noted"):
            dep = store.deployment(dep_id)
            if dep is not None:
                self.note_in_thread(dep, ui.render_keep_warm_ended(dep, int(restore), simulated=self.s.simulated))
            store.note_action_progress(row.key, now, noted=True)
        return "done", f"min replicas back to {restore}"

    def _scheduled(self, row: BotActionRow, now: datetime) -> tuple[str, str] | None:
        """Carry out one transition of a deployment's schedule, once: the down transition sets min
        replicas 0 and scales to 0, the up transition sets the min replicas the schedule names.

        Fireworks is read first on every attempt, and only what it does not show yet is sent
        (both calls set a value, so one repeated after a crash changes nothing); the thread hears
        of it once Fireworks shows it, under a key of its own, so a re-run posts nothing twice.
        Until the first call is sent the transition is re-checked (a keep-warm or snooze since,
        a changed or cleared schedule, the deployment gone) and dropped when no longer due."""
        store, dep_id, down = self.s.store, row.deployment_id, row.kind == "schedule_down"
        dep = self.refresh(dep_id)
        if dep is None or dep.gone_at is not None or dep.state in GONE_STATES:
            return "cancelled", "the deployment is gone"
        if not row.payload.get("sent_at"):
            snap = self.snapshot(now, [dep])
            running = snap.schedules.get(dep_id)
            if running is None or row.key not in {a.key for a in self._due_actions(dep, snap, now)}:
                return "cancelled", "no longer due (the schedule changed, or a keep-warm or snooze holds)"
            if dep.state not in ("READY", "UPDATING"):
                return "cancelled", f"it is {dep.state}: there is nothing to scale"
            up_min = running.schedule.up_min
            if down and not dep.min_replicas and not dep.replicas:
                return "done", "already at zero (min replicas 0); nothing to do"
            if not down and dep.min_replicas == up_min:
                return "done", f"min replicas already {up_min}; nothing to do"
            if not down:
                problem = DeploymentChange(min_replica_count=up_min).problem_with(dep.wire or {})
                if problem:
                    raise UserError(f"cannot set min replicas to {up_min}: {problem}")
            self._start_action(row.key, now)
            with store.db.write():
                store.hold_fence()  # right before Fireworks is called
                store.note_action_progress(row.key, now, sent_at=iso(now), zone=running.zone_name,
                                           described=running.describe(), up_min=up_min,
                                           min_before=dep.min_replicas, replicas_before=dep.replicas)
            row = store.bot_action(row.key) or row
        else:
            self._start_action(row.key, now)
        up_min = int(row.payload.get("up_min") or 1)
        if down:
            if dep.min_replicas:
                self.ops.update(BOT_ACTOR, dep_id, DeploymentChange(min_replica_count=0))
                dep = store.deployment(dep_id) or dep
            if dep.replicas:
                self.ops.scale(BOT_ACTOR, dep_id, 0)
        elif dep.min_replicas != up_min:
            self.ops.update(BOT_ACTOR, dep_id, DeploymentChange(min_replica_count=up_min))
        dep = self.refresh(dep_id)
        if dep is None or dep.gone_at is not None or dep.state in GONE_STATES:
            return "cancelled", "the deployment was deleted meanwhile"
        if down and (dep.min_replicas or dep.replicas):
            raise NotConfirmed(f"Fireworks shows `{dep_id}` with {dep.replicas} replicas (min {dep.min_replicas}), "
                               "not 0")
        if not down and dep.min_replicas != up_min:
            raise NotConfirmed(f"Fireworks shows `{dep_id}` with min replicas {dep.min_replicas}, not {up_min}")
        if not down:
            # A keep-warm that started during the night would put back the night's 0 when it ends.
            for pending in store.bot_actions(deployment_id=dep_id, kind="keep_warm_revert", statuses=("scheduled",)):
                if pending.payload.get("restore_min") is not None:
                    store.note_action_progress(pending.key, now, restore_min=up_min)
        zone, described = str(row.payload.get("zone") or "UTC"), str(row.payload.get("described") or "")
        if not row.payload.get("audited"):
            self.ops.audit(FWBOT, "scheduled scale-down" if down else "scheduled scale-up", "ok", deployment_id=dep_id,
                           channel=dep.channel, request={"due": iso(row.due_at), "schedule": described,
                                                         **({} if down else {"min_replica_count": up_min})},
                           detail="confirmed: Fireworks shows it")
            store.note_action_progress(row.key, now, audited=True)
        if down:
            said = f"scaled to zero on its schedule at {ui.local_time(row.due_at, zone, now)}"
            for r in store.warnings(deployment_id=dep_id, statuses=("claimed", "sent")):
                if r.timer == "schedule_down" and r.due == iso(row.due_at) and store.resolve_warning(r.id, said, now):
                    self.refresh_message(r.channel, r.ts)
            before = row.payload.get("min_before")
            note = schedule_ui.render_scaled_down(
                dep, described, at=row.due_at, zone=zone, lowered_from=int(before) if before else None,
                saved_usd_per_hour=worst_case_usd_per_hour(int(row.payload.get("replicas_before") or 0),
                                                           dep.accelerator_count, dep.accelerator_type, self.s.prices,
                                                           single_region=dep.single_region),
                simulated=self.s.simulated)
        else:
            note = schedule_ui.render_scaled_up(
                dep, described, at=row.due_at, zone=zone, up_min=up_min, replicas=dep.replicas or 0,
                usd_per_hour=worst_case_usd_per_hour(up_min, dep.accelerator_count, dep.accelerator_type,
                                                     self.s.prices, single_region=dep.single_region),
                simulated=self.s.simulated)
        self.note_in_thread(dep, note, key=f"{row.key}:note")
        self.edit_tracking(dep_id)
        return "done", "scaled to zero" if down else f"min replicas {up_min}"

    def _traffic_is_fresh(self, deployment_id: str, now: datetime) -> bool:
        """Scrape now if allowed; True when the traffic record is recent enough to act on."""
        if self.scraper is not None:
            self.scraper.scrape()
        row = self.s.store.traffic_rows().get(deployment_id) or {}
        scraped = parse_iso(row.get("scraped_at"))
        limit = max(2 * self.s.settings.metrics_interval, 60.0)
        return scraped is not None and (now - scraped).total_seconds() <= limit

    def _auto_delete(self, row: BotActionRow, now: datetime) -> tuple[str, str] | None:
        """Soft-delete an unused deployment (``auto_delete``) or one at the end of its maximum
        lifetime (``lifetime_delete``), re-checking everything first; say so once Fireworks
        confirms it. Fireworks is read first on every attempt: a deletion an earlier attempt sent
        (before a crash, or answered 5xx although it landed) is confirmed, not sent again; one that
        did not take is decided afresh (traffic, keep-warms, a renewal) and sent again.

        A lifetime is a hard cap: traffic does not move it, so its deletion neither waits for fresh
        traffic data nor lets Fireworks refuse because the deployment is in use."""
        store, dep_id = self.s.store, row.deployment_id
        lifetime = row.kind == "lifetime_delete"
        timer_kind = "max_lifetime" if lifetime else "auto_delete"
        dep = self.refresh(dep_id)
        deleted = dep is None or dep.gone_at is not None or dep.state in GONE_STATES
        if deleted and not row.payload.get("deleting_at"):
            return "cancelled", "the deployment was already gone"
        if not deleted:
            assert dep is not None
            if not lifetime and not self._traffic_is_fresh(dep_id, now):
                log.info("auto-delete of %s waits for fresh traffic data", dep_id)
                return None
            self._start_action(row.key, now)
            still = self._due_actions(dep, self.snapshot(now, [dep]), now)
            if row.key not in {a.key for a in still}:
                if lifetime:
                    return "cancelled", "no longer due (renewed, or the policy's max_lifetime changed)"
                return "cancelled", "no longer due (traffic, a keep-warm, a snooze or a changed setting)"
            with store.db.write():
                store.hold_fence()  # right before the delete is sent
                store.note_action_progress(row.key, now, deleting_at=iso(now))
            try:
                # Without ignore_checks: Fireworks itself refuses if it served traffic a moment ago.
                # A lifetime's end is a hard cap, whatever the traffic.
                self.s.gateway.delete_deployment(dep_id, ignore_checks=lifetime)
            except FireworksError as e:
                if e.status == 400:
                    return "cancelled", f"Fireworks refused: {e.message}"
                raise
            dep = self.refresh(dep_id)
            if dep is not None and dep.gone_at is None and dep.state not in GONE_STATES:
                raise NotConfirmed(f"Fireworks accepted the delete, but `{dep_id}` is still {dep.state}")
        due = iso(row.due_at)
        rows = [r for r in store.warnings(deployment_id=dep_id) if r.timer == timer_kind and r.due == due]
        if not row.payload.get("audited"):
            timer = warning_of(rows[-1]).timer if rows else None
            if lifetime:
                # Why, in words that continue "fwbot deleted it …": the limit it reached, and whose.
                limit = f" of {humanize(timer.limit_s)}" if timer and timer.limit_s else ""
                rule = f" ({timer.rule})" if timer and timer.rule else ""
                why = f"at the end of its maximum lifetime{limit}{rule}"
            else:
                # Why, in words that continue "fwbot deleted it …": the idle time it saw, and its limit.
                anchor = (timer.seen_idle_since or timer.anchor) if timer else None
                unused = (dep.unused_delete_s if dep and dep.unused_delete_s is not None
                          else self.policy.default_unused_delete_s)
                idle = f"after {humanize((now - anchor).total_seconds())} without traffic" if anchor else "unused"
                why = f"{idle} (its unused limit is {humanize(unused)})"
            self.ops.audit(FWBOT, "auto-delete", "ok", deployment_id=dep_id, channel=dep.channel if dep else None,
                           request={"due": iso(row.due_at), "reason": row.payload.get("reason"), "why": why,
                                    **({"lifetime": True} if lifetime else {})},
                           detail="confirmed: Fireworks reports it deleted")
            store.note_action_progress(row.key, now, audited=True)
        if dep is None:
            return "done", "deleted"
        deletion = deletion_from_audit(store.audit_trail(dep_id, limit=20))
        said = self.deletion_reason(dep, now) or "deleted by fwbot (soft delete; Undelete brings it back)"
        for r in rows:
            store.resolve_warning(r.id, said, now)
        for channel, ts in {(r.channel, r.ts) for r in rows}:
            self.refresh_message(channel, ts)
        if deletion is not None:
            # One message per deletion, keyed by it: a re-run after a crash posts nothing twice.
            self.note_in_thread(dep, ui.render_auto_deleted(
                dep, simulated=self.s.simulated, token=rows[-1].token if rows else dep.id, at=deletion.at,
                tz=self.directory.tz(dep.owner), why=deletion.why), key=deletion_key(dep_id, deletion.at))
        self.edit_tracking(dep_id)
        return "done", "deleted"

    # -- keep warm, snooze, scale to zero -------------------------------------------------------
    def keep_warm(self, actor: Actor, deployment_id: str, duration_s: float, *, dry_run: bool = False) -> KeepWarm:
        """Keep a deployment warm for a while: min replicas ≥ 1, the revert persisted first.

        Also postpones fwbot's own actions (auto-delete, idle report) until then. A second
        keep-warm extends the first (never shortens it) and puts back the original minimum.
        """
        store, now = self.s.store, self.s.clock.now()
        shortest, longest = KEEP_WARM_LIMITS_S
        if not shortest <= duration_s <= longest:
            raise UserError(f"keep it warm for between {humanize(shortest)} and {humanize(longest)} "
                            f"(not {humanize(duration_s) if duration_s < 1e9 else 'that long'}).")
        self.ops.authorize_change(actor, deployment_id)
        dep = self.refresh(deployment_id)
        if dep is None or dep.gone_at is not None:
            raise UserError(f"there is no deployment `{deployment_id}`.")
        if dep.state in GONE_STATES or dep.state == "FAILED":
            raise UserError(f"`{deployment_id}` is {dep.state}; there is nothing to keep warm.")
        if not can_keep_warm(dep):
            raise UserError(f"`{deployment_id}` has max replicas {dep.max_replicas}: it cannot run a replica, so there "
                            f"is nothing to keep warm (raise it first: `/fw update {deployment_id} --max-replica-count 1`).")
        problem = DeploymentChange(min_replica_count=KEEP_WARM_MIN_REPLICAS).problem_with(dep.wire or {})
        current_min = dep.min_replicas or 0
        if problem and current_min < KEEP_WARM_MIN_REPLICAS:
            raise UserError(f"cannot keep `{deployment_id}` warm: {problem}.")
        until = (now + timedelta(seconds=duration_s)).replace(microsecond=0)
        pending = store.bot_actions(deployment_id=deployment_id, kind="keep_warm_revert",
                                    statuses=("scheduled", "running"))
        latest = max(pending, key=lambda a: a.due_at) if pending else None
        usd = worst_case_usd_per_hour(max(current_min, KEEP_WARM_MIN_REPLICAS), dep.accelerator_count,
                                      dep.accelerator_type, self.s.prices, single_region=dep.single_region)
        if latest is not None and latest.due_at >= until:
            return KeepWarm(deployment_id, latest.due_at, latest.payload.get("restore_min"), usd, False, dry_run)
        restore = latest.payload.get("restore_min") if latest else (
            current_min if current_min < KEEP_WARM_MIN_REPLICAS else None)
        result = KeepWarm(deployment_id, until, restore, usd, True, dry_run)
        if dry_run:
            return result
        key = keep_warm_revert_key(deployment_id, until)
        # The revert is on record before anything changes, so a crash cannot leave it warm for good.
        store.schedule_action(key, "keep_warm_revert", deployment_id, until, now,
                              payload={"restore_min": restore, "set_min": KEEP_WARM_MIN_REPLICAS,
                                       "by": actor.user_id})
        if current_min < KEEP_WARM_MIN_REPLICAS:
            try:
                self.ops.update(actor, deployment_id, DeploymentChange(min_replica_count=KEEP_WARM_MIN_REPLICAS))
            except (FireworksError, UserError) as e:
                store.finish_action(key, "cancelled", f"could not raise min replicas: {e}", now)
                raise
        for earlier in pending:
            store.finish_action(earlier.key, "cancelled", f"extended until {iso(until)} by {actor.user_id}", now)
        self.edit_tracking(deployment_id)
        self.ops.audit(actor.user_id, "keep warm", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                       request={"until": iso(until), "restore_min": restore})
        self.settle(deployment_id, f"kept warm until {self._when(until, actor.user_id, now)} by {self._who(actor)}",
                    now)
        return result

    def snooze(self, actor: Actor, deployment_id: str, duration_s: float = SNOOZE_S) -> datetime:
        """Postpone fwbot's own actions (its auto-delete and idle report) on a deployment."""
        store, now = self.s.store, self.s.clock.now()
        self.ops.authorize_change(actor, deployment_id)
        until = (now + timedelta(seconds=duration_s)).replace(microsecond=0)
        store.schedule_action(f"snooze:{deployment_id}:{iso(until)}", "snooze", deployment_id, until, now,
                              payload={"by": actor.user_id})
        self.ops.audit(actor.user_id, "snooze", "ok", deployment_id=deployment_id, channel=actor.channel_id,
                       request={"until": iso(until)})
        self.settle(deployment_id, f"snoozed until {self._when(until, actor.user_id, now)} by {self._who(actor)}",
                    now)
        return until

    def renew(self, actor: Actor, deployment_id: str) -> datetime:
        """Renew a deployment's maximum lifetime: it is next due ``max_lifetime`` from now.

        Only its owner or an admin may, or, when it has no owner, anyone in its channel
        (``actor.channel_id``). The renewal is on record (and audited) before its warnings are
        edited to say who renewed it until when. Returns the new due time."""
        store = self.s.store
        dep = self.refresh(deployment_id)
        if dep is None or dep.gone_at is not None or dep.state in GONE_STATES:
            raise UserError(f"`{deployment_id}` is gone; there is no lifetime to renew.")
        if dep.owner or actor.is_admin:
            self.ops.authorize_change(actor, deployment_id)
        elif not dep.channel or actor.channel_id != dep.channel:
            raise UserError(f"`{deployment_id}` has no owner: only someone in <#{dep.channel}> (or an admin) "
                            "may renew it." if dep.channel else
                            f"`{deployment_id}` has no owner and no channel: only an admin may renew it.")
        lifetime = lifetimes_for(self.s, [dep], {}).get(dep.id)
        if lifetime is None:
            raise UserError(f"no maximum lifetime applies to `{deployment_id}` any more (the policy changed); "
                            "there is nothing to renew.")
        now = self.s.clock.now()
        renewed = replace(lifetime, renewed_at=now, renewed_by=actor.user_id)
        due = lifetime_due(dep, renewed)
        assert due is not None
        with store.db.write():
            store.record_renewal(dep.id, actor.user_id, now, limit_s=lifetime.limit_s, due_at=due[0])
            self.ops.audit(actor.user_id, "renew lifetime", "ok", deployment_id=dep.id, channel=actor.channel_id,
                           request={"until": iso(due[0]), "max_lifetime": humanize(lifetime.limit_s),
                                    "rule": lifetime.rule})
        self.settle(dep.id, f"renewed by {self._who(actor)} until {self._when(due[0], dep.owner, now)}", now)
        self.edit_tracking(dep.id)
        return due[0]

    def scale_to_zero(self, actor: Actor, deployment_id: str) -> int:
        """Scale to zero now; a min ≥ 1 deployment gets min 0 first so it stays there. Returns the old min."""
        dep = self.refresh(deployment_id)
        if dep is None or dep.gone_at is not None or dep.state in GONE_STATES:
            raise UserError(f"`{deployment_id}` is gone; there is nothing to scale.")
        old_min = dep.min_replicas or 0
        if old_min > 0:
            self.ops.update(actor, deployment_id, DeploymentChange(min_replica_count=0))
        self.ops.scale(actor, deployment_id, 0)
        now = self.s.clock.now()
        for pending in self.s.store.bot_actions(deployment_id=deployment_id, kind="keep_warm_revert",
                                                statuses=("scheduled",)):
            self.s.store.finish_action(pending.key, "cancelled", f"scaled to zero by {actor.user_id}", now)
        self.settle(deployment_id, f"scaled to zero by {self._who(actor)}", now)
        self.edit_tracking(deployment_id)
        return old_min

    def _who(self, actor: Actor) -> str:
        return self.directory.handle(actor.user_id)

    def _when(self, when: datetime, user: str | None, now: datetime) -> str:
        return ui.local_time(when, self.directory.tz(user), now)

    # -- owners who left Slack ------------------------------------------------------------------
    def offer_orphans(self, *, now: datetime | None = None, only: str | None = None) -> list[str]:
        """Offer the deployments of deactivated owners to their channel for adoption (once each)."""
        store = self.s.store
        now = now or self.s.clock.now()
        offered: list[str] = []
        for owner in ([only] if only else store.live_owners()):
            if not self.directory.has_left(owner):
                continue
            for dep in (r for r in store.deployments(owner=owner) if r.state not in GONE_STATES):
                key = f"owner_left:{dep.id}:{owner}"
                if not store.claim_post(key, now, channel=dep.channel or self.policy.alert_channel):
                    continue
                store.set_deployment_fields(dep.id, now, owner=None)
                self.ops.audit(FWBOT, "owner left", "ok", deployment_id=dep.id, channel=dep.channel,
                               request={"from": owner})
                offer = ui.render_owner_left(dep, owner, self._usd_now(dep), simulated=self.s.simulated)
                posted = self.note_in_thread(dep, offer, reply_broadcast=True) if dep.thread_ts else \
                    self.note_in_thread(dep, offer)
                store.mark_posted(key, now, channel=(posted or {}).get("channel"), ts=(posted or {}).get("ts"))
                offered.append(dep.id)
        return offered

    def _usd_now(self, dep: DeploymentRecord) -> float | None:
        return current_usd_per_hour(dep, self.s.prices)


def engine_for(services: Services) -> LifecycleEngine:
    """The one lifecycle engine (and its cache of Slack people) that listeners of these services share."""
    return services.shared(LifecycleEngine)


def effect_kinds() -> dict[str, Kind]:
    """How the outbox treats warning posts: sent only while still claimed, marked sent with the
    post, and marked stale (with why) when no place would take them."""

    def still_wanted(s: Services, args: dict) -> bool:
        rows = [s.store.warning(int(i)) for i in args["rows"]]
        return all(r is not None and r.status == "claimed" for r in rows)

    def on_sent(s: Services, args: dict, posted: Posted) -> None:
        now = s.clock.now()
        for i in args["rows"]:
            # What was posted: the warning as of now (see the render hook), with the replicas it had.
            snapshot = dict(args["snapshots"][str(i)])
            row = s.store.warning(int(i))
            if row is not None:
                snapshot.update({k: v for k, v in snapshot_of(as_of(warning_of(row), now)).items()
                                 if k in ("timer", "decided_at")})
            s.store.mark_warning_sent(int(i), posted.channel, posted.ts, now, snapshot=snapshot)

    def on_failed(s: Services, args: dict, error: str) -> None:
        now = s.clock.now()
        for i in args["rows"]:
            s.store.resolve_warning(int(i), f"could not be posted anywhere: {error}", now, status="stale")

    def render(s: Services, args: dict) -> Message | None:
        """The warnings as of the moment they are posted: a post that waited (a busy channel, a
        retry) must not promise "in 5m" of a time that is now 3 minutes closer."""
        rows = [s.store.warning(int(i)) for i in args["rows"]]
        if any(r is None for r in rows):
            return None
        now = s.clock.now()
        ws = [as_of(warning_of(r), now) for r in rows]  # type: ignore[arg-type]
        deps = {w.deployment_id: s.store.deployment(w.deployment_id) for w in ws}
        if any(d is None for d in deps.values()):
            return None
        directory = SlackDirectory(s)
        tzs = {d.owner: directory.tz(d.owner) for d in deps.values() if d is not None and d.owner}
        tokens = {w.key: r.token for w, r in zip(ws, rows, strict=True)}  # type: ignore[union-attr]
        said = args.get("notes") or {}
        notes = {w.key: said[str(r.id)] for w, r in zip(ws, rows, strict=True) if str(r.id) in said}  # type: ignore[union-attr]
        return ui.render_digest(ws, deps, tokens, owner_tz=tzs, simulated=s.simulated,  # type: ignore[arg-type]
                                notes=notes)

    return {WARNINGS: Kind(on_sent=on_sent, on_failed=on_failed, still_wanted=still_wanted, render=render)}
