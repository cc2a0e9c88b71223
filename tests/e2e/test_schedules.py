"""Off-hours schedules end to end: ``/fw schedule`` over signed HTTP, the lifecycle sweep on the
test's clock, the simulator over HTTP and a real database file.

The clock starts Monday 2026-11-02 09:00 UTC; the owner (``U_DEV``) lives in Europe/Berlin,
where that is 10:00 (CET, UTC+1), so "19:00 Mon-Fri" is 18:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.harness import message_text
from tests.services.test_lifecycle import bot_actions, sim_dep

SCALES = r"/v1/accounts/demo/deployments/[^/]+:scale"


def at(life, hour: int, minute: int = 0, second: int = 0, day: int = 2) -> None:
    """Move the clock to that UTC time (never backwards) and run the jobs."""
    target = datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)
    life.tick(max(0.0, (target - life.clock.now()).total_seconds()))


def scale_calls(life, dep_id: str) -> list:
    return [r for r in life.stack.sim.state.requests
            if r.method == "PATCH" and r.path.endswith(f"/deployments/{dep_id}:scale") and r.status == 200]


def notes(life, dep_id: str, needle: str) -> list:
    return [m for m in life.thread(dep_id) if needle in message_text(m)]


def test_a_schedule_scales_down_at_19_berlin_once_warned_first_and_back_up_at_8(life):
    life.deploy("night", "--min-replica-count 1")
    life.stack.fw('schedule night --down "19:00 Mon-Fri" --up "08:00 Mon-Fri"')
    reply = life.ephemeral("scheduled")
    assert "scale to 0 at 19:00 Mon–Fri, back to min 1 at 08:00 Mon–Fri (Europe/Berlin)" in reply
    assert "Mon 19:00 (Europe/Berlin)" in reply  # the next transition, in the schedule's zone
    life.stack.fw("schedule night")
    assert "Europe/Berlin" in life.ephemeral("Next:")
    shown = "scale to 0 at 19:00 Mon–Fri, back to min 1 at 08:00 Mon–Fri (Europe/Berlin) · next: scale to 0 Mon 19:00"
    # /fw get, the tracking message and the App Home: the schedule in words, its zone, the next transition.
    life.stack.fw("get night")
    got = life.ephemeral("*Schedule:*")
    assert shown + " (Europe/Berlin), in 8h59m" in got
    record = life.store.deployment("night")
    assert shown in message_text(life.ws.message(record.channel, record.thread_ts))
    life.ws.open_home("U_DEV")
    home = life.ws.wait_for(lambda: (v := life.ws.home("U_DEV")) is not None and "Schedule" in str(v.view) and v)
    assert shown in str(home.view)

    at(life, 17, 59, 30)
    assert sim_dep(life, "night").min_replica_count == 1
    at(life, 17, 59, 45)  # the warning opens 20 s ahead (FWBOT_WARN_BEFORE_SCALE_TO_ZERO)
    [warning] = [m for m in life.warnings_in("night") if "on its schedule" in message_text(m)]
    assert "Mon 19:00 (Europe/Berlin)" in message_text(warning)
    assert scale_calls(life, "night") == []

    at(life, 18, 0, 5)
    dep = sim_dep(life, "night")
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    assert len(scale_calls(life, "night")) == 1
    [done] = bot_actions(life, "night", "schedule_down")
    assert done.status == "done" and done.key == "schedule_down:night:2026-11-02T18:00:00.000000Z"
    assert len(notes(life, "night", "fwbot scaled `night` to zero on its schedule")) == 1
    assert ":zzz:" in message_text(life.latest(warning))  # the warning now says it happened
    for _ in range(3):
        life.tick(30)
    assert len(scale_calls(life, "night")) == 1
    assert len(notes(life, "night", "fwbot scaled `night` to zero on its schedule")) == 1
    audit = [(r["actor"], r["action"]) for r in life.store.audit_trail("night")]
    assert audit.count(("fwbot", "scheduled scale-down")) == 1

    at(life, 7, 0, 5, day=3)  # Tuesday 08:00:05 in Berlin
    assert sim_dep(life, "night").min_replica_count == 1
    assert [a.status for a in bot_actions(life, "night", "schedule_up")] == ["done"]
    assert len(notes(life, "night", "back to 1 on its schedule")) == 1
    life.tick(30)
    assert len(notes(life, "night", "back to 1 on its schedule")) == 1


def test_only_the_owner_or_an_admin_sets_a_schedule_and_bad_input_is_named(life):
    life.deploy("mine", "--min-replica-count 1")
    life.stack.fw('schedule mine --down "19:00 Mon-Fri"', user="U_OTHER")
    assert "Only the owner or an admin" in life.ephemeral("owned by", user="U_OTHER")
    assert life.store.schedule("mine") is None
    life.stack.fw('schedule mine --down "19:00 Mon-Fry"')
    assert "`Fry` is not a day" in life.ephemeral("not a day")
    life.stack.fw("schedule mine --down 19:00 weekdays", user="U_ADMIN")
    life.ephemeral("scheduled", user="U_ADMIN")
    assert life.store.schedule("mine").down == "19:00 Mon-Fri"
    life.stack.fw("schedule mine --clear")
    assert "cleared the schedule" in life.ephemeral("cleared")
    assert life.store.schedule("mine") is None


def test_a_keep_warm_postpones_the_scale_down_until_it_ends(life):
    life.deploy("late", "--min-replica-count 1")
    life.stack.fw('schedule late --down "19:00 daily"')
    life.ephemeral("scheduled")
    at(life, 17, 30)
    life.stack.fw("keep late 1h")  # until 18:30 UTC = 19:30 Berlin
    life.ephemeral("warm")
    at(life, 18, 0, 5)
    assert sim_dep(life, "late").min_replica_count == 1  # not at 19:00: it is kept warm
    assert bot_actions(life, "late", "schedule_down") == []
    life.stack.fw("schedule late")
    assert "scale to 0 (postponed by a keep-warm or snooze) Mon 19:30 (Europe/Berlin)" in life.ephemeral("postponed")
    at(life, 18, 30, 5)
    dep = sim_dep(life, "late")
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    [done] = bot_actions(life, "late", "schedule_down")
    assert done.status == "done" and done.key == "schedule_down:late:2026-11-02T18:30:00.000000Z"
    assert len(notes(life, "late", "fwbot scaled `late` to zero on its schedule")) == 1
