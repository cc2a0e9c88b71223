"""What fwbot says is what happened: deletions confirmed before they are announced, posts that
fall back instead of vanishing, a busy channel that holds nobody else up.

Driven through the real boundary (signed HTTP into the bot, the simulator over HTTP, a real
SQLite file) on the test's clock; faults come from the simulator and the Slack stand-in.
"""

from __future__ import annotations

import re
import time

from tests.fixtures.lifecycle import action_ids, is_warning
from tests.harness import ALERTS, CHANNEL, message_text
from tests.services.test_lifecycle import bot_actions, sim_dep, since_start

DELETE = r"/v1/accounts/demo/deployments/[^/]+"


def metric(life, name: str, **labels: str) -> float:
    """A counter's value from the bot's own /metrics, as Prometheus would scrape it."""
    import httpx

    text = httpx.get(f"{life.stack.bot.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def deleted_notices(life, dep_id: str) -> list:
    return [m for m in life.thread(dep_id) if "lc_undelete" in action_ids(m)]


def unused(life, dep_id: str) -> None:
    """A min-1 deployment with a 60 s unused limit, warned at 36 s; its deletion is due at 66 s."""
    life.deploy(dep_id, "--min-replica-count 1 --unused-auto-delete-duration 60s")
    since_start(life, 36)
    assert any("fwbot will *delete*" in message_text(w) for w in life.warnings_in(dep_id))


# -- 1: an auto-delete is announced only once Fireworks shows it ------------------------------------
def test_a_delete_answered_5xx_is_not_announced_and_is_retried_until_it_takes(life):
    unused(life, "five")
    life.stack.sim.faults.fail_matching("DELETE", DELETE, n=None, status=503)
    since_start(life, 66)
    assert sim_dep(life, "five").state == "READY"
    assert deleted_notices(life, "five") == []
    [action] = bot_actions(life, "five", "auto_delete")
    assert action.status == "running" and action.payload["failures"] == 1 and "503" in action.payload["last_error"]
    assert not any("fwbot deleted it" in message_text(life.latest(w)) for w in life.warnings_in("five"))
    # The next attempt waits for its backoff, then takes once Fireworks answers again.
    life.stack.sim.faults.clear_matching()
    life.tick(5)
    assert sim_dep(life, "five").state == "READY"
    life.tick(30)
    assert sim_dep(life, "five").state in ("DELETING", "DELETED")
    assert [a.status for a in bot_actions(life, "five", "auto_delete")] == ["done"]
    assert len(deleted_notices(life, "five")) == 1
    life.tick(30)
    assert len(deleted_notices(life, "five")) == 1


def test_a_delete_that_landed_although_its_answer_was_lost_is_confirmed_not_sent_again(life):
    unused(life, "lost")
    life.stack.sim.faults.fail_matching("DELETE", DELETE, n=3, status=503, after_commit=True)
    since_start(life, 66)
    assert sim_dep(life, "lost").state in ("DELETING", "DELETED")
    assert deleted_notices(life, "lost") == []  # not yet confirmed by this attempt
    life.tick(31)
    assert [a.status for a in bot_actions(life, "lost", "auto_delete")] == ["done"]
    assert len(deleted_notices(life, "lost")) == 1
    audit = [(r["actor"], r["action"], r["result"]) for r in life.store.audit_trail("lost")]
    assert audit.count(("fwbot", "auto-delete", "ok")) == 1


def test_a_delete_that_never_takes_is_given_up_and_the_truth_told_in_thread_dm_and_alerts(life):
    unused(life, "stuck")
    life.stack.sim.faults.fail_matching("DELETE", DELETE, n=None, status=503)
    for _ in range(8):
        life.tick(600)
    assert sim_dep(life, "stuck").state == "READY"
    [action] = bot_actions(life, "stuck", "auto_delete")
    assert action.status == "failed"
    assert deleted_notices(life, "stuck") == []
    truth = [m for m in life.thread("stuck") if "tried to delete" in message_text(m)]
    assert len(truth) == 1
    text = message_text(truth[0])
    assert "5 times" in text and "503" in text and "$8.00/h" in text and "<@U_DEV>" in text
    dm = life.ws.messages("U_DEV")
    assert sum("tried to delete" in message_text(m) for m in dm) == 1
    assert sum("tried to delete" in message_text(m) and "stuck" in message_text(m)
               for m in life.ws.messages(ALERTS)) == 1
    warning = next(w for w in life.warnings_in("stuck") if "delete" in message_text(w))
    assert "could not delete" in message_text(life.latest(warning))
    assert "fwbot deleted it" not in message_text(life.latest(warning))
    assert ("fwbot", "auto-delete", "error") in [(r["actor"], r["action"], r["result"])
                                                 for r in life.store.audit_trail("stuck")]


def test_a_crash_after_deciding_to_delete_but_before_sending_it_deletes_on_the_next_run(life):
    # deleting_at on record, no DELETE sent: the next run reads Fireworks, re-decides, deletes.
    unused(life, "half")
    life.clock.advance(30)
    life.stack.sync()
    life.scraper.scrape()
    dep = life.store.deployment("half")
    [due] = [a for a in life.engine._due_actions(dep, life.engine.snapshot(life.clock.now(), [dep]),
                                                 life.clock.now())]
    life.store.schedule_action(due.key, due.kind, "half", due.due, life.clock.now(), payload={"reason": due.reason})
    life.store.start_action(due.key, life.clock.now())
    life.store.note_action_progress(due.key, life.clock.now(), deleting_at="2026-11-02T09:01:06.000000Z")
    life.restart()
    life.tick(1)
    assert sim_dep(life, "half").state in ("DELETING", "DELETED")
    assert life.stack.sim.state.count_requests("DELETE", r".*/deployments/half") == 1
    assert len(deleted_notices(life, "half")) == 1


# -- 4: a channel that refuses posts ----------------------------------------------------------------
def test_a_warning_a_channel_refuses_goes_to_the_owner_by_dm_and_still_counts(life):
    life.deploy("arch", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    life.ws.set_channel(CHANNEL, archived=True)
    before = metric(life, "fwbot_slack_fallbacks_total", error="is_archived")
    since_start(life, 36)
    dms = [m for m in life.ws.messages("U_DEV") if is_warning(m)]
    assert len(dms) == 1 and "fwbot will *delete*" in message_text(dms[0])
    [row] = [r for r in life.store.warnings(deployment_id="arch") if r.timer == "auto_delete"]
    assert row.status == "sent"
    assert metric(life, "fwbot_slack_fallbacks_total", error="is_archived") >= before + 2  # thread, channel
    # The warning reached a person, so the deletion it announced happens.
    since_start(life, 67)
    assert sim_dep(life, "arch").state in ("DELETING", "DELETED")


def test_a_private_channel_without_the_bot_falls_back_and_a_message_nobody_takes_is_counted(life):
    life.deploy("priv", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    life.ws.set_channel(CHANNEL, private=True, bot_member=False)
    life.ws.deactivate_user("U_DEV")  # no DM either
    life.ws.set_channel(ALERTS, archived=True)  # and the alert channel refuses too
    since_start(life, 36)
    [row] = [r for r in life.store.warnings(deployment_id="priv") if r.timer == "auto_delete"]
    assert row.status == "stale" and "could not be posted anywhere" in (row.resolution or "")
    assert "not_in_channel" in row.resolution and "is_archived" in row.resolution
    assert metric(life, "fwbot_slack_undelivered_total", kind="warnings") >= 1
    # Nobody was told, so nothing is deleted on the strength of that warning.
    since_start(life, 67)
    assert sim_dep(life, "priv").state == "READY"


def test_a_transient_slack_failure_is_retried_not_dropped(life):
    life.deploy("flap", "--scale-to-zero-window 30s")
    life.ws.script("chat.postMessage", status=500, times=3)
    for _ in range(30):  # until the warning is due and its first post has failed
        life.tick(1)
        if life.store.effects.open("warnings"):
            break
    life.tick(1)
    life.tick(2)
    assert life.warnings_in("flap") == []  # three failures so far, each retried after its backoff
    life.tick(4)
    assert len(life.warnings_in("flap")) == 1
    assert metric(life, "fwbot_slack_retries_total", kind="warnings") == 3


# -- 6: one busy channel holds nobody else up ---------------------------------------------------------
def test_a_burst_of_deploys_in_one_channel_does_not_hold_up_replies_in_another(life):
    n = 8
    for i in range(n):
        life.stack.fw(f"deploy llama-v3p1-8b-instruct --deployment-id busy-{i} --accelerator-type h100")
    life.ws.wait_for(lambda: len(list(life.sdk().deployments.list())) == n, timeout=30)
    other = life.ws.add_channel("C0OTHER", "other").id
    life.stack.fw("list mine", channel=other)
    reply = life.ws.wait_for(lambda: [m for m in life.ws.messages(other) if m.ephemeral_to == "U_DEV"] or None,
                             timeout=10)
    assert reply
    # Tracking messages go out one per second in the busy channel: when the other channel's reply
    # arrived they were not all out yet, so nothing waited behind them.
    tracking = [m for m in life.ws.messages(CHANNEL) if not m.is_reply and m.is_bot and re.search(r"busy-\d", m.text)]
    assert len(tracking) < n
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(
            [m for m in life.ws.messages(CHANNEL) if not m.is_reply and m.is_bot and "busy-" in m.text]) < n:
        time.sleep(0.1)
    posted = [m for m in life.ws.messages(CHANNEL) if not m.is_reply and m.is_bot and "busy-" in m.text]
    assert len(posted) == n  # none lost, none twice
    gaps = [float(b.ts) - float(a.ts) for a, b in zip(posted, posted[1:], strict=False)]
    assert all(g >= 0.9 for g in gaps), gaps  # Slack's 1 message per second per channel, kept
    # Each post's ts is recorded in the transaction right after Slack answered it.
    life.ws.wait_for(lambda: all(life.store.deployment(f"busy-{i}").thread_ts for i in range(n)), timeout=5)


# -- one delete rule, from a warning too ------------------------------------------------------------
def test_a_non_owners_delete_now_on_a_warning_asks_an_approver_and_deletes_nothing(make_life):
    from tests.harness import APPROVALS
    from tests.services.test_lifecycle import warned

    life = make_life(env={"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_CHANNEL": APPROVALS})
    warning = warned(life, "asked")
    life.click(warning, "lc_delete", user="U_OTHER")
    [request] = life.ws.wait_for(lambda: life.store.approvals(status="pending") or None)
    assert request.kind == "delete" and request.deployment_id == "asked" and request.requester == "U_OTHER"
    assert sim_dep(life, "asked").state == "READY"
    life.ws.wait_for(lambda: [m for m in life.ws.messages(APPROVALS) if "asked" in message_text(m)] or None)
