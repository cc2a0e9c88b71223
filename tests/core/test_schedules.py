"""Schedules as pure arithmetic: parsing, weekdays, daylight saving, which transition is due,
and how keep-warms and snoozes postpone or skip a scale-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.lifecycle import LifecyclePolicy, schedule_actions, timers, warning_leads
from bot.core.schedules import (
    RunningSchedule,
    ScheduleError,
    days_text,
    due_transition,
    from_stored,
    make_schedule,
    next_transition,
    parse_moment,
    parse_schedule_text,
    postponed_down,
    schedule_text,
    stored,
    transitions,
    zone_of,
)
from tests.core.test_lifecycle import dep as make_dep

BERLIN = zone_of("Europe/Berlin")
NEW_YORK = zone_of("America/New_York")
NIGHTS = make_schedule("19:00 Mon-Fri", "08:00 Mon-Fri")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("text", "days"), [
    ("19:00", "daily"), ("19:00 Mon-Fri", "Mon-Fri"), ("7:05 weekdays", "Mon-Fri"), ("22:00 weekends", "Sat,Sun"),
    ("18:00 Fri", "Fri"), ("18:00 fri-mon", "Mon,Fri-Sun"), ("9:00 Mon,Wed-Fri", "Mon,Wed-Fri"),
    ("9:00 Mon, Wed", "Mon,Wed"), ("9:00 Monday–Friday", "Mon-Fri"), ("0:00 daily", "daily"),
])
def test_times_and_days_parse_and_write_back(text, days):
    moment = parse_moment(text)
    assert days_text(moment.days) == days
    assert parse_moment(str(moment)) == moment


@pytest.mark.parametrize(("text", "problem"), [
    ("", "needs a time"), ("7pm Mon", "time of day such as `19:00`"), ("24:00", "not a time of day"),
    ("19:60", "not a time of day"), ("19:00 Mon-Fry", "`Fry` is not a day"), ("19:00 Mon,,Tue", "empty day"),
])
def test_bad_times_and_days_are_named(text, problem):
    with pytest.raises(ScheduleError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_moment(text)


def test_a_schedule_needs_sensible_up_settings():
    with pytest.raises(ScheduleError, match="give `--up` too"):
        make_schedule("19:00", None, 2)
    with pytest.raises(ScheduleError, match="between 1 and"):
        make_schedule("19:00", "08:00", 0)
    with pytest.raises(ScheduleError, match="different times"):
        make_schedule("19:00 Mon-Fri", "19:00 Fri")
    schedule = make_schedule("19:00 Mon-Fri", "08:00 Mon-Fri", 2)
    assert from_stored(**stored(schedule)) == schedule  # type: ignore[arg-type]
    assert schedule.describe("Europe/Berlin") == (
        "scale to 0 at 19:00 Mon–Fri, back to min 2 at 08:00 Mon–Fri (Europe/Berlin)")


def test_weekday_transitions_skip_the_weekend_in_the_owners_zone():
    # Friday 2026-11-06 12:00 UTC: down 19:00 Berlin (18:00 UTC) Friday, then up Monday 08:00 (07:00 UTC).
    found = transitions(NIGHTS, BERLIN, utc(2026, 11, 6, 12), utc(2026, 11, 10, 0))
    assert [(t.kind, t.at) for t in found] == [("down", utc(2026, 11, 6, 18)), ("up", utc(2026, 11, 9, 7)),
                                               ("down", utc(2026, 11, 9, 18))]
    assert next_transition(NIGHTS, NEW_YORK, utc(2026, 11, 6, 12)).at == utc(2026, 11, 6, 13)  # 08:00 EST
    assert next_transition(NIGHTS, NEW_YORK, utc(2026, 11, 6, 12), "down").at == utc(2026, 11, 7, 0)  # 19:00 EST


def test_daylight_saving_moves_the_utc_instant_not_the_wall_clock():
    # Berlin leaves summer time on Sunday 2026-10-25: 19:00 is 17:00 UTC before, 18:00 UTC after.
    downs = [t.at for t in transitions(make_schedule("19:00 daily"), BERLIN, utc(2026, 10, 23), utc(2026, 10, 27))]
    assert downs == [utc(2026, 10, 23, 17), utc(2026, 10, 24, 17), utc(2026, 10, 25, 18), utc(2026, 10, 26, 18)]


def test_a_time_the_clocks_skip_comes_when_they_jump_and_a_repeated_one_comes_once():
    spring = [t.at for t in transitions(make_schedule("02:30 Sun"), BERLIN, utc(2026, 3, 28), utc(2026, 3, 30))]
    assert spring == [utc(2026, 3, 29, 1)]  # 03:00 CEST, the moment 02:00 became 03:00
    autumn = [t.at for t in transitions(make_schedule("02:30 Sun"), BERLIN, utc(2026, 10, 24), utc(2026, 10, 26))]
    assert autumn == [utc(2026, 10, 25, 0, 30)]  # the first 02:30 (CEST), not the second


def test_only_the_latest_transition_since_the_last_one_done_is_due():
    since = utc(2026, 11, 2, 9)
    assert due_transition(NIGHTS, BERLIN, since, utc(2026, 11, 2, 17, 59)) is None
    assert due_transition(NIGHTS, BERLIN, since, utc(2026, 11, 2, 18)).kind == "down"
    # fwbot was away all night: the morning's scale-up supersedes the missed scale-down.
    late = due_transition(NIGHTS, BERLIN, since, utc(2026, 11, 3, 7, 30))
    assert (late.kind, late.at) == ("up", utc(2026, 11, 3, 7))
    assert due_transition(NIGHTS, BERLIN, utc(2026, 11, 2, 18), utc(2026, 11, 2, 23)) is None  # done already


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
       st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"]))
def test_the_next_transition_is_after_the_time_given_and_none_is_skipped(naive, zone_name):
    zone, after = zone_of(zone_name), naive.replace(tzinfo=UTC)
    t = next_transition(NIGHTS, zone, after)
    assert t is not None and after < t.at <= after + timedelta(days=4)  # a weekend at most in between
    assert transitions(NIGHTS, zone, after, t.at - timedelta(microseconds=1)) == []
    local = t.at.astimezone(zone)
    assert local.weekday() < 5 and (local.hour, local.minute) in ((19, 0), (8, 0))


def test_a_keep_warm_postpones_the_scale_down_and_one_past_the_morning_skips_the_night():
    running = RunningSchedule(NIGHTS, BERLIN, utc(2026, 11, 2, 9))
    assert postponed_down(running, None) == (utc(2026, 11, 2, 18), False)
    assert postponed_down(running, utc(2026, 11, 2, 17)) == (utc(2026, 11, 2, 18), False)  # ended before
    assert postponed_down(running, utc(2026, 11, 2, 20)) == (utc(2026, 11, 2, 20), True)
    assert postponed_down(running, utc(2026, 11, 3, 9)) == (utc(2026, 11, 3, 18), False)  # that night skipped


def test_the_scale_down_is_a_warned_timer_and_its_action_has_one_key():
    running = RunningSchedule(NIGHTS, BERLIN, utc(2026, 11, 2, 9))
    d = make_dep(min_replicas=1, replicas=1)
    policy = LifecyclePolicy(warn_before_scale_to_zero_s=600)
    [timer] = [t for t in timers(d, None, policy, utc(2026, 11, 2, 12), {}, schedule=running)
               if t.kind == "schedule_down"]
    assert timer.due == utc(2026, 11, 2, 18) and timer.postponable and not timer.bot_acts
    assert warning_leads(timer, policy) == (600.0,)
    assert schedule_actions(d, running, utc(2026, 11, 2, 17, 59, 59)) == []
    [action] = schedule_actions(d, running, utc(2026, 11, 2, 18, 0, 1))
    assert action.key == "schedule_down:d1:2026-11-02T18:00:00.000000Z"
    assert schedule_actions(d, running, utc(2026, 11, 2, 18, 0, 1), done=[action.key]) == []
    # Kept warm until 20:00 UTC: nothing until then, then the postponed one under its own key.
    assert schedule_actions(d, running, utc(2026, 11, 2, 19), postponed=utc(2026, 11, 2, 20)) == []
    [later] = schedule_actions(d, running, utc(2026, 11, 2, 20), postponed=utc(2026, 11, 2, 20))
    assert later.key == "schedule_down:d1:2026-11-02T20:00:00.000000Z"


# -- the one-line form a policy file uses -----------------------------------------------------------
@pytest.mark.parametrize("text, down, up, up_min", [
    ("down 19:00 Mon-Fri, up 08:00 Mon-Fri", "19:00 Mon-Fri", "08:00 Mon-Fri", 1),
    ("down 22:00", "22:00 daily", None, 1),
    ("Down 19:00 weekdays; up 7:30 Mon-Fri (min 2)", "19:00 Mon-Fri", "07:30 Mon-Fri", 2),
    ("down 18:00 Sat,Sun, up 09:00 Mon", "18:00 Sat,Sun", "09:00 Mon", 1),
    ("down 19:00 Mon-Fri up 08:00 Mon-Fri min 3", "19:00 Mon-Fri", "08:00 Mon-Fri", 3),
])
def test_a_whole_schedule_reads_from_one_line_and_writes_back_the_same(text, down, up, up_min):
    s = parse_schedule_text(text)
    assert (str(s.down), str(s.up) if s.up else None, s.up_min) == (down, up, up_min)
    assert parse_schedule_text(schedule_text(s)) == s


@pytest.mark.parametrize("text, reason", [
    ("up 08:00", 'write it as "down 19:00 Mon-Fri'),
    ("down 19:00 Funday", "`Funday` is not a day"),
    ("down 24:00", "not a time of day"),
    ("down 19:00 (min 2)", "give `--up` too"),
    ("down 19:00, up 08:00 (min 0)", "between 1 and"),
    ("down 19:00, up 08:00 (min two)", "must be a whole number, not `two`"),
])
def test_a_bad_one_line_schedule_is_named(text, reason):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule_text(text)
    assert reason in caught.value.message
