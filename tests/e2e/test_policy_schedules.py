"""Schedules set by the team policy, end to end: a policy file (``FWBOT_POLICY_FILE``), ``/fw``
over signed HTTP, the lifecycle sweep on the test's clock, the simulator over HTTP, a real database.

The clock starts Monday 2026-11-02 09:00 UTC; the owner (``U_DEV``) lives in Europe/Berlin (UTC+1),
so "19:00 Mon-Fri" is 18:00 UTC and "08:00" is 07:00 UTC. Deployments are made in ``C0MLPLAT``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.test_schedules import at, notes, scale_calls
from tests.harness import message_text
from tests.services.test_lifecycle import bot_actions, sim_dep

RULE = '[[policy.rule]]\nchannel = "C0MLPLAT"\nschedule = "down 19:00 Mon-Fri, up 08:00 Mon-Fri"\n'


def write_policy(path, body: str) -> None:
    path.write_text(f"[policy]\nmax_replicas = 4\n\n{body}", encoding="utf-8")


def policy_env(tmp_path, body: str) -> tuple[dict, object]:
    path = tmp_path / "team-policy.toml"
    write_policy(path, body)
    return {"FWBOT_POLICY_FILE": str(path), "FWBOT_IDLE_PAYING_AFTER": "48h"}, path


def swept(life, hour: int, minute: int, second: int = 0, day: int = 2) -> set[str]:
    """The deployments a sweep at that time would read whole (the others cost it a few columns)."""
    when = datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)
    return {d.id for d in life.engine.snapshot(when, due_only=True).records}


def test_a_channel_rule_schedule_scales_its_deployments_down_once_and_one_with_its_own_follows_its_own(
        make_life, tmp_path):
    env, _ = policy_env(tmp_path, RULE)
    life = make_life(env=env)
    life.deploy("team", "--min-replica-count 1")
    life.deploy("own", "--min-replica-count 1")
    life.stack.fw('schedule own --down "20:00 Mon-Fri"')
    reply = life.ephemeral("scheduled `own`")
    assert "scale to 0 at 20:00 Mon–Fri (no scale-up" in reply
    assert "It overrides the team policy's schedule (scale to 0 at 19:00 Mon–Fri" in reply

    # /fw schedule, /fw get and the tracking message say where the schedule comes from.
    life.stack.fw("schedule team")
    shown = life.ephemeral("It is the team policy's schedule")
    assert ("scale to 0 at 19:00 Mon–Fri, back to min 1 at 08:00 Mon–Fri (Europe/Berlin), from the team policy "
            "(channel C0MLPLAT)") in shown
    assert "Mon 19:00 (Europe/Berlin)" in shown and "To override it" in shown and "/fw schedule team --down" in shown
    life.stack.fw("get team")
    assert "from the team policy (channel C0MLPLAT)" in life.ephemeral("*Schedule:*")
    record = life.store.deployment("team")
    assert "from the team policy (channel C0MLPLAT)" in message_text(life.ws.message(record.channel, record.thread_ts))
    life.stack.fw("schedule own")
    own = life.ephemeral("Set by")
    assert "scale to 0 at 20:00 Mon–Fri" in own and "team policy" not in own
    life.stack.fw("policy")
    assert "down 19:00 Mon-Fri, up 08:00 Mon-Fri" in life.ephemeral("Off-hours schedule")

    # Clearing: "team" has nothing of its own to clear, and says so.
    life.stack.fw("schedule team --clear")
    assert "no schedule of its own to clear" in life.ephemeral("of its own to clear")

    # The sweep reads neither deployment in the afternoon; "team" only once its warning is near.
    assert swept(life, 14, 0) == {"own"}  # a deployment's own schedule is always looked at
    assert "team" in swept(life, 17, 59, 45)

    at(life, 17, 59, 45)  # the warning opens 20 s ahead, as for a schedule of its own
    [warning] = [m for m in life.warnings_in("team") if "on its schedule" in message_text(m)]
    assert "Mon 19:00 (Europe/Berlin)" in message_text(warning)
    assert "(the team policy's schedule, from channel C0MLPLAT)" in message_text(warning)
    at(life, 18, 0, 5)
    dep = sim_dep(life, "team")
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    [done] = bot_actions(life, "team", "schedule_down")
    assert done.status == "done" and done.key == "schedule_down:team:2026-11-02T18:00:00.000000Z"
    [note] = notes(life, "team", "fwbot scaled `team` to zero on its schedule")
    assert "from the team policy (channel C0MLPLAT)" in message_text(note)
    assert sim_dep(life, "own").min_replica_count == 1  # its own schedule wins: 20:00, not 19:00
    assert bot_actions(life, "own", "schedule_down") == []
    for _ in range(3):
        life.tick(30)
    assert len(scale_calls(life, "team")) == 1
    assert len(notes(life, "team", "fwbot scaled `team` to zero on its schedule")) == 1

    at(life, 19, 0, 5)
    dep = sim_dep(life, "own")
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    assert [a.key for a in bot_actions(life, "own", "schedule_down")] == ["schedule_down:own:2026-11-02T19:00:00.000000Z"]
    assert len(bot_actions(life, "team", "schedule_down")) == 1

    at(life, 7, 0, 5, day=3)  # Tuesday 08:00:05 in Berlin: the policy brings "team" back, "own" has no up
    assert sim_dep(life, "team").min_replica_count == 1
    assert [a.status for a in bot_actions(life, "team", "schedule_up")] == ["done"]
    assert sim_dep(life, "own").min_replica_count == 0
    life.tick(30)
    assert len(notes(life, "team", "back to 1 on its schedule")) == 1


def test_a_schedule_in_a_policy_loaded_after_its_time_does_not_fire_retroactively(make_life, tmp_path):
    env, path = policy_env(tmp_path, "")
    life = make_life(env=env)
    life.deploy("late", "--min-replica-count 1")
    at(life, 18, 30)  # 19:30 in Berlin: the 19:00 scale-down has passed
    write_policy(path, RULE)
    for _ in range(4):
        life.tick(30)
    assert sim_dep(life, "late").min_replica_count == 1
    assert bot_actions(life, "late", "schedule_down") == []
    assert scale_calls(life, "late") == []
    assert "late" not in swept(life, 18, 35)
    life.stack.fw("schedule late")
    assert "Next: back to min 1 Tue 08:00 (Europe/Berlin)" in life.ephemeral("team policy's schedule")

    # The next morning's scale-up and evening's scale-down are carried out as usual.
    at(life, 7, 0, 5, day=3)
    assert sim_dep(life, "late").min_replica_count == 1  # already 1: done, nothing sent
    at(life, 18, 0, 5, day=3)
    dep = sim_dep(life, "late")
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    assert [a.key for a in bot_actions(life, "late", "schedule_down")] == [
        "schedule_down:late:2026-11-03T18:00:00.000000Z"]


def test_when_a_policy_schedule_took_effect_holds_across_a_restart(make_life, tmp_path):
    env, path = policy_env(tmp_path, "")
    life = make_life(env=env)
    life.deploy("kept", "--min-replica-count 1")
    at(life, 10, 0)
    write_policy(path, RULE)
    life.tick(30)  # the sweep notes when the rule's schedule took effect: Mon 10:00:30 UTC
    at(life, 17, 0)
    life.clock.advance(3600 + 5)  # fwbot is down over 19:00 in Berlin and starts again at 19:00:05
    life.restart()
    life.tick(0)
    dep = sim_dep(life, "kept")  # the scale-down it missed is the latest due since the rule took effect
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    [done] = bot_actions(life, "kept", "schedule_down")
    assert done.key == "schedule_down:kept:2026-11-02T18:00:00.000000Z"
    life.tick(30)
    assert len(scale_calls(life, "kept")) == 1
