"""Approvals end to end: signed HTTP into the bot, the Fireworks simulator over HTTP, a real SQLite file.

FWBOT_APPROVERS=U_APPROVER and a $20/h threshold (see conftest). H100s cost $8/GPU-hour, so a
deploy with max 2 replicas is $16/h (runs at once) and with max 8 replicas is $64/h (needs approval).
"""

from __future__ import annotations

import itertools
import json
import threading
import time

from bot.jobs import approvals as approval_jobs
from sims.slack import payloads
from tests.harness import APPROVALS, CHANNEL, message_text

MODEL = "llama-v3p1-8b-instruct"
CHEAP = f"deploy {MODEL} --max-replica-count 2 --accelerator-type h100"  # $16/h
PRICEY = f"deploy {MODEL} --max-replica-count 8 --accelerator-type h100"  # $64/h


# -- helpers -------------------------------------------------------------------------------------
def deployments(stack, show_deleted=False):
    return list(stack.sdk().deployments.list(show_deleted=show_deleted))


def buttons(message) -> dict[str, str]:
    """action_id → value of every button in a message."""
    out = {}
    for block in message.blocks or []:
        for el in block.get("elements") or []:
            if el.get("type") == "button":
                out[el["action_id"]] = el.get("value")
    return out


def request_messages(stack):
    return [m for m in stack.ws.messages(APPROVALS) if not m.ephemeral_to and not m.thread_ts]


def ask(stack, text=PRICEY, user="U_DEV"):
    """Make a request that needs approval; returns (request message, waiting ephemeral, token)."""
    before = len(request_messages(stack))
    r = stack.fw(text, user=user)
    assert r.status == 200
    msg = stack.ws.wait_for(lambda: request_messages(stack)[before:] or None, timeout=10)[0]
    waiting = stack.ws.wait_for(lambda: [m for m in stack.ephemerals(user)
                                         if "Waiting for approval" in message_text(m)
                                         and buttons(m).get("approval_cancel") == buttons(msg)["approval_approve"]]
                                or None)[-1]
    return msg, waiting, buttons(msg)["approval_approve"]


def current(stack, msg):
    return stack.ws.message(APPROVALS, msg.ts)


def record(stack, token):
    return stack.services.store.approval(token)


def wait_status(stack, token, status, finished=True):
    def ok():
        r = record(stack, token)
        return r if r.status == status and (not finished or status != "approved" or r.result) else None

    return stack.ws.wait_for(ok, timeout=15)


_clicks = itertools.count(1)


def signed_click(stack, user, channel, ts, action_id, value, block_id="approval"):
    """A block_actions request exactly as Slack signs it, with whatever value we like (forgeries).

    Each is a distinct click (its own action_ts), so the front door's replay guard lets it through.
    """
    ws = stack.ws
    where = next(c for c in ws.channels if c.id == channel)
    n = next(_clicks)
    payload = payloads.block_actions(
        team_id=ws.team_id, domain=ws.domain, user=ws.user(user), trigger_id=f"1.2.forged{n}",
        actions=[{"action_id": action_id, "block_id": block_id, "type": "button", "value": value,
                  "action_ts": f"1.{n:06d}"}],
        token=ws.verification_token, container={"type": "message", "message_ts": ts, "channel_id": channel,
                                                "is_ephemeral": False},
        channel=where, message=ws.message(channel, ts).to_slack(ws.team_id))
    body = payloads.interactive_body(payload)
    return ws.send_raw(body, ws.signed_headers(body))


def replay(stack, delivery):
    """Click the very same button again, freshly signed: the button must be one-shot even when the
    signature and the trigger are new. (A re-delivery of the same click, same trigger id, is
    dropped at the front door before it reaches any listener: tests/reliability/test_front_door.py.)"""
    payload = {**delivery.payload, "trigger_id": f"{delivery.payload.get('trigger_id', 't')}-again-{next(_clicks)}"}
    body = payloads.interactive_body(payload)
    return stack.ws.send_raw(body, stack.ws.signed_headers(body, timestamp=int(time.time()) - 100 - next(_clicks)))


def ephemeral_texts(stack, user, channel=APPROVALS):
    return [message_text(m) for m in stack.ephemerals(user, channel)]


def wait_told(stack, user, needle, channel=APPROVALS):
    return stack.ws.wait_for(lambda: [t for t in ephemeral_texts(stack, user, channel) if needle in t] or None,
                             timeout=10)[-1]


def dms(stack, user):
    return [message_text(m) for m in stack.ws.messages(stack.ws.dm_channel(user))]


def audit_rows(stack, dep_id):
    return stack.services.store.audit_trail(dep_id, limit=100)


# -- policy: below and above the threshold --------------------------------------------------------
def test_below_threshold_runs_at_once(stack):
    stack.fw(CHEAP)
    deps = stack.ws.wait_for(lambda: deployments(stack) or None)
    assert len(deps) == 1 and deps[0].max_replica_count == 2
    assert request_messages(stack) == []
    assert stack.services.store.approvals() == []


def test_above_threshold_posts_the_full_request_and_waits(stack):
    msg, waiting, token = ask(stack)
    text = message_text(msg)
    assert "<@U_DEV>" in text and "$64.00/h" in text and "$1,536.00/day" in text
    assert "*Replicas:* 0–8" in text and "Deployment id:* " + record(stack, token).deployment_id in text
    assert "H100" in text and MODEL in text and "<@U_APPROVER>" in text
    assert buttons(msg) == {"approval_approve": token, "approval_reject": token}
    assert len(token) >= 20  # opaque, unguessable
    assert "$64.00/h" in message_text(waiting)
    assert deployments(stack) == []
    r = record(stack, token)
    assert (r.status, r.requester, r.kind, r.usd_per_hour) == ("pending", "U_DEV", "deploy", 64.0)
    # everything needed to run it after a restart is stored, including the chosen deployment id
    assert r.request["spec"]["deployment_id"] == r.deployment_id and r.deployment_id
    assert [a["action"] for a in audit_rows(stack, r.deployment_id)] == ["approval request"]


# -- trust ---------------------------------------------------------------------------------------
def test_requester_cannot_approve_and_non_approver_is_refused(stack):
    msg, _, token = ask(stack)
    stack.ws.click("U_DEV", APPROVALS, msg.ts, "approval_approve")
    assert "someone else must approve" in wait_told(stack, "U_DEV", "Not allowed")
    stack.ws.click("U_OTHER", APPROVALS, msg.ts, "approval_approve")
    assert "only approvers" in wait_told(stack, "U_OTHER", "Not allowed")
    stack.ws.click("U_OTHER", APPROVALS, msg.ts, "approval_reject")
    wait_told(stack, "U_OTHER", "only approvers")
    assert stack.ws.views_for("U_OTHER") == []
    assert record(stack, token).status == "pending"
    assert deployments(stack) == []
    assert buttons(current(stack, msg))  # still decidable by a real approver
    refused = [a for a in audit_rows(stack, record(stack, token).deployment_id) if a["result"] == "refused"]
    assert {a["actor"] for a in refused} == {"U_DEV", "U_OTHER"}


def test_an_approver_never_approves_their_own_request(make_stack):
    stack = make_stack(env={"FWBOT_APPROVERS": "U_DEV,U_APPROVER"})
    msg, _, token = ask(stack)
    stack.ws.click("U_DEV", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_DEV", "someone else must approve")
    assert record(stack, token).status == "pending" and deployments(stack) == []


def test_approve_runs_once_and_every_later_click_is_told_who_decided(stack):
    msg, _, token = ask(stack)
    first = stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    assert first.status == 200
    r = wait_status(stack, token, "approved")
    assert r.result["ok"], r.result
    deps = deployments(stack)
    assert len(deps) == 1 and deps[0].name.endswith("/" + r.deployment_id) and deps[0].max_replica_count == 8
    assert stack.services.store.deployment(r.deployment_id).owner == "U_DEV"  # the requester owns it

    # the original message: decided, who and when, buttons removed
    decided = stack.ws.wait_for(lambda: (m := current(stack, msg)) and "Ran:" in message_text(m) and m)
    assert buttons(decided) == {}
    assert "Approved by <@U_APPROVER>" in message_text(decided) and "2026-11-02" in message_text(decided)
    # the requester is told the outcome
    assert any("<@U_APPROVER> approved your request" in t for t in stack.ws.wait_for(lambda: dms(stack, "U_DEV")))

    # a double click (the same request again) and a click after the fact change nothing
    replay(stack, first)
    text = wait_told(stack, "U_APPROVER", "Already approved")
    assert "<@U_APPROVER>" in text and "2026-11-02" in text
    signed_click(stack, "U_APPROVER", APPROVALS, msg.ts, "approval_reject", token)
    assert len(stack.ws.wait_for(lambda: [t for t in ephemeral_texts(stack, "U_APPROVER")
                                          if "Already approved" in t][1:] or None)) == 1
    assert len(deployments(stack)) == 1

    # `/fw audit <id>` answers "who approved this?"
    stack.fw(f"audit {r.deployment_id}", user="U_OTHER")
    audit = stack.wait_ephemeral("Audit trail", user="U_OTHER")
    assert "<@U_DEV>" in audit and "approval request" in audit
    assert "<@U_APPROVER>" in audit and "approve" in audit and "approved run" in audit
    rows = audit_rows(stack, r.deployment_id)
    deploy_row = next(a for a in rows if a["action"] == "deploy")
    assert deploy_row["actor"] == "U_DEV" and json.loads(deploy_row["request"])["approved_by"] == "U_APPROVER"
    assert [a["action"] for a in rows].count("approved run") == 1


def test_two_concurrent_clicks_create_exactly_one_deployment(stack):
    msg, _, token = ask(stack)
    barrier = threading.Barrier(2)
    results = []

    def click():
        barrier.wait()
        results.append(stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve"))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [d.status for d in results] == [200, 200]
    wait_status(stack, token, "approved")
    wait_told(stack, "U_APPROVER", "Already approved")
    assert len(deployments(stack)) == 1
    assert [a["action"] for a in audit_rows(stack, record(stack, token).deployment_id)].count("approve") == 1


def test_a_burst_of_identical_signed_clicks_runs_the_operation_once(stack):
    msg, _, token = ask(stack)
    barrier = threading.Barrier(6)

    def click():
        barrier.wait()
        signed_click(stack, "U_APPROVER", APPROVALS, msg.ts, "approval_approve", token)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_status(stack, token, "approved")
    stack.ws.wait_for(lambda: len([t for t in ephemeral_texts(stack, "U_APPROVER") if "Already approved" in t]) == 5)
    assert len(deployments(stack)) == 1
    rows = audit_rows(stack, record(stack, token).deployment_id)
    assert [a["action"] for a in rows].count("deploy") == 1


def test_forged_and_foreign_tokens_are_refused(stack):
    msg_a, _, token_a = ask(stack)
    msg_b, _, token_b = ask(stack, f"deploy {MODEL} --max-replica-count 4 --accelerator-type h100")
    # a token that does not exist
    signed_click(stack, "U_APPROVER", APPROVALS, msg_a.ts, "approval_approve", "not-a-real-token-at-all")
    wait_told(stack, "U_APPROVER", "does not belong to any request")
    # B's token clicked on A's message
    signed_click(stack, "U_APPROVER", APPROVALS, msg_a.ts, "approval_approve", token_b)
    wait_told(stack, "U_APPROVER", "does not belong to the request in this message")
    assert record(stack, token_a).status == record(stack, token_b).status == "pending"
    assert deployments(stack) == []
    # the requester cannot cancel someone else's request either
    signed_click(stack, "U_OTHER", APPROVALS, msg_a.ts, "approval_cancel", token_a)
    wait_told(stack, "U_OTHER", "only the person who asked")
    assert record(stack, token_a).status == "pending"


# -- time and restarts -----------------------------------------------------------------------------
def restart(make_stack, old, clock, env=None):
    old.bot.stop()
    clock.advance(1)
    return make_stack(env=env, sim=old.sim, ws=old.ws, db_path=old.db_path)


def test_a_click_after_a_restart_works_and_is_still_one_shot(make_stack, clock):
    first = make_stack()
    msg, _, token = ask(first)
    second = restart(make_stack, first, clock)

    second.ws.click("U_DEV", APPROVALS, msg.ts, "approval_approve")
    wait_told(second, "U_DEV", "someone else must approve")
    barrier = threading.Barrier(2)

    def click():
        barrier.wait()
        second.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r = wait_status(second, token, "approved")
    assert r.result["ok"] and r.decided_by == "U_APPROVER"
    assert len(deployments(second)) == 1
    assert buttons(second.ws.wait_for(lambda: (m := current(second, msg)) and not buttons(m) and m)) == {}


def test_a_restart_between_approval_and_run_finishes_the_run_exactly_once(make_stack, clock):
    first = make_stack()
    msg, _, token = ask(first)
    # The click's compare-and-set committed, then the process died before running the operation.
    assert first.services.store.decide_approval(token, status="approved", by="U_APPROVER", now=clock.now())
    second = restart(make_stack, first, clock)
    job = approval_jobs.jobs(second.services, second.bot.metrics)[0]
    runs = [threading.Thread(target=job.run) for _ in range(3)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    job.run()
    r = record(second, token)
    assert r.result and r.result["ok"], r.result
    assert len(deployments(second)) == 1
    assert second.services.store.deployment(r.deployment_id).owner == "U_DEV"
    assert [a["action"] for a in audit_rows(second, r.deployment_id)].count("approved run") == 1
    assert "Ran:" in message_text(current(second, msg)) and buttons(current(second, msg)) == {}
    assert any("approved your request" in t for t in dms(second, "U_DEV"))


def test_one_reminder_then_expiry_with_both_people_told(make_stack, clock):
    stack = make_stack(env={"FWBOT_APPROVAL_EXPIRY": "4h"})
    msg, _, token = ask(stack)
    sweep = approval_jobs.jobs(stack.services, stack.bot.metrics)[0].run
    clock.advance(hours=1)
    sweep()
    assert stack.ws.thread(APPROVALS, msg.ts)[1:] == []
    clock.advance(hours=1, seconds=1)
    sweep()
    sweep()
    replies = stack.ws.thread(APPROVALS, msg.ts)[1:]
    assert len(replies) == 1 and "still waiting" in message_text(replies[0])
    assert "<@U_APPROVER>" in message_text(replies[0])

    # a click after the deadline but before the sweep noticed is told, and does nothing
    clock.advance(hours=2)
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_APPROVER", "expired")
    sweep()
    sweep()
    assert record(stack, token).status == "expired"
    replies = stack.ws.thread(APPROVALS, msg.ts)[1:]
    assert len(replies) == 2 and "expired" in message_text(replies[1]) and "<@U_APPROVER>" in message_text(replies[1])
    assert buttons(current(stack, msg)) == {} and "Expired" in message_text(current(stack, msg))
    told = [t for t in dms(stack, "U_DEV") if "expired" in t]
    assert len(told) == 1
    assert deployments(stack) == []
    assert "approval expire" in [a["action"] for a in audit_rows(stack, record(stack, token).deployment_id)]


def test_default_expiry_is_a_day(stack, clock):
    _, _, token = ask(stack)
    r = record(stack, token)
    assert (r.expires_at - r.created_at).total_seconds() == 24 * 3600


# -- reject, cancel ----------------------------------------------------------------------------------
def test_reject_asks_for_a_reason_and_tells_the_requester(stack):
    msg, _, token = ask(stack)
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_reject")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_APPROVER") or [None])[-1])
    assert record(stack, token).status == "pending"  # opening the form decides nothing
    r = stack.ws.submit_view("U_APPROVER", view.id, values={"reason": {"v": "8 replicas is more than we need"}})
    assert r.status == 200
    rejected = wait_status(stack, token, "rejected")
    assert rejected.decided_by == "U_APPROVER" and rejected.reason == "8 replicas is more than we need"
    text = message_text(stack.ws.wait_for(lambda: (m := current(stack, msg)) and not buttons(m) and m))
    assert "Rejected by <@U_APPROVER>" in text and "more than we need" in text
    told = stack.ws.wait_for(lambda: [t for t in dms(stack, "U_DEV") if "rejected your request" in t] or None)
    assert "more than we need" in told[0]
    signed_click(stack, "U_APPROVER", APPROVALS, msg.ts, "approval_approve", token)
    assert "<@U_APPROVER>" in wait_told(stack, "U_APPROVER", "Already rejected")
    assert deployments(stack) == []


def test_reject_modal_after_the_request_was_approved_says_who_decided(make_stack):
    stack = make_stack(env={"FWBOT_APPROVERS": "U_APPROVER,U_ADMIN"})
    msg, _, token = ask(stack)
    stack.ws.click("U_ADMIN", APPROVALS, msg.ts, "approval_reject")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_ADMIN") or [None])[-1])
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    wait_status(stack, token, "approved")
    r = stack.ws.submit_view("U_ADMIN", view.id, values={"reason": {"v": "too big"}})
    assert r.json["response_action"] == "errors" and "Already approved" in r.json["errors"]["reason"]
    assert record(stack, token).status == "approved" and len(deployments(stack)) == 1


def test_requester_can_cancel_while_waiting(stack):
    msg, waiting, token = ask(stack)
    stack.ws.click("U_DEV", CHANNEL, waiting.ts, "approval_cancel")
    cancelled = wait_status(stack, token, "cancelled")
    assert cancelled.decided_by == "U_DEV"
    assert "Cancelled by <@U_DEV>" in message_text(
        stack.ws.wait_for(lambda: (m := current(stack, msg)) and not buttons(m) and m))
    signed_click(stack, "U_APPROVER", APPROVALS, msg.ts, "approval_approve", token)
    wait_told(stack, "U_APPROVER", "Already cancelled")
    assert deployments(stack) == []


# -- user groups -----------------------------------------------------------------------------------
def test_usergroup_approvers(make_stack):
    stack = make_stack(env={"FWBOT_APPROVERS": "S0PLATFORM"})
    stack.ws.add_usergroup("S0PLATFORM", "platform", users=["U_APPROVER", "U_DEV"])
    msg, _, token = ask(stack)
    assert "<!subteam^S0PLATFORM>" in message_text(msg)
    stack.ws.click("U_OTHER", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_OTHER", "only approvers")
    stack.ws.click("U_DEV", APPROVALS, msg.ts, "approval_approve")  # in the group, but asked for it
    wait_told(stack, "U_DEV", "someone else must approve")
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    assert wait_status(stack, token, "approved").result["ok"]
    assert len(deployments(stack)) == 1
    assert stack.ws.calls_to("usergroups.users.list")


# -- updates and deletes -----------------------------------------------------------------------------
def test_raising_a_deployment_above_the_threshold_needs_approval(stack, clock):
    stack.fw(f"{CHEAP} --deployment-id web-1")
    stack.ws.wait_for(lambda: deployments(stack) or None)
    msg, _, token = ask(stack, "update web-1 --max-replica-count 8")
    text = message_text(msg)
    assert "$16.00/h → $64.00/h" in text and "2 → 8" in text
    assert stack.sdk().deployments.get("web-1").max_replica_count == 2
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    assert wait_status(stack, token, "approved").result["ok"]
    assert stack.sdk().deployments.get("web-1").max_replica_count == 8
    row = next(a for a in audit_rows(stack, "web-1") if a["action"] == "update")
    assert row["actor"] == "U_DEV" and json.loads(row["request"])["approved_by"] == "U_APPROVER"


def test_an_update_is_revalidated_before_it_runs(stack):
    stack.fw(f"{CHEAP} --deployment-id web-2")
    stack.ws.wait_for(lambda: deployments(stack) or None)
    msg, _, token = ask(stack, "update web-2 --max-replica-count 8")
    stack.sdk().deployments.delete("web-2", hard=True, ignore_checks=True)
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    r = wait_status(stack, token, "approved")
    assert not r.result["ok"] and "no longer exists" in r.result["text"]
    # The message first says it is running, then how it ended.
    final = stack.ws.wait_for(lambda: (m := current(stack, msg)) and "Did not run" in message_text(m) and m)
    assert not buttons(final)


def test_deleting_someone_elses_deployment_needs_approval(stack):
    stack.fw(f"{CHEAP} --deployment-id owned-1")
    stack.ws.wait_for(lambda: deployments(stack) or None)
    msg, _, token = ask(stack, "delete owned-1", user="U_OTHER")
    assert "someone else's deployment" in message_text(msg) and "<@U_DEV>" in message_text(msg)
    assert stack.sdk().deployments.get("owned-1").state != "DELETED"
    stack.ws.click("U_OTHER", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_OTHER", "someone else must approve")
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    assert wait_status(stack, token, "approved").result["ok"]
    assert stack.sdk().deployments.get("owned-1").state in ("DELETED", "DELETING")
    row = next(a for a in audit_rows(stack, "owned-1") if a["action"] == "delete")
    assert row["actor"] == "U_OTHER" and json.loads(row["request"])["approved_by"] == "U_APPROVER"
    assert stack.services.store.deployment("owned-1").owner == "U_DEV"


def test_help_names_approvers_and_channel(stack):
    body = json.dumps(stack.fw("help").json)
    assert "<@U_APPROVER>" in body and f"<#{APPROVALS}>" in body and "$20.00/h" in body and "24h" in body


def test_no_approvers_means_approvals_off(make_stack):
    stack = make_stack(env={"FWBOT_APPROVERS": ""})
    assert "Approvals are off" in json.dumps(stack.fw("help").json)
    stack.fw(PRICEY)
    assert len(stack.ws.wait_for(lambda: deployments(stack) or None)) == 1
    assert request_messages(stack) == []


def test_the_deploy_form_goes_through_the_same_gate(stack):
    view, picked = stack.open_deploy_form(MODEL)
    r = stack.ws.submit_view("U_DEV", view.id, values={
        **picked, "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "8"}, "deployment_id": {"v": "from-form"}})
    assert r.status == 200, r.json
    msg = stack.ws.wait_for(lambda: request_messages(stack) or None)[0]
    assert "from-form" in message_text(msg) and "$64.00/h" in message_text(msg)
    stack.wait_ephemeral("Waiting for approval")
    assert deployments(stack) == []
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    stack.ws.wait_for(lambda: [d for d in deployments(stack) if d.name.endswith("/from-form")] or None)


def test_without_an_approval_channel_the_request_is_posted_where_it_was_asked(make_stack):
    stack = make_stack(env={"FWBOT_APPROVAL_CHANNEL": ""})
    stack.fw(PRICEY)
    msg = stack.ws.wait_for(lambda: [m for m in stack.ws.messages(CHANNEL) if not m.ephemeral_to
                                     and "approval_approve" in buttons(m)] or None)[0]
    stack.ws.click("U_APPROVER", CHANNEL, msg.ts, "approval_approve")
    token = buttons(msg)["approval_approve"]
    assert wait_status(stack, token, "approved").result["ok"]
    assert len(deployments(stack)) == 1


def test_a_request_that_cannot_be_posted_is_not_left_pending(stack):
    stack.ws.script("chat.postMessage", error="not_in_channel")
    stack.fw(PRICEY)
    text = stack.wait_ephemeral("could not post the approval request")
    assert f"<#{APPROVALS}>" in text and "not_in_channel" in text
    assert [r.status for r in stack.services.store.approvals()] == ["cancelled"]
    assert deployments(stack) == []


def test_the_sweep_is_one_of_the_schedulers_jobs(stack):
    from bot.jobs.scheduler import all_jobs

    jobs = {j.name: j for j in all_jobs(stack.services, stack.bot.metrics)}
    assert "approvals" in jobs and jobs["approvals"].run_at_start  # a restart finishes cut-short runs at once
