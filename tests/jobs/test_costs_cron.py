"""FWBOT_COST_SUMMARY_CRON against crontab semantics (cronsim computes it; this table pins it)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.settings import check_cron
from bot.jobs.costs import last_fire_at_or_before, summary_trigger

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
START = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # a Wednesday


def fires(expr: str, start: datetime = START, n: int = 4, tz=UTC) -> list[datetime]:
    trigger = summary_trigger(expr, tz)
    out, t = [], trigger.get_next_fire_time(None, start)
    for _ in range(n):
        out.append(t)
        t = trigger.get_next_fire_time(t, t)
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


TABLE = [
    # Day-of-month OR day-of-week when both are restricted: the 1st, and every Monday.
    ("0 9 1 * 1", [utc(2026, 11, 9, 9), utc(2026, 11, 16, 9), utc(2026, 11, 23, 9), utc(2026, 11, 30, 9)]),
    ("0 9 13 * FRI", [utc(2026, 11, 6, 9), utc(2026, 11, 13, 9), utc(2026, 11, 20, 9), utc(2026, 11, 27, 9)]),
    # Only one restricted: AND with the wildcard, as crontab does.
    ("0 9 1 * *", [utc(2026, 12, 1, 9), utc(2027, 1, 1, 9), utc(2027, 2, 1, 9), utc(2027, 3, 1, 9)]),
    ("0 9 * * MON", [utc(2026, 11, 9, 9), utc(2026, 11, 16, 9), utc(2026, 11, 23, 9), utc(2026, 11, 30, 9)]),
    # Weekday numbers: 0 and 7 are Sunday; names in any case.
    ("30 8 * * 0", [utc(2026, 11, 8, 8, 30), utc(2026, 11, 15, 8, 30), utc(2026, 11, 22, 8, 30), utc(2026, 11, 29, 8, 30)]),
    ("30 8 * * 7", [utc(2026, 11, 8, 8, 30), utc(2026, 11, 15, 8, 30), utc(2026, 11, 22, 8, 30), utc(2026, 11, 29, 8, 30)]),
    ("0 9 * * mon-WED", [utc(2026, 11, 9, 9), utc(2026, 11, 10, 9), utc(2026, 11, 11, 9), utc(2026, 11, 16, 9)]),
    ("0 9 * * 5-7", [utc(2026, 11, 6, 9), utc(2026, 11, 7, 9), utc(2026, 11, 8, 9), utc(2026, 11, 13, 9)]),
    ("0 9 * * 1-5/2", [utc(2026, 11, 6, 9), utc(2026, 11, 9, 9), utc(2026, 11, 11, 9), utc(2026, 11, 13, 9)]),
    ("0 9 * * */2", [utc(2026, 11, 5, 9), utc(2026, 11, 7, 9), utc(2026, 11, 8, 9), utc(2026, 11, 10, 9)]),
    # Month names and ranges.
    ("0 0 1 JAN,jul *", [utc(2027, 1, 1), utc(2027, 7, 1), utc(2028, 1, 1), utc(2028, 7, 1)]),
    ("0 0 15 feb-apr *", [utc(2027, 2, 15), utc(2027, 3, 15), utc(2027, 4, 15), utc(2028, 2, 15)]),
    # Steps and lists in minutes and hours.
    ("*/20 12 * * *", [utc(2026, 11, 4, 12, 0), utc(2026, 11, 4, 12, 20), utc(2026, 11, 4, 12, 40), utc(2026, 11, 5, 12, 0)]),
    ("5 8-17/4 * * *", [utc(2026, 11, 4, 12, 5), utc(2026, 11, 4, 16, 5), utc(2026, 11, 5, 8, 5), utc(2026, 11, 5, 12, 5)]),
    ("0 0 29 2 *", [utc(2028, 2, 29), utc(2032, 2, 29), utc(2036, 2, 29), utc(2040, 2, 29)]),
]


@pytest.mark.parametrize("expr, expected", TABLE)
def test_fire_times_follow_crontab(expr, expected):
    assert fires(expr) == expected


def test_or_rule_fires_on_the_first_even_when_it_is_not_a_monday():
    # 1 Dec 2026 is a Tuesday: crontab fires then, and on the Mondays around it.
    assert fires("0 9 1 * 1", utc(2026, 11, 30, 10)) == [
        utc(2026, 12, 1, 9), utc(2026, 12, 7, 9), utc(2026, 12, 14, 9), utc(2026, 12, 21, 9)]


@pytest.mark.parametrize("expr, when, expected", [
    ("0 9 1 * 1", utc(2026, 12, 3), utc(2026, 12, 1, 9)),
    ("0 9 1 * 1", utc(2026, 12, 1, 9), utc(2026, 12, 1, 9)),  # at the slot itself
    ("0 9 1 * 1", utc(2026, 12, 1, 8, 59, 59), utc(2026, 11, 30, 9)),
    ("0 0 29 2 *", utc(2027, 6, 1), utc(2024, 2, 29)),  # years back, no step limit
    ("* * * * *", utc(2026, 11, 4, 9, 0, 42), utc(2026, 11, 4, 9, 0)),
])
def test_previous_slot(expr, when, expected):
    assert last_fire_at_or_before(summary_trigger(expr, UTC), when) == expected


def test_weekly_slot_in_a_non_utc_zone_across_the_end_of_summer_time():
    weekly = summary_trigger("0 9 * * MON", BERLIN)
    # Mon 26 Oct 2026 09:00 is CET (UTC+1), the Monday before CEST (UTC+2).
    assert fires("0 9 * * MON", utc(2026, 10, 18), 3, BERLIN) == [
        utc(2026, 10, 19, 7), utc(2026, 10, 26, 8), utc(2026, 11, 2, 8)]
    assert last_fire_at_or_before(weekly, utc(2026, 10, 26, 7, 59)) == utc(2026, 10, 19, 7)


def test_daily_time_that_summer_time_skips_fires_once_right_after_the_gap():
    # 8 Mar 2026 in New York: 02:00 EST jumps to 03:00 EDT; 02:30 never happens that day.
    assert fires("30 2 * * *", utc(2026, 3, 7, 12), 3, NEW_YORK) == [
        datetime(2026, 3, 8, 3, 0, tzinfo=NEW_YORK), datetime(2026, 3, 9, 2, 30, tzinfo=NEW_YORK),
        datetime(2026, 3, 10, 2, 30, tzinfo=NEW_YORK)]


def test_daily_time_that_the_end_of_summer_time_repeats_fires_once():
    # 1 Nov 2026 in New York: 01:30 happens twice (EDT, then EST); a daily job runs once.
    got = fires("30 1 * * *", utc(2026, 10, 31, 12), 3, NEW_YORK)
    assert [t.astimezone(UTC) for t in got] == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]


@pytest.mark.parametrize("expr", ["bogus", "0 9 * *", "0 0 9 * * MON", "61 9 * * *", "0 24 * * *", "0 9 32 * *",
                                  "0 9 * 13 *", "0 9 * * 8", "0 9 * * 5-2",
                                  "0 9 * * fri-sun",  # sun is 0, so the range runs backwards, as in crontab
                                  "0 9 30 2 *", "@daily", ""])
def test_invalid_expressions_are_refused(expr):
    with pytest.raises(ValueError, match="crontab expression"):
        check_cron(expr)
