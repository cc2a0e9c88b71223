"""Scheduled cost work: channel summaries and owner digests on a cron, and budget alerts.

Summaries run on ``FWBOT_COST_SUMMARY_CRON`` in ``FWBOT_TIMEZONE``. Every run works out the
schedule *slot* it belongs to (the latest cron time at or before now), so the posts a slot makes
have fixed idempotency keys: ``summary:<channel>:<window start>``, ``digest:<owner>:<ISO week>``.
Each key is claimed in ``scheduled_posts`` before posting and marked posted afterwards, so a run
repeated for the same slot — a restart, the catch-up job, two threads at once — posts nothing new.
A crash between claim and post loses that one post rather than repeating it.

Owner digests can wait: when the team policy gives an owner quiet hours (``quiet_hours``,
``working_days``) and the slot falls in them, the digest is claimed and recorded in the outbox
with its "not before" time (the owner's next working moment, bot/services/lifetimes.py
``quiet_now``), so it survives a restart and is sent once, then, rendered afresh (the week's
figures, with what is true of its deployments by then); its chart rides along in the outbox row
and is uploaded under the post once Slack has it. Channel summaries and budget alerts
go to channels, not a person, so they are never held.

The scheduler keeps its jobs in memory, so a slot that fell while fwbot was down is picked up by
a catch-up job that runs at start and every few minutes, for slots up to
:data:`SUMMARY_CATCH_UP` old.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import partial
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from cronsim import CronSim
from slack_sdk.errors import SlackApiError

from bot.adapters.outbox import Kind, Posted, Target
from bot.core.clock import iso, parse_iso
from bot.core.costs import (
    CostReport,
    Window,
    budget_alert_key,
    budget_alerts_due,
    cost_report,
    month_bounds,
    owner_digest,
    period_window,
    previous_window,
    results_for,
    sent_thresholds,
)
from bot.core.settings import check_cron
from bot.jobs.base import Job
from bot.services import costs as cost_data
from bot.services.container import Services
from bot.services.lifetimes import quiet_now
from bot.services.people import SlackDirectory
from bot.ui import costs as cost_ui
from bot.ui.chart import Bar, render_stacked_bars
from bot.ui.kit import Message

log = logging.getLogger("fwbot.cost_jobs")

# A slot missed while fwbot was down is still posted if it is at most this old.
SUMMARY_CATCH_UP = timedelta(hours=12)
CHECK_INTERVAL_S = 900.0
SCHEDULED_POST = "scheduled_post"  # the outbox kind of summaries, digests and budget alerts


# -- the schedule ----------------------------------------------------------------------------
class SummaryCron(BaseTrigger):
    """``FWBOT_COST_SUMMARY_CRON`` in ``FWBOT_TIMEZONE``, computed by cronsim with crontab rules.

    One object answers both questions: when the apscheduler job fires next, and which slot a run
    belongs to (:func:`last_fire_at_or_before`), so the two never disagree. Crontab semantics
    throughout: weekdays 0-7 with 0 and 7 Sunday, month and weekday names, ranges and steps, and
    a day that matches day-of-month OR day-of-week when both are restricted.
    """

    def __init__(self, expr: str, tz: tzinfo | str):
        self.expr = expr
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        check_cron(expr)

    def _at(self, dt: datetime, *, reverse: bool) -> datetime | None:
        try:
            return next(CronSim(self.expr, dt.astimezone(self.tz), reverse=reverse))
        except StopIteration:  # cronsim gives up after ~50 years without a match
            return None

    def next_after(self, when: datetime) -> datetime | None:
        """The first fire time strictly after ``when``."""
        return self._at(when, reverse=False)

    def last_at_or_before(self, when: datetime) -> datetime | None:
        """The latest fire time at or before ``when``."""
        return self._at(when + timedelta(microseconds=1), reverse=True)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is not None:
            return self.next_after(previous_fire_time)
        return self.next_after(now - timedelta(microseconds=1))  # at or after now

    def __str__(self) -> str:
        return f"cron[{self.expr!r} in {self.tz}]"

    def __repr__(self) -> str:
        return f"<SummaryCron {self.expr!r} timezone={str(self.tz)!r}>"


def summary_trigger(expr: str, tz: tzinfo | str) -> SummaryCron:
    """The summary schedule; raises ``ValueError`` naming the setting when ``expr`` is not valid."""
    try:
        return SummaryCron(expr, tz)
    except ValueError as e:
        raise ValueError(f"FWBOT_COST_SUMMARY_CRON {expr!r} {e}") from None


def last_fire_at_or_before(trigger: SummaryCron, when: datetime) -> datetime | None:
    """The latest time ``trigger`` fires at or before ``when`` (None if it never did)."""
    return trigger.last_at_or_before(when)


def summary_window(trigger: SummaryCron, slot: datetime, tz: tzinfo) -> Window:
    """What the summary at ``slot`` covers: the whole local days since the previous slot.

    A weekly Monday-morning cron covers last Monday to Sunday; a daily one, yesterday. When the
    previous slot was earlier the same day (an hourly cron), the exact span between the slots.
    """
    previous = last_fire_at_or_before(trigger, slot - timedelta(seconds=1))
    if previous is None:
        previous = slot - timedelta(days=7)
    first, upto = previous.astimezone(tz).date(), slot.astimezone(tz).date()
    if first < upto:
        return period_window((first, upto - timedelta(days=1)), slot, tz)
    p, s = previous.astimezone(tz), slot.astimezone(tz)
    return Window(previous, slot, f"{p:%a} {p.day} {p:%b} {p:%H:%M} – {s:%H:%M}")


def digest_window(slot: datetime, tz: tzinfo) -> Window:
    """The seven whole local days before the slot's day."""
    today = slot.astimezone(tz).date()
    window = period_window((today - timedelta(days=7), today - timedelta(days=1)), slot, tz)
    return window._replace(label=f"in the week {window.label}")


def week_key(slot: datetime, tz: tzinfo) -> str:
    """``2026-W45``: the ISO week of the slot, one digest per owner per week."""
    year, week, _ = slot.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


# -- posting once ----------------------------------------------------------------------------
@dataclass
class PostReport:
    """What one run posted (keys), and what it found already done."""

    slot: datetime | None = None
    posted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Claimed and recorded, held in the outbox until the reader's quiet hours end (key → when).
    held: dict[str, datetime] = field(default_factory=dict)


def _post_once(services: Services, keys: list[str], targets: list[Target], message, report: PostReport,
               channel: str | None = None, *, not_before: datetime | None = None,
               chart: dict | None = None, digest: dict | None = None) -> dict | None:
    """Claim ``keys`` and hand the post to the outbox in one transaction, then deliver it (this
    job may wait for the channel's slot). Posted: the keys are marked posted with Slack's ts (in
    the outbox's hook). Refused everywhere: the claims are released, so the next run tries again.
    A transient failure leaves it to the outbox's retries, across restarts too.

    ``not_before`` (a reader's quiet hours): claimed and recorded only; the outbox's delivery
    thread sends it then, rendered afresh from ``digest`` (an owner digest's owner and week), and
    uploads ``chart`` (:func:`_chart_args`) under it once it is posted."""
    store, now = services.store, services.clock.now()
    args: dict = {"keys": []}
    with store.db.write():
        claimed = [k for k in keys if store.claim_post(k, now, channel)]
        if not claimed:
            report.already += keys
            return None
        args["keys"] = claimed
        if chart is not None:
            args["chart"] = chart
        if digest is not None:
            args["digest"] = digest
        effect = f"post:{claimed[0]}:{iso(now)}"
        services.outbox.enqueue(effect, SCHEDULED_POST, targets, message, args=args, not_before=not_before)
    if not_before is not None and not_before > now:
        for key in claimed:
            report.held[key] = not_before
        return None
    delivery = services.outbox.deliver(effect, wait=True)
    if delivery.posted is not None:
        report.posted += claimed
        return {"channel": delivery.posted.channel, "ts": delivery.posted.ts}
    if delivery.error:
        report.failed += claimed
        log.warning("scheduled post %s failed: %s", claimed[0], delivery.error)
    return None


def effect_kinds() -> dict[str, Kind]:
    """Scheduled posts (summaries, digests, budget alerts) through the outbox."""

    def on_sent(s: Services, args: dict, posted: Posted) -> None:
        for key in args["keys"]:
            s.store.mark_posted(key, s.clock.now(), channel=posted.channel, ts=posted.ts)

    def on_failed(s: Services, args: dict, error: str) -> None:
        for key in args["keys"]:
            s.store.release_post(key)

    def render(s: Services, args: dict) -> Message | None:
        # A held digest says what is true when it is sent: the week's figures do not change, but
        # a deployment deleted meanwhile is counted as such and loses its buttons.
        held = args.get("digest")
        if not held:
            return None  # the message recorded with it
        try:
            week = Window(parse_iso(held["start"]), parse_iso(held["end"]), held["label"])
            week_results = cost_data.costs_between(s, week.start, week.end)
            digest_meta = _digest_meta(cost_data.deployment_meta(s.store), week_results)
            digest = owner_digest(held["owner"], week_results, digest_meta, label=week.label)
            return cost_ui.render_owner_digest(digest, simulated=s.simulated)
        except Exception:  # noqa: BLE001 - the digest as it was at the slot is still worth sending
            log.exception("could not render the held digest of %s afresh; sending it as it was", held.get("owner"))
            return None

    def after_sent(s: Services, args: dict, posted: Posted) -> None:
        # A held digest's chart, uploaded under it once Slack has the post (after a restart too:
        # an attempt found in Slack completes the same way).
        chart = args.get("chart")
        if chart:
            bars = [Bar(str(label), float(serving), float(idle)) for label, serving, idle in chart["bars"]]
            _send_chart(s, chart["key"], posted.channel, posted.ts, bars, chart["title"], PostReport())

    return {SCHEDULED_POST: Kind(on_sent=on_sent, on_failed=on_failed, render=render, after_sent=after_sent)}


def _posted_message(services: Services, key: str) -> dict | None:
    """Where the post under ``key`` went (``{channel, ts}``), if it was sent."""
    row = services.store.scheduled_post(key)
    if row and row["status"] == "posted" and row["channel"] and row["ts"]:
        return {"channel": row["channel"], "ts": row["ts"]}
    return None


def _chart_bars(report: CostReport) -> list[Bar] | None:
    """The bars of a report's per-day chart, or None when there is nothing worth drawing."""
    if len(report.daily) < 2 or not any(d.usd > 0 for d in report.daily):
        return None
    return cost_ui.chart_bars(report)


def _chart_args(key: str, report: CostReport, title: str) -> dict | None:
    """A chart as the outbox row of a held post carries it (plain JSON), for :func:`effect_kinds`."""
    bars = _chart_bars(report)
    if bars is None:
        return None
    return {"key": key, "title": title, "bars": [[b.label, b.serving, b.idle] for b in bars]}


def _upload_chart(services: Services, key: str, channel: str, thread_ts: str, report: CostReport,
                  title: str, out: PostReport) -> None:
    """The per-day serving/idle bar chart as a PNG in the thread of the message it illustrates."""
    bars = _chart_bars(report)
    if bars is not None:
        _send_chart(services, key, channel, thread_ts, bars, title, out)


def _send_chart(services: Services, key: str, channel: str, thread_ts: str, bars: list[Bar], title: str,
                out: PostReport) -> None:
    png = render_stacked_bars(bars)

    def send() -> dict:
        services.poster.pacer.wait(channel)
        services.poster.client.files_upload_v2(
            channel=channel, thread_ts=thread_ts, file=png, filename="gpu-cost-per-day.png", title=title,
            alt_txt=f"{title}: daily GPU spend, {cost_ui.CHART_LEGEND}",
            initial_comment=f"Daily GPU spend ({cost_ui.CHART_LEGEND})", request_file_info=False,
        )
        return {"channel": channel, "ts": thread_ts}

    store, now, chart_key = services.store, services.clock.now(), f"chart:{key}"
    # A file upload is not a chat message, so it cannot go through the outbox: claimed before it
    # is sent and released when Slack refuses it (the next run tries again); a crash in between
    # loses the chart, never the message it illustrates.
    if not store.claim_post(chart_key, now, channel):
        out.already.append(chart_key)
        return
    try:
        send()
    except SlackApiError as e:
        store.release_post(chart_key)
        out.failed.append(chart_key)
        log.warning("chart %s failed: %s", chart_key, e.response.get("error"))
        return
    store.mark_posted(chart_key, services.clock.now(), channel=channel, ts=thread_ts)
    out.posted.append(chart_key)


def _digest_meta(meta: dict[str, dict], week_results: dict) -> dict[str, dict]:
    """The deployments digests speak of: live ones, and deleted ones that ran in the week (one
    deleted that did not run is not "owned" any more)."""
    ran = {d for d, r in week_results.items() if r.gpu_seconds > 0}
    return {d: m for d, m in meta.items() if m.get("live") or d in ran}


def post_summaries(services: Services, *, grace: timedelta = SUMMARY_CATCH_UP) -> PostReport:
    """Channel summaries and owner digests for the current schedule slot, each posted once."""
    settings, store = services.settings, services.store
    tz = settings.tz
    trigger = summary_trigger(settings.cost_summary_cron, tz)
    now = services.clock.now()
    out = PostReport()
    slot = last_fire_at_or_before(trigger, now)
    if slot is None or now - slot > grace:
        return out
    out.slot = slot
    done_key = f"slot:{iso(slot)}"
    if store.scheduled_post(done_key):
        return out  # every post of this slot went out already; nothing to compute
    meta = cost_data.deployment_meta(store)

    # Channel summaries: every channel whose deployments ran GPU time in the window.
    window = summary_window(trigger, slot, tz)
    previous = previous_window(window.start, window.end, tz)
    results = cost_data.costs_between(services, window.start, window.end)
    before = cost_data.costs_between(services, previous.start, previous.end)
    channels = sorted({(meta.get(d) or {}).get("channel") for d, r in results.items() if r.gpu_seconds > 0} - {None})
    budgets = {b["channel"]: float(b["usd_per_month"]) for b in store.budgets()}
    for channel in channels:
        report = cost_report(results_for(results, meta, channel=channel), meta, by="deployment",
                             previous=results_for(before, meta, channel=channel), label=window.label)
        budget = budgets.get(channel)
        projected = cost_data.channel_month(services, channel, meta=meta).projected if budget else None
        message = cost_ui.render_channel_summary(channel, report, budget=budget, projected=projected,
                                                 simulated=services.simulated)
        key = f"summary:{channel}:{iso(window.start)}"
        _post_once(services, [key], [Target("channel", channel=channel)], message, out, channel)
        # The chart has its own key, so one that failed before is retried under the same message.
        posted = _posted_message(services, key)
        if posted:
            _upload_chart(services, key, posted["channel"], posted["ts"], report, f"GPU cost {window.label}", out)

    # Owner digests: one DM a week to everyone who owns a live deployment or paid for one.
    week = digest_window(slot, tz)
    week_results = cost_data.costs_between(services, week.start, week.end)
    digest_meta = _digest_meta(meta, week_results)
    owners = sorted({m.get("owner") for m in digest_meta.values()} - {None})
    directory = SlackDirectory(services)

    def owner_report(owner: str) -> CostReport:
        return cost_report(results_for(week_results, digest_meta, owner=owner), digest_meta)

    for owner in owners:
        digest = owner_digest(owner, week_results, digest_meta, label=week.label)
        message = cost_ui.render_owner_digest(digest, simulated=services.simulated)
        key = f"digest:{owner}:{week_key(slot, tz)}"
        title = f"Your GPU cost {week.label}"
        chart_of = partial(owner_report, owner) if digest.lines else None
        # A digest can wait: in the owner's quiet hours it is held until their next working moment.
        quiet = None if store.scheduled_post(key) else quiet_now(services, owner, None, now, directory=directory)
        if quiet is not None:
            chart = _chart_args(key, chart_of(), title) if chart_of else None
            held = {"owner": owner, "start": iso(week.start), "end": iso(week.end), "label": week.label}
            _post_once(services, [key], [Target("owner DM", user=owner)], message, out,
                       not_before=quiet.until, chart=chart, digest=held)
            continue
        _post_once(services, [key], [Target("owner DM", user=owner)], message, out)
        posted = _posted_message(services, key)
        if posted and chart_of:
            _upload_chart(services, key, posted["channel"], posted["ts"], chart_of(), title, out)
    if not out.failed and store.claim_post(done_key, services.clock.now()):
        store.mark_posted(done_key, services.clock.now())
    return out


# -- budgets ---------------------------------------------------------------------------------
def check_budgets(services: Services) -> PostReport:
    """Alert each budgeted channel once a month at 80 % and once at 100 % of its projected spend.

    When both thresholds are first reached in one check, one alert (the higher) goes out and both
    are recorded.
    """
    store = services.store
    out = PostReport()
    budgets = store.budgets()
    if not budgets:
        return out
    now = services.clock.now()
    start, end = month_bounds(now, services.settings.tz)
    month_results = cost_data.costs_between(services, start, end)
    meta = cost_data.deployment_meta(store)
    for b in budgets:
        channel, budget = b["channel"], float(b["usd_per_month"])
        month = cost_data.channel_month(services, channel, month_results, meta)
        first_day = month.month_start.date()
        sent = sent_thresholds(store.scheduled_post_keys(f"budget:{channel}:{first_day:%Y-%m}:"), channel, first_day)
        due = budget_alerts_due(month.projected, budget, sent)
        if not due:
            continue
        report = cost_report(month.results, meta, by="deployment", label=month.label)
        message = cost_ui.render_budget_alert(
            channel, max(due), spent=month.spent, projected=month.projected, budget=budget,
            month_label=month.label, report=report, simulated=services.simulated,
        )
        _post_once(services, [budget_alert_key(channel, first_day, t) for t in due],
                   [Target("channel", channel=channel)], message, out, channel)
    return out


def jobs(services: Services, metrics) -> list[Job]:
    """The summary cron, its catch-up after restarts, and the budget check."""
    # The job fires on the very instants post_summaries computes its slot from.
    cron = summary_trigger(services.settings.cost_summary_cron, services.settings.tz)
    return [
        Job("cost_summaries", lambda: post_summaries(services), trigger=cron, run_at_start=False),
        Job("cost_summaries_catch_up", lambda: post_summaries(services), trigger_args={"seconds": CHECK_INTERVAL_S}),
        Job("budget_check", lambda: check_budgets(services), trigger_args={"seconds": CHECK_INTERVAL_S}),
    ]

