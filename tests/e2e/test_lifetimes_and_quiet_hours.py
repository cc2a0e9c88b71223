"""Maximum lifetimes and quiet hours, end to end: a team policy file (``FWBOT_POLICY_FILE``), the
bot over signed HTTP, the simulated Slack and Fireworks, a real database, on the test's clock.

A deployment is created at T0 (Fireworks' ``createTime``), so a 2h lifetime is due at T0 + 2h and,
with the deletion leads 24h,1h, warned at T0 + 1h (a lead is at most half the lifetime).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fixtures.lifecycle import action_ids
from tests.harness import message_text
from tests.services.test_lifecycle import bot_actions, sim_dep, since_start

H = 3600.0
GONE = ("DELETING", "DELETED")


def policy_env(tmp_path, body: str, **env: str) -> dict:
    path = tmp_path / "team-policy.toml"
    path.write_text(f"[policy]\n{body}\n", encoding="utf-8")
    return {"FWBOT_POLICY_FILE": str(path), "FWBOT_IDLE_PAYING_AFTER": "48h", **env}


def lifetime_warnings(life, dep_id: str) -> list:
    return [m for m in life.warnings_in(dep_id) if "maximum lifetime" in message_text(m)]


# -- a lifetime warns, then deletes -----------------------------------------------------------------
def test_a_lifetime_is_warned_then_the_deployment_deleted_whatever_its_traffic(make_life, tmp_path):
    life = make_life(env=policy_env(tmp_path, 'max_lifetime = "2h"'))
    life.deploy("aged", "--min-replica-count 1")
    record = life.store.deployment("aged")
    tracking = message_text(life.ws.message(record.channel, record.thread_ts))
    assert "Maximum lifetime 2h (max_lifetime, from defaults)" in tracking and "unless renewed" in tracking
    life.stack.fw("get aged")
    card = life.ephemeral("Maximum lifetime")
    assert "whatever the traffic" in card and "keep-warm and snooze do not postpone it" in card

    since_start(life, H - 1)
    assert lifetime_warnings(life, "aged") == []
    since_start(life, H)
    [warning] = lifetime_warnings(life, "aged")
    text = message_text(warning)
    assert "<@U_DEV>" in text and "fwbot will *delete* it in *1h*" in text and "(Europe/Berlin)" in text
    assert "max_lifetime, from defaults" in text and "Keep-warm and snooze do not postpone a lifetime" in text
    assert action_ids(warning) == {"lc_renew", "lc_delete", "lc_transfer"}  # nothing that would not move it

    life.clock.advance(600)
    life.request("aged")  # traffic: a lifetime is a hard cap all the same
    since_start(life, 2 * H - 1)
    assert sim_dep(life, "aged").state == "READY"
    since_start(life, 2 * H)
    assert sim_dep(life, "aged").state in GONE
    [action] = bot_actions(life, "aged", "lifetime_delete")
    assert action.status == "done"
    assert bot_actions(life, "aged", "auto_delete") == []
    assert "fwbot deleted it" in message_text(life.latest(warning))
    [notice] = [m for m in life.thread("aged") if "lc_undelete" in action_ids(m)]
    assert "at the end of its maximum lifetime of 2h (max_lifetime, from defaults)" in message_text(notice)
    life.tick(60)
    life.tick(60)
    assert len(bot_actions(life, "aged", "lifetime_delete")) == 1
    assert len([m for m in life.thread("aged") if "lc_undelete" in action_ids(m)]) == 1
    assert [(r["actor"], r["action"], r["result"]) for r in life.store.audit_trail("aged")].count(
        ("fwbot", "auto-delete", "ok")) == 1


# -- a renewal holds ------------------------------------------------------------------------------
def test_a_renewal_by_button_holds_across_a_restart_and_the_new_due_time_is_warned_again(make_life, tmp_path):
    life = make_life(env=policy_env(tmp_path, 'max_lifetime = "2h"'))
    life.deploy("keeper", "--min-replica-count 1")
    since_start(life, H)
    [warning] = lifetime_warnings(life, "keeper")

    life.click(warning, "lc_renew", user="U_OTHER")  # neither the owner nor an admin
    assert "owned by <@U_DEV>" in life.ephemeral("owned by", user="U_OTHER")
    assert life.store.latest_renewals("keeper") == {}

    life.click(warning, "lc_renew")
    assert "fwbot now deletes it at" in life.ephemeral("Renewed `keeper`")
    life.ws.wait_for(lambda: "renewed by @dev until" in message_text(life.latest(warning)))
    assert action_ids(life.latest(warning)) == set()
    renewed_at = life.clock.now()
    assert life.store.latest_renewals("keeper") == {"keeper": (renewed_at, "U_DEV")}
    assert ("U_DEV", "renew lifetime", "ok") in [(r["actor"], r["action"], r["result"])
                                                 for r in life.store.audit_trail("keeper")]

    life.restart()  # the renewal is on record, not in memory
    since_start(life, 2 * H)  # the old due time
    # The new due time (renewed at 1h, so 3h) gets its own warning, 1h ahead.
    old, new = lifetime_warnings(life, "keeper")
    assert old.ts == warning.ts
    text = message_text(new)
    assert "fwbot will *delete* it in *1h*" in text and "counted from its last renewal, by <@U_DEV>" in text
    since_start(life, 2 * H + 60)
    assert sim_dep(life, "keeper").state == "READY"
    assert bot_actions(life, "keeper", "lifetime_delete") == []
    since_start(life, 3 * H - 1)
    assert sim_dep(life, "keeper").state == "READY"
    since_start(life, 3 * H)
    assert sim_dep(life, "keeper").state in GONE
    assert [a.status for a in bot_actions(life, "keeper", "lifetime_delete")] == ["done"]


# -- quiet hours ------------------------------------------------------------------------------------
EVENING = 8.5 * H  # T0 is Monday 09:00 UTC; this is 17:30 UTC, 18:30 in Berlin, U_DEV's zone
TUESDAY_8_BERLIN = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)


def test_an_idle_report_due_in_quiet_hours_is_held_across_a_restart_and_sent_when_they_end(make_life, tmp_path):
    life = make_life(env=policy_env(tmp_path, 'quiet_hours = "19:00-08:00"', FWBOT_IDLE_PAYING_AFTER="2h"))
    life.clock.advance(EVENING)
    life.deploy("night", "--min-replica-count 1")
    life.tick(2 * H + 10)  # idle for 2h at 20:30 in Berlin: due, but it can wait
    assert life.warnings_in("night") == []
    assert not any("night" in message_text(m) for m in life.ws.messages("U_DEV"))
    [row] = life.store.warnings(deployment_id="night")
    assert (row.timer, row.status) == ("idle_paying", "claimed")
    [held] = life.store.effects.open("warnings")
    assert held.next_at == TUESDAY_8_BERLIN

    life.restart()
    life.tick(5 * H)
    life.clock.advance((TUESDAY_8_BERLIN - life.clock.now()).total_seconds() - 1)
    life.tick()
    assert life.warnings_in("night") == []
    life.tick(1)  # 08:00 in Berlin
    [report] = life.warnings_in("night")
    text = message_text(report)
    assert "no traffic for 13h" in text and "spent while idle" in text and "quiet hours" not in text
    [row] = life.store.warnings(deployment_id="night")
    assert row.status == "sent" and row.sent_at == TUESDAY_8_BERLIN
    life.tick(H)
    assert len(life.warnings_in("night")) == 1


def test_a_deletion_due_before_quiet_hours_end_is_warned_at_once_and_says_why(make_life, tmp_path):
    life = make_life(env=policy_env(tmp_path, 'quiet_hours = "19:00-08:00"'))
    life.clock.advance(EVENING)
    life.deploy("urgent", "--min-replica-count 1 --unused-auto-delete-duration 2h")
    life.tick(H + 10)  # 19:30 in Berlin: quiet, and the deletion is due at 20:30
    [warning] = life.warnings_in("urgent")
    text = message_text(warning)
    assert "fwbot will *delete*" in text
    assert ("Sent during your quiet hours (they end Tue 08:00 (Europe/Berlin)) because its deletion is due at "
            "Mon 20:30 (Europe/Berlin)") in text
    life.tick(H)
    assert sim_dep(life, "urgent").state in GONE  # on time: the warning was not held


def test_without_quiet_hours_in_the_policy_nothing_is_held(make_life, tmp_path):
    life = make_life(env=policy_env(tmp_path, 'max_lifetime = "30d"', FWBOT_IDLE_PAYING_AFTER="2h"))
    life.clock.advance(EVENING)
    life.deploy("plain", "--min-replica-count 1")
    life.tick(2 * H + 10)
    [report] = life.warnings_in("plain")
    assert "quiet hours" not in message_text(report)
    assert life.clock.now() - life.t0 < timedelta(hours=11)
