"""The lifecycle engine end to end on an injected clock: Slack stand-in, simulator, real SQLite.

Times below are seconds after the test starts (the fake clock's T0). A deployment is created at
0, Fireworks has it READY at 5 and the bot sees it READY at 6 (``Life.deploy``), so its idle
stretch starts at 6 for the bot and at 5 for Fireworks.
"""

from __future__ import annotations

import json

import pytest

from bot.core.lifecycle import keep_warm_revert_key
from bot.services.lifecycle import TrafficScraper
from tests.fixtures.lifecycle import action_ids, is_warning
from tests.harness import ALERTS, CHANNEL, message_text

H = 3600.0


def since_start(life, t: float) -> None:
    """Move the clock to T0 + t (never backwards) and run the jobs."""
    now = (life.clock.now() - life.t0).total_seconds()
    life.tick(max(0.0, t - now))


def warned(life, dep_id: str):
    """A min-0 deployment with a 30 s window, at its one scale-to-zero warning (22 s in)."""
    life.deploy(dep_id, "--scale-to-zero-window 30s")
    since_start(life, 22)
    [warning] = life.warnings_in(dep_id)
    return warning


def sim_dep(life, dep_id):
    return life.sdk().deployments.get(dep_id)


def bot_actions(life, dep_id, kind=None):
    return life.store.bot_actions(deployment_id=dep_id, kind=kind)


# -- Done when: one warning before scale to zero, across a restart; keep warm and its revert --
def test_scale_to_zero_is_warned_exactly_once_in_its_thread_even_across_a_restart(life):
    life.deploy("stz", "--scale-to-zero-window 30s")
    since_start(life, 16)
    assert life.warnings_in("stz") == []  # 30s window: the 20s lead gives way to half of it (15s)
    since_start(life, 22)
    [warning] = life.warnings_in("stz")
    text = message_text(warning)
    assert "<@U_DEV>" in text and "scale to zero" in text and "in *14s*" in text
    assert "(Europe/Berlin)" in text and "$8.00/h" in text and "cold start" in text
    assert {"lc_keep_warm_1h", "lc_keep_warm_4h", "lc_scale_to_zero", "lc_delete", "lc_transfer"} <= \
        action_ids(warning)
    life.tick(2)
    life.tick(1)

    life.restart()  # between the warning and the platform's action
    life.tick(1)
    since_start(life, 36)
    assert sim_dep(life, "stz").replica_count == 0
    [warning] = life.warnings_in("stz")
    assert "it has scaled to zero" in message_text(life.latest(warning))
    assert action_ids(life.latest(warning)) == set()
    assert life.ws.rate_violations == []
    rows = life.store.warnings(deployment_id="stz")
    assert [(r.timer, r.status) for r in rows] == [("scale_to_zero", "resolved")]


def test_keep_warm_1h_raises_min_and_a_persisted_revert_puts_it_back_after_a_restart(life):
    warning = warned(life, "warm")
    life.click(warning, "lc_keep_warm_1h")
    life.ws.wait_for(lambda: sim_dep(life, "warm").min_replica_count == 1)
    reply = life.ephemeral("warm until")
    assert "min replicas 0 → 1" in reply and "$8.00/h while warm" in reply
    edited = life.ws.wait_for(lambda: (m := life.latest(warning)).edited and "kept warm until" in message_text(m) and m)
    assert action_ids(edited) == set()
    [revert] = bot_actions(life, "warm", "keep_warm_revert")
    assert revert.status == "scheduled" and revert.payload["restore_min"] == 0
    assert revert.key == keep_warm_revert_key("warm", revert.due_at)

    life.tick(60)
    assert sim_dep(life, "warm").replica_count == 1  # kept warm past its window
    life.restart()
    since_start(life, 22 + H - 1)
    assert sim_dep(life, "warm").min_replica_count == 1
    life.tick(2)
    assert sim_dep(life, "warm").min_replica_count == 0
    assert life.store.bot_action(revert.key).status == "done"
    assert any("Keep-warm of `warm` ended" in message_text(m) for m in life.thread("warm"))
    audit = [(r["actor"], r["action"]) for r in life.store.audit_trail("warm")]
    assert ("fwbot", "update") in audit and ("U_DEV", "keep warm") in audit

    # The revert restarted Fireworks' idle clock, and the bot's: a fresh warning comes before it scales.
    life.tick(16)
    assert len(life.warnings_in("warm")) == 2
    life.tick(15)
    assert sim_dep(life, "warm").replica_count == 0
    assert len(life.warnings_in("warm")) == 2


def test_keep_warm_twice_extends_and_reverts_to_the_original_minimum(life):
    life.deploy("ext", "--scale-to-zero-window 30s")
    life.stack.fw("keep ext 1h")
    life.ephemeral("warm until")
    assert sim_dep(life, "ext").min_replica_count == 1
    life.stack.fw("keep ext 30m")
    assert "already kept warm" in life.ephemeral("already kept warm")
    life.stack.fw("keep ext 3h")
    life.ws.wait_for(lambda: len(bot_actions(life, "ext", "keep_warm_revert")) == 2)
    first, second = bot_actions(life, "ext", "keep_warm_revert")
    assert first.status == "cancelled" and second.status == "scheduled"
    assert second.payload["restore_min"] == 0  # the original minimum, not the raised one
    life.tick(H + 10)
    assert sim_dep(life, "ext").min_replica_count == 1
    life.tick(2 * H)
    assert sim_dep(life, "ext").min_replica_count == 0


def test_fw_keep_dry_run_changes_nothing_and_help_explains_it(life):
    life.deploy("dry", "--scale-to-zero-window 30s")
    life.stack.fw("keep dry 2h --dry-run")
    text = life.ephemeral("Dry run")
    assert "would keep `dry` warm" in text and "$16.00 in all" in text
    assert sim_dep(life, "dry").min_replica_count == 0
    assert bot_actions(life, "dry") == []
    r = life.stack.fw("help keep")
    assert "/fw keep <id> [D]" in json.dumps(r.json)
    for text in ("keep dry 1ns", "keep dry 99999999999999999h"):
        life.stack.fw(text)
        assert "between 1m and 30d" in life.ephemeral("between")
    life.stack.fw("keep nosuch 1h", user="U_ADMIN")
    assert "no deployment `nosuch`" in life.ephemeral("nosuch", user="U_ADMIN")
    assert bot_actions(life, "dry") == []


def test_a_revert_leaves_min_replicas_someone_changed_meanwhile(life):
    life.deploy("chg", "--scale-to-zero-window 30s --max-replica-count 3")
    life.stack.fw("keep chg 1h")
    life.ephemeral("warm until")
    life.stack.fw("update chg --min-replica-count 2")
    life.ephemeral("updated")
    life.tick(H + 5)
    assert sim_dep(life, "chg").min_replica_count == 2
    [revert] = bot_actions(life, "chg", "keep_warm_revert")
    assert revert.status == "done" and "changed to 2 meanwhile" in revert.result


# -- Done when: auto-delete warned, done by the bot, undone; traffic cancels it ---------------
def test_unused_auto_delete_is_warned_then_done_by_the_bot_with_a_working_undelete(life):
    life.deploy("unused", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    since_start(life, 35)
    assert life.warnings_in("unused") == []
    since_start(life, 36)
    [warning] = life.warnings_in("unused")
    text = message_text(warning)
    assert "fwbot will *delete*" in text and "in *30s*" in text and "soft delete" in text
    assert "$8.00/h" in text

    life.restart()  # between the warning and the bot's own action
    since_start(life, 65)
    assert sim_dep(life, "unused").state == "READY"
    since_start(life, 66)
    assert sim_dep(life, "unused").state in ("DELETING", "DELETED")
    [action] = bot_actions(life, "unused", "auto_delete")
    assert action.status == "done"
    assert "fwbot deleted it" in message_text(life.latest(warning))
    [notice] = [m for m in life.thread("unused") if "lc_undelete" in action_ids(m)]
    assert "fwbot deleted `unused` after 1m without traffic" in message_text(notice)
    assert ("fwbot", "auto-delete") in [(r["actor"], r["action"]) for r in life.store.audit_trail("unused")]
    life.tick(10)
    life.tick(10)
    assert len(life.warnings_in("unused")) == 1 and len(bot_actions(life, "unused", "auto_delete")) == 1

    life.click(notice, "lc_undelete")
    life.ws.wait_for(lambda: sim_dep(life, "unused").state not in ("DELETING", "DELETED"))
    life.ws.wait_for(lambda: "undeleted `unused`" in message_text(life.latest(notice)))
    life.tick(6)
    assert sim_dep(life, "unused").state == "READY"
    # Up again: its unused time starts now, so it is not deleted again at once.
    life.tick(20)
    assert sim_dep(life, "unused").state == "READY"
    assert len(life.warnings_in("unused")) == 1


def test_a_scale_to_zero_deployment_is_deleted_by_its_shorter_policy_before_fireworks_would(life):
    # min 0: Fireworks reports its own 7-day deleteTime; the owner's 60 s policy comes first.
    life.deploy("short", "--unused-auto-delete-duration 60s")
    assert life.store.deployment("short").delete_time is not None
    since_start(life, 36)
    [warning] = [w for w in life.warnings_in("short") if "delete" in message_text(w)]
    assert "fwbot will *delete*" in message_text(warning)
    since_start(life, 66)
    assert sim_dep(life, "short").state in ("DELETING", "DELETED")
    assert [a.status for a in bot_actions(life, "short", "auto_delete")] == ["done"]


def test_traffic_between_warning_and_deletion_cancels_it_and_edits_the_warning(life):
    life.deploy("busy", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    since_start(life, 36)
    [warning] = life.warnings_in("busy")
    life.clock.advance(4)
    life.request("busy")
    life.tick(6)
    edited = life.latest(warning)
    assert "traffic resumed" in message_text(edited) and action_ids(edited) == set()
    since_start(life, 70)
    assert sim_dep(life, "busy").state == "READY"
    assert bot_actions(life, "busy", "auto_delete") == []
    assert len(life.warnings_in("busy")) == 1


def test_traffic_seen_only_in_the_recheck_cancels_the_deletion(life):
    life.deploy("late", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    since_start(life, 36)
    assert len(life.warnings_in("late")) == 1
    life.clock.advance(29)
    life.scraper.scrape()
    life.clock.advance(1)  # 66: due; traffic arrives after the last scrape, just before the sweep
    life.request("late")
    life.clock.advance(10)
    life.stack.sync()
    life.engine.sweep()  # its re-check scrapes before deleting
    assert sim_dep(life, "late").state == "READY"
    [action] = bot_actions(life, "late", "auto_delete")
    assert action.status == "cancelled" and "no longer due" in action.result


# -- Done when: idle min-1 deployment reported with the dollars it burned ----------------------
def test_idle_min_one_deployment_is_reported_with_dollars_burned_while_idle(life):
    life.deploy("idle", "--min-replica-count 1")
    life.tick(2 * H - 1)
    assert life.warnings_in("idle") == []
    life.tick(1)
    [report] = life.warnings_in("idle")
    text = message_text(report)
    assert "no traffic for 2h" in text and "*$16.00* spent while idle" in text and "$192.00/day" in text
    assert "<@U_DEV>" in text
    life.tick(H)
    assert len(life.warnings_in("idle")) == 1  # once per idle stretch

    life.click(report, "lc_scale_to_zero")
    life.ws.wait_for(lambda: sim_dep(life, "idle").replica_count == 0)
    dep = sim_dep(life, "idle")
    assert dep.min_replica_count == 0
    assert "min replicas 1 → 0" in life.ephemeral("Scaled")


def test_snooze_postpones_the_idle_report_and_the_bots_deletion(life):
    life.deploy("nap", "--min-replica-count 1 --unused-auto-delete-duration 3h")
    life.tick(2 * H)
    [report] = life.warnings_in("nap")
    life.click(report, "lc_snooze")
    assert "until" in life.ephemeral("snoozed")
    life.ws.wait_for(lambda: "snoozed until" in message_text(life.latest(report)))
    life.tick(2 * H)  # past the 3h unused limit: snoozed for a day
    assert sim_dep(life, "nap").state == "READY"
    assert bot_actions(life, "nap", "auto_delete") == []
    assert len(life.warnings_in("nap")) == 1


# -- the timer edges ------------------------------------------------------------------------
def test_traffic_just_before_scale_to_zero_edits_the_warning_and_it_stays_up(life):
    warning = warned(life, "edge")
    life.clock.advance(12)  # 34: one second before Fireworks would scale it down
    life.request("edge")
    life.tick(0)
    assert "traffic resumed" in message_text(life.latest(warning))
    since_start(life, 40)
    assert sim_dep(life, "edge").replica_count == 1
    # The request may have come up to a minute before the scrape that saw it, so Fireworks may
    # scale it down sooner than a minute after the scrape: a new warning may say so, at most one.
    assert 1 <= len(life.warnings_in("edge")) <= 2


def test_a_window_change_moves_the_timer_and_its_warning(life):
    first = warned(life, "win")
    life.stack.fw("update win --scale-to-zero-window 2m")
    life.ephemeral("updated")
    life.tick(0)
    assert "due time moved" in message_text(life.latest(first))
    since_start(life, 120)
    assert len(life.warnings_in("win")) == 1
    since_start(life, 123)  # 22 + 120 - 20: the 20s lead fits a 2m window
    second = life.warnings_in("win")[1]
    assert "in *19s*" in message_text(second)
    since_start(life, 145)
    assert sim_dep(life, "win").replica_count == 0


def test_min_raised_to_one_ends_the_scale_to_zero_timer(life):
    warning = warned(life, "raise")
    life.stack.fw("update raise --min-replica-count 1")
    life.ephemeral("updated")
    life.tick(0)
    assert "no longer running" in message_text(life.latest(warning))
    since_start(life, 60)
    assert sim_dep(life, "raise").replica_count == 1
    assert len(life.warnings_in("raise")) == 1


def test_api_delete_time_is_warned_but_left_to_fireworks(make_life):
    life = make_life(env={"FWBOT_WARN_BEFORE_DELETE": "1m"}, sim_config={"auto_delete_after": 120.0})
    life.deploy("plat", "--unused-auto-delete-duration 10m")  # Fireworks' 120 s comes first
    assert life.store.deployment("plat").delete_time is not None
    since_start(life, 64)
    [warning] = life.warnings_in("plat")
    assert "Fireworks will *delete*" in message_text(warning) and "deleteTime" in message_text(warning)
    life.click(warning, "lc_snooze")
    assert "Snooze only postpones fwbot's own actions" in life.ephemeral("Snooze only")
    since_start(life, 121)
    assert sim_dep(life, "plat").state in ("DELETING", "DELETED")
    assert bot_actions(life, "plat", "auto_delete") == []
    assert "Fireworks deleted it" in message_text(life.latest(warning))


def test_unused_auto_delete_zero_means_never(life):
    life.deploy("keepme", "--min-replica-count 1 --unused-auto-delete-duration 0")
    life.tick(200 * H)
    assert sim_dep(life, "keepme").state == "READY"
    assert [is_warning(m) for m in life.warnings_in("keepme")] == [True]  # only the idle report


# -- exactly once ----------------------------------------------------------------------------
def test_a_warning_claimed_but_not_posted_is_posted_once_later(life):
    life.deploy("flaky", "--scale-to-zero-window 30s")
    since_start(life, 20)
    life.ws.script("chat.postMessage", error="fatal_error")
    life.tick(1)
    assert life.warnings_in("flaky") == []
    [row] = life.store.warnings(deployment_id="flaky")
    assert row.status == "claimed"
    life.restart()
    life.tick(1)
    life.tick(1)
    assert len(life.warnings_in("flaky")) == 1
    [row] = life.store.warnings(deployment_id="flaky")
    assert row.status == "sent" and row.ts


def test_a_crash_between_deleting_and_saying_so_does_not_delete_twice(life, monkeypatch):
    life.deploy("crash", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    since_start(life, 36)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(life.engine, "note_in_thread", crash)
    life.clock.advance(30)
    life.stack.sync()
    life.scraper.scrape()
    with pytest.raises(KeyboardInterrupt):
        life.engine.sweep()
    [action] = bot_actions(life, "crash", "auto_delete")
    assert action.status == "running" and action.payload.get("deleting_at")
    assert sim_dep(life, "crash").state in ("DELETING", "DELETED")

    life.restart()
    life.tick(1)
    life.tick(1)
    assert life.stack.sim.state.count_requests("DELETE", r".*/deployments/crash") == 1
    assert life.store.bot_action(action.key).status == "done"
    notices = [m for m in life.thread("crash") if "lc_undelete" in action_ids(m)]
    assert len(notices) == 1


def test_warnings_due_together_in_one_channel_go_out_as_one_digest(life):
    life.deploy("d-one", "--scale-to-zero-window 30s")
    life.deploy("d-two", "--scale-to-zero-window 30s")
    since_start(life, 28)
    top = [m for m in life.ws.messages(CHANNEL) if not m.is_reply and m.ephemeral_to is None and is_warning(m)]
    [digest] = top
    text = message_text(digest)
    assert "2 deployments need attention" in text and "`d-one`" in text and "`d-two`" in text
    assert len(life.store.warnings()) == 2
    assert {r.ts for r in life.store.warnings()} == {digest.ts}
    assert life.ws.rate_violations == []
    # Keep one warm from the digest: only its item is struck through.
    d_one = next(r for r in life.store.warnings() if r.deployment_id == "d-one")
    life.ws.click("U_DEV", CHANNEL, digest.ts, "lc_keep_warm_1h", value=d_one.token)
    life.ws.wait_for(lambda: "~" in message_text(life.latest(digest)) and "kept warm" in message_text(life.latest(digest)))
    assert "lc_keep_warm_1h" in action_ids(life.latest(digest))  # d-two's buttons are still there


def test_deployments_without_a_channel_are_warned_in_the_alert_channel(life):
    life.stack.sdk().deployments.create(
        base_model="accounts/fireworks/models/llama-v3p1-8b-instruct", deployment_id="outside",
        accelerator_type="NVIDIA_H100_80GB", min_replica_count=0, max_replica_count=1,
        autoscaling_policy={"scale_to_zero_window": "30s"})
    life.tick(6)
    offer = [m for m in life.ws.messages(ALERTS) if "outside" in message_text(m)]
    assert len(offer) == 1  # the reconcile loop's adoption offer, which becomes its thread
    since_start(life, 22)
    assert any(is_warning(m) for m in life.ws.thread(ALERTS, offer[0].ts))


# -- stale clicks ----------------------------------------------------------------------------
def test_a_click_after_traffic_resumed_is_answered_not_executed(life):
    warning = warned(life, "stale")
    life.request("stale")
    life.clock.advance(10)
    life.scraper.scrape()  # the bot knows about the traffic; no sweep has edited the warning yet
    life.click(warning, "lc_keep_warm_1h")
    assert "traffic resumed" in life.ephemeral("Nothing was done")
    assert sim_dep(life, "stale").min_replica_count == 0
    assert bot_actions(life, "stale") == []
    life.ws.wait_for(lambda: "traffic resumed" in message_text(life.latest(warning)))


def test_a_click_on_a_deleted_deployment_is_answered(life):
    warning = warned(life, "gone")
    life.sdk().deployments.delete("gone", hard=True, ignore_checks=True)
    life.click(warning, "lc_delete")
    assert "the deployment is gone" in life.ephemeral("Nothing was done")


def test_a_second_click_on_a_handled_warning_is_answered(life):
    warning = warned(life, "twice")
    # A client still showing the old message (a stale view) keeps the buttons.
    stale_copy = life.ws.add_message(CHANNEL, "U0FWBOT", text=warning.text, blocks=warning.blocks)
    life.click(warning, "lc_keep_warm_1h")
    # The warning is edited once the resolution is on record (the min changes a moment before).
    life.ws.wait_for(lambda: "kept warm until" in message_text(life.latest(warning)))
    assert sim_dep(life, "twice").min_replica_count == 1
    life.click(stale_copy, "lc_scale_to_zero", user="U_ADMIN")
    text = life.ephemeral("Nothing was done", user="U_ADMIN")
    assert "already handled" in text and "kept warm until" in text
    assert sim_dep(life, "twice").replica_count == 1


def test_only_the_owner_or_an_admin_may_act_on_a_warning(life):
    warning = warned(life, "owned")
    life.click(warning, "lc_keep_warm_1h", user="U_OTHER")
    assert "owned by <@U_DEV>" in life.ephemeral("owned by", user="U_OTHER")
    assert sim_dep(life, "owned").min_replica_count == 0
    assert life.store.warnings(deployment_id="owned")[0].status == "sent"


def test_delete_now_deletes_and_resolves_the_warning(life):
    warning = warned(life, "bye")
    delete = next(e for b in warning.blocks if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "lc_delete")
    assert delete["confirm"]["title"]["text"] == "Delete deployment?"
    life.click(warning, "lc_delete")
    life.ws.wait_for(lambda: sim_dep(life, "bye").state in ("DELETING", "DELETED"))
    life.ws.wait_for(lambda: "deleted by @dev" in message_text(life.latest(warning)))


def test_hand_over_opens_a_user_picker_and_transfers_ownership(life):
    warning = warned(life, "gift")
    life.click(warning, "lc_transfer")
    view = life.ws.wait_for(lambda: (life.ws.views_for("U_DEV") or [None])[-1])
    assert view.view["callback_id"] == "lc_transfer"
    bad = life.ws.submit_view("U_DEV", view.id, values={"new_owner": {"user": "U0FWBOT"}})
    assert bad.json["response_action"] == "errors"
    good = life.ws.submit_view("U_DEV", view.id, values={"new_owner": {"user": "U_OTHER"}})
    assert good.status == 200
    life.ws.wait_for(lambda: life.store.deployment("gift").owner == "U_OTHER")
    life.ws.wait_for(lambda: any("<@U_OTHER> now owns `gift`" in message_text(m) for m in life.thread("gift")))
    # the new owner may now act on it, the old one may not
    life.click(warning, "lc_keep_warm_1h", user="U_DEV")
    assert "owned by <@U_OTHER>" in life.ephemeral("owned by")


# -- App Home ------------------------------------------------------------------------------
def test_app_home_shows_own_deployments_with_next_timer_and_admins_see_all_by_owner(life):
    life.deploy("mine", "--scale-to-zero-window 30s")
    life.deploy("theirs", "--min-replica-count 1", user="U_OTHER")
    life.ws.open_home("U_DEV")
    home = life.ws.wait_for(lambda: life.ws.home("U_DEV"))
    text = json.dumps(home.view)
    assert "`mine`" in text and "theirs" not in text
    assert "scales to zero in" in text and "$8.00/h" in text and "1 replica " in text and "replica(s)" not in text

    life.ws.open_home("U_ADMIN")
    admin = life.ws.wait_for(lambda: life.ws.home("U_ADMIN"))
    text = json.dumps(admin.view)
    assert "`mine`" in text and "`theirs`" in text
    assert "*Owner:* <@U_DEV>" in text and "*Owner:* <@U_OTHER>" in text
    assert "idle-paying report in" in text

    life.ws.click_in_view("U_DEV", home.id, "home_keep_warm", value="mine")
    life.ws.wait_for(lambda: sim_dep(life, "mine").min_replica_count == 1)
    refreshed = life.ws.wait_for(lambda: "warm until" in json.dumps(life.ws.home("U_DEV").view)
                                 and life.ws.home("U_DEV"))
    assert refreshed is not None
    life.ws.click_in_view("U_DEV", home.id, "home_scale_to_zero", value="mine")
    life.ws.wait_for(lambda: sim_dep(life, "mine").replica_count == 0)


# -- owners who leave -------------------------------------------------------------------------
def test_a_deactivated_owners_deployments_are_offered_for_adoption_once(life):
    life.deploy("orphan", "--min-replica-count 1", user="U_OTHER")
    life.ws.deactivate_user("U_OTHER")

    def offers():
        return [m for m in life.thread("orphan") if "no longer in this Slack workspace" in message_text(m)]

    life.ws.wait_for(offers)
    assert life.store.deployment("orphan").owner is None
    life.tick(10)
    life.tick(10)
    assert len(offers()) == 1 and offers()[0].reply_broadcast
    assert "adopt" in action_ids(offers()[0])
    life.click(offers()[0], "adopt", user="U_DEV")
    life.ws.wait_for(lambda: life.store.deployment("orphan").owner == "U_DEV")


def test_the_sweep_notices_a_departed_owner_without_the_event(life):
    life.deploy("quiet", "--min-replica-count 1", user="U_OTHER")
    life.ws.user("U_OTHER").deleted = True  # deactivated while the bot was not listening
    life.tick(10)
    assert life.store.deployment("quiet").owner is None
    life.tick(10)
    assert len([m for m in life.thread("quiet") if "no longer in this Slack workspace" in message_text(m)]) == 1



def users_info_calls(life, user: str) -> int:
    return len([c for c in life.ws.calls if c.method == "users.info" and c.params.get("user") == user])


def test_what_slack_said_of_an_owner_outlives_a_restart_for_an_hour(life):
    life.deploy("kept", "--min-replica-count 1", user="U_OTHER")
    life.tick(10)
    asked = users_info_calls(life, "U_OTHER")
    assert asked >= 1
    assert life.store.person("U_OTHER")[1]["deleted"] is False
    life.restart()
    life.tick(10)
    life.tick(10)
    assert users_info_calls(life, "U_OTHER") == asked  # the new process read it from SQLite
    life.clock.advance(3600)
    life.tick(10)
    assert users_info_calls(life, "U_OTHER") == asked + 1


def test_a_user_change_event_replaces_what_fwbot_knows_of_a_person(life):
    life.deploy("moved", "--min-replica-count 1", user="U_OTHER")
    life.tick(10)
    asked = users_info_calls(life, "U_OTHER")
    user = life.ws.user("U_OTHER")
    user.tz = "Asia/Tokyo"
    life.ws.send_event({"type": "user_change", "user": life.ws.user_json(user)})
    life.ws.wait_for(lambda: life.store.person("U_OTHER")[1]["tz"] == "Asia/Tokyo")
    assert set(life.store.person("U_OTHER")[1]) <= {"id", "name", "tz", "deleted", "is_bot"}
    life.tick(10)
    assert users_info_calls(life, "U_OTHER") == asked


# -- traffic ---------------------------------------------------------------------------------
def test_scrapes_are_spaced_and_back_off_for_as_long_as_retry_after_says(life):
    sim, scraper = life.stack.sim, TrafficScraper(life.stack.services)
    metrics = r"/v1/accounts/demo/metrics"
    assert scraper.scrape() is not None
    for _ in range(20):
        scraper.scrape()  # within the same 10 s: never more than 6 a minute
    assert sim.state.count_requests("GET", metrics) == 1
    sim.faults.fail_next(1, status=429, retry_after=45)
    life.clock.advance(10)
    assert scraper.scrape() is None
    assert sim.state.count_requests("GET", metrics) == 2
    life.clock.advance(30)
    assert scraper.scrape() is None  # 30 s later: still inside Retry-After
    assert sim.state.count_requests("GET", metrics) == 2
    life.clock.advance(15)
    assert scraper.scrape() is not None
    assert sim.state.count_requests("GET", metrics) == 3


def test_last_traffic_is_recorded_per_deployment(life):
    life.deploy("tr", "--scale-to-zero-window 30s")
    life.tick(10)
    assert life.store.last_traffic("tr") is None
    life.request("tr")
    life.tick(10)
    assert life.store.last_traffic("tr") == life.clock.now()
    assert [r["serving"] for r in life.store.traffic_history("tr")] == [0, 1]


def test_metrics_interval_below_ten_seconds_is_refused():
    from bot.core.settings import Settings

    with pytest.raises(ValueError, match="at least 10s"):
        Settings(_env_file=None, FWBOT_METRICS_INTERVAL="5s")
