"""The summary schedule: crontab semantics, slots, the windows a slot covers, and the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.jobs.costs import (
    SummaryCron,
    digest_window,
    last_fire_at_or_before,
    summary_trigger,
    summary_window,
    week_key,
)

BERLIN = ZoneInfo("Europe/Berlin")


def trigger(expr: str, tz=UTC) -> SummaryCron:
    return summary_trigger(expr, tz)


@pytest.mark.parametrize("expr, weekday", [
    ("0 9 * * MON", 0), ("0 9 * * 1", 0), ("0 9 * * 0", 6), ("0 9 * * 7", 6), ("0 9 * * sun", 6),
])
def test_weekdays_follow_crontab_not_apscheduler_numbering(expr, weekday):
    nxt = trigger(expr).get_next_fire_time(None, datetime(2026, 11, 4, tzinfo=UTC))
    assert nxt.weekday() == weekday and (nxt.hour, nxt.minute) == (9, 0)


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    # crontab: the 1st of the month OR any Monday, not only a 1st that is a Monday.
    monthly_or_mondays = trigger("0 9 1 * 1")
    assert monthly_or_mondays.get_next_fire_time(None, datetime(2026, 11, 4, tzinfo=UTC)) == \
        datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    assert last_fire_at_or_before(monthly_or_mondays, datetime(2026, 11, 4, tzinfo=UTC)) == \
        datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert last_fire_at_or_before(monthly_or_mondays, datetime(2026, 10, 2, tzinfo=UTC)) == \
        datetime(2026, 10, 1, 9, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize("expr", ["0 9 * *", "61 9 * * MON", "0 9 * * 8", "0 9 * * 5-2", "x y z w v",
                                  "0 0 9 * * MON", "bogus", "0 0 30 2 *"])
def test_bad_cron_names_the_setting(expr):
    with pytest.raises(ValueError, match="FWBOT_COST_SUMMARY_CRON"):
        summary_trigger(expr, UTC)


def test_slot_is_the_latest_fire_time_in_the_team_timezone():
    weekly = trigger("0 9 * * MON", BERLIN)
    # Monday 2 Nov 2026, 09:00 in Berlin (CET) is 08:00 UTC.
    at_slot = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert last_fire_at_or_before(weekly, at_slot) == at_slot
    assert last_fire_at_or_before(weekly, at_slot + timedelta(days=3)) == at_slot
    assert last_fire_at_or_before(weekly, at_slot - timedelta(seconds=1)) == at_slot - timedelta(days=7)
    # Across the end of summer time (25 Oct 2026): the Monday before was 09:00 CEST = 07:00 UTC.
    assert last_fire_at_or_before(weekly, at_slot - timedelta(days=1)) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert last_fire_at_or_before(weekly, datetime(2026, 10, 26, 7, 59, tzinfo=UTC)) == \
        datetime(2026, 10, 19, 7, 0, tzinfo=UTC)
    minutely = trigger("* * * * *")
    assert last_fire_at_or_before(minutely, datetime(2026, 11, 4, 9, 0, 42, tzinfo=UTC)) == \
        datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    yearly = trigger("0 0 1 1 *")
    assert last_fire_at_or_before(yearly, datetime(2026, 11, 4, tzinfo=UTC)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_weekly_summary_covers_last_monday_to_sunday_in_local_days():
    slot = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # Mon 09:00 Berlin
    w = summary_window(trigger("0 9 * * MON", BERLIN), slot, BERLIN)
    # Mon 26 Oct 00:00 CET(+1) … Mon 2 Nov 00:00 CET: the week that contains the DST change, 169 h.
    assert (w.start, w.end) == (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), datetime(2026, 11, 1, 23, 0, tzinfo=UTC))
    assert w.label == "Mon 26 Oct – Sun 1 Nov"


def test_daily_and_hourly_summaries():
    slot = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    daily = summary_window(trigger("0 9 * * *"), slot, UTC)
    assert (daily.start, daily.end) == (datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))
    hourly = summary_window(trigger("0 * * * *"), slot, UTC)
    assert (hourly.start, hourly.end) == (slot - timedelta(hours=1), slot)
    assert hourly.label == "Wed 4 Nov 08:00 – 09:00"


def test_digest_week_and_its_key():
    slot = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
    w = digest_window(slot, BERLIN)
    assert (w.end - w.start) == timedelta(days=7)
    assert w.label == "in the week Mon 2 Nov – Sun 8 Nov"
    assert week_key(slot, BERLIN) == "2026-W46"
    # 23:30 UTC on Sunday is already Monday in Berlin: the next ISO week there.
    assert week_key(datetime(2026, 11, 8, 23, 30, tzinfo=UTC), BERLIN) == "2026-W46"
    assert week_key(datetime(2026, 11, 8, 22, 30, tzinfo=UTC), BERLIN) == "2026-W45"


def test_the_scheduler_accepts_the_cost_jobs(tmp_path):
    from bot.adapters.metrics import Metrics
    from bot.core.clock import FakeClock
    from bot.jobs.costs import jobs
    from bot.jobs.scheduler import start_scheduler
    from bot.services.container import Services
    from tests.harness import start_stack

    stack = start_stack(tmp_path, clock=FakeClock(), env={"FWBOT_TIMEZONE": "Europe/Berlin",
                                                          "FWBOT_COST_SUMMARY_CRON": "30 8 * * 1"})
    try:
        services: Services = stack.services
        names = {j.name: j for j in jobs(services, Metrics())}
        assert set(names) >= {"cost_summaries", "cost_summaries_catch_up", "budget_check"}
        assert isinstance(names["cost_summaries"].trigger, SummaryCron) and not names["cost_summaries"].run_at_start
        scheduler = start_scheduler(services, Metrics())
        try:
            job = scheduler.get_job("cost_summaries")
            nxt = job.trigger.get_next_fire_time(None, datetime(2026, 11, 4, tzinfo=UTC))
            assert nxt == datetime(2026, 11, 9, 8, 30, tzinfo=BERLIN)
            # The job fires on the slots post_summaries computes, one after another.
            after = job.trigger.get_next_fire_time(nxt, nxt)
            assert after == datetime(2026, 11, 16, 8, 30, tzinfo=BERLIN)
            assert last_fire_at_or_before(job.trigger, after - timedelta(seconds=1)) == nxt
        finally:
            scheduler.shutdown(wait=True)
    finally:
        stack.stop()
