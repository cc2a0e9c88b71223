"""Approvals that cannot dead-end, messages that do not go stale, one delete rule, a reviewable audit.

End to end as in test_approvals_e2e: signed HTTP into the bot, the Fireworks simulator over HTTP,
a real SQLite file, the FakeClock of conftest. FWBOT_APPROVERS=U_APPROVER, FWBOT_ADMINS=U_ADMIN
and a $20/h threshold unless a test says otherwise.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.approvals import deciders_for
from bot.core.clock import FakeClock
from bot.jobs import approvals as approval_jobs
from bot.jobs import costs as cost_jobs
from tests.e2e.approvals.test_approvals import (
    CHEAP,
    PRICEY,
    ask,
    audit_rows,
    buttons,
    current,
    deployments,
    dms,
    record,
    request_messages,
    restart,
    wait_status,
    wait_told,
)
from tests.harness import APPROVALS, CHANNEL, message_text

T0 = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)  # a Wednesday
DIGEST_SLOT = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)  # Monday 09:00, the default cost-summary slot


@pytest.fixture
def clock():
    return FakeClock(T0)


def deploy(stack, dep_id, text=CHEAP, user="U_DEV"):
    stack.fw(f"{text} --deployment-id {dep_id}", user=user)
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(dep_id)) is not None and r.thread_ts
                      and r.state is not None)


def tracking_with_delete(stack, dep_id):
    """The deployment's tracking message once it shows its Delete button (after the create)."""
    record = stack.services.store.deployment(dep_id)
    return stack.ws.wait_for(lambda: (m := stack.ws.message(record.channel, record.thread_ts))
                             and "dep_delete" in json.dumps(m.blocks or []) and m)


def dm_texts(stack, user, needle):
    return [t for t in dms(stack, user) if needle in t]


def all_buttons(message) -> list[dict]:
    return [e for b in message.blocks or [] for e in b.get("elements") or [] if e.get("type") == "button"]


# -- who may decide (pure) ----------------------------------------------------------------------------
def test_deciders_fall_back_to_admins_only_when_no_other_approver_exists():
    normal = deciders_for("U_DEV", configured=["U_A"], groups={}, admins=["U_ADMIN"])
    assert (normal.users, normal.admins, normal.shown) == ({"U_A"}, False, ("U_A",))
    alone = deciders_for("U_A", configured=["U_A"], groups={}, admins=["U_ADMIN", "U_A"])
    assert (alone.users, alone.admins, alone.shown, alone.nobody) == ({"U_ADMIN"}, True, ("U_ADMIN",), False)
    group = deciders_for("U_A", configured=["S_G"], groups={"S_G": ["U_A"]}, admins=["U_ADMIN"])
    assert group.users == {"U_ADMIN"} and group.admins  # a group of one, the requester: admins stand in
    assert deciders_for("U_A", configured=["U_A"], groups={}, admins=["U_A"]).nobody
    unread = deciders_for("U_A", configured=["S_G"], groups={}, admins=[], unread={"S_G"})
    assert not unread.nobody and unread.unknown == ("S_G",)  # members unknown is not "nobody"


# -- 2. no dead ends -----------------------------------------------------------------------------------
def test_a_sole_approvers_own_request_goes_to_the_admins(stack):
    msg, waiting, token = ask(stack, user="U_APPROVER")
    assert "Who can decide: <@U_ADMIN>" in message_text(msg) and "admins stand in" in message_text(msg)
    assert "who can approve it: <@U_ADMIN>" in message_text(waiting)
    r = record(stack, token)
    assert r.request["deciders"] == ["U_ADMIN"] and r.request["admin_fallback"] is True
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_APPROVER", "someone else must approve")
    stack.ws.click("U_OTHER", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_OTHER", "only approvers")
    stack.ws.click("U_ADMIN", APPROVALS, msg.ts, "approval_approve")
    done = wait_status(stack, token, "approved")
    assert done.result["ok"] and done.decided_by == "U_ADMIN"
    assert stack.services.store.deployment(done.deployment_id).owner == "U_APPROVER"


def test_admins_do_not_decide_while_an_approver_can(stack):
    msg, waiting, token = ask(stack)
    assert "who can approve it: <@U_APPROVER>" in message_text(waiting) and "<@U_ADMIN>" not in message_text(msg)
    stack.ws.click("U_ADMIN", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_ADMIN", "only approvers")
    assert record(stack, token).status == "pending" and deployments(stack) == []


def test_when_nobody_else_can_approve_the_requester_is_told_at_once(make_stack):
    stack = make_stack(env={"FWBOT_ADMINS": "U_APPROVER"})  # the sole approver is the sole admin
    stack.fw(PRICEY, user="U_APPROVER")
    text = stack.wait_ephemeral("nobody but you can approve this", user="U_APPROVER")
    assert "What you can do" in text and "$20.00/h" in text and "nothing was requested" in text
    assert stack.services.store.approvals() == []  # nothing left pending for 24 h
    assert request_messages(stack) == [] and deployments(stack) == []
    rows = stack.services.store.audit_trail(limit=10)
    assert [(r["actor"], r["action"], r["result"]) for r in rows] == [("U_APPROVER", "approval request", "refused")]


def test_a_foreign_delete_nobody_else_can_approve_says_ask_the_owner(make_stack):
    stack = make_stack(env={"FWBOT_APPROVERS": "U_OTHER", "FWBOT_ADMINS": ""})
    deploy(stack, "nobody-1")
    stack.fw("delete nobody-1", user="U_OTHER")
    text = stack.wait_ephemeral("nobody but you can approve this", user="U_OTHER")
    assert "ask its owner <@U_DEV>" in text and "/fw owner nobody-1" in text
    assert stack.services.store.approvals() == [] and dm_texts(stack, "U_DEV", "asked to delete") == []
    assert stack.sdk().deployments.get("nobody-1").state not in ("DELETED", "DELETING")


def test_a_request_nobody_can_decide_any_more_is_closed_by_the_sweep(make_stack, clock):
    first = make_stack()
    msg, _, token = ask(first)
    # fwbot restarts with U_DEV, the requester, as the only approver and the only admin.
    second = restart(make_stack, first, clock, env={"FWBOT_APPROVERS": "U_DEV", "FWBOT_ADMINS": "U_DEV"})
    approval_jobs.jobs(second.services, second.bot.metrics)[0].run()
    closed = record(second, token)
    assert (closed.status, closed.decided_by) == ("cancelled", "fwbot")
    told = second.ws.wait_for(lambda: dm_texts(second, "U_DEV", "was cancelled") or None)
    assert "nobody but the requester can approve it" in told[0]
    assert "Cancelled by fwbot" in message_text(current(second, msg)) and not buttons(current(second, msg))
    approval_jobs.jobs(second.services, second.bot.metrics)[0].run()
    assert len(dm_texts(second, "U_DEV", "was cancelled")) == 1


def test_the_owner_is_told_when_someone_else_asks_to_delete_their_deployment(stack):
    deploy(stack, "owned-2")
    msg, waiting, token = ask(stack, "delete owned-2", user="U_OTHER")
    assert "who can approve it: <@U_APPROVER>" in message_text(waiting)
    notice = stack.ws.wait_for(lambda: dm_texts(stack, "U_DEV", "asked to delete your deployment") or None)
    assert len(notice) == 1
    assert "<@U_OTHER>" in notice[0] and "`owned-2`" in notice[0] and "soft delete" in notice[0]
    assert "waiting for approval" in notice[0] and "<@U_APPROVER>" in notice[0] and f"<#{APPROVALS}>" in notice[0]
    assert "Nothing has been deleted" in notice[0]
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_reject")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_APPROVER") or [None])[-1])
    stack.ws.submit_view("U_APPROVER", view.id, values={"reason": {"v": "Dana still needs it"}})
    wait_status(stack, token, "rejected")
    outcome = stack.ws.wait_for(lambda: [t for t in dm_texts(stack, "U_DEV", "asked to delete your deployment")
                                         if "Rejected by <@U_APPROVER>" in t] or None)
    assert "Dana still needs it" in outcome[0]
    assert stack.sdk().deployments.get("owned-2").state not in ("DELETED", "DELETING")


# -- 3. no stale or doubled UI ---------------------------------------------------------------------------
def test_the_waiting_message_is_replaced_by_the_outcome(stack):
    msg, waiting, token = ask(stack)
    assert buttons(waiting) == {"approval_cancel": token}
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    wait_status(stack, token, "approved")
    settled = stack.ws.wait_for(lambda: (m := stack.ws.message(CHANNEL, waiting.ts)) and "Ran:" in message_text(m)
                                and m)
    assert buttons(settled) == {}  # no Cancel on a decided request
    assert "Approved by <@U_APPROVER>" in message_text(settled) and "Waiting for approval" not in message_text(settled)


def test_a_stale_cancel_is_answered_with_what_happened(stack, monkeypatch):
    msg, waiting, token = ask(stack)
    # Slack keeps a response_url for 30 minutes; the decision comes later, so the URL is dead.
    dead = record(stack, token).request["response_url"].rsplit("/", 1)[-1]
    real = stack.ws.handle_response_url
    monkeypatch.setattr(stack.ws, "handle_response_url",
                        lambda hook, body: (404, "expired_url") if hook == dead else real(hook, body))
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    wait_status(stack, token, "approved")
    assert buttons(stack.ws.message(CHANNEL, waiting.ts)) == {"approval_cancel": token}  # stale, as in Slack
    assert stack.ws.wait_for(lambda: dm_texts(stack, "U_DEV", "approved your request") or None)
    stack.ws.click("U_DEV", CHANNEL, waiting.ts, "approval_cancel")
    answered = stack.ws.wait_for(lambda: (m := stack.ws.message(CHANNEL, waiting.ts))
                                 and "changed nothing" in message_text(m) and m)
    text = message_text(answered)
    assert "Already approved by <@U_APPROVER>" in text and "Ran:" in text and buttons(answered) == {}
    assert record(stack, token).status == "approved" and len(deployments(stack)) == 1


def test_delete_asks_once(stack):
    deploy(stack, "once-1")
    stack.fw("delete once-1")
    question = stack.ws.wait_for(lambda: [m for m in stack.ephemerals("U_DEV")
                                          if "confirm_delete" in json.dumps(m.blocks or [])] or None)
    assert len(question) == 1
    delete = next(b for b in all_buttons(question[0]) if b["action_id"] == "confirm_delete")
    assert "confirm" not in delete  # the message is the question: no "Are you sure?" dialog on top
    stack.ws.click("U_DEV", CHANNEL, question[0].ts, "confirm_delete")
    assert "Deleted `once-1`" in stack.wait_ephemeral("Deleted")
    assert stack.sdk().deployments.get("once-1").state in ("DELETED", "DELETING")


# -- 10. one delete rule --------------------------------------------------------------------------------
def test_every_delete_entry_point_follows_one_rule(make_stack, clock):
    stack = make_stack(sim_config={"create_seconds": 0.0})  # READY at once: a week of idle replica time
    deploy(stack, "idle-z", f"{CHEAP} --min-replica-count 1")
    stack.sync()
    clock.set(DIGEST_SLOT)
    stack.sync()
    cost_jobs.post_summaries(stack.services)
    dm = stack.ws.dm_channel("U_DEV")
    digest = stack.ws.wait_for(lambda: next((m for m in stack.ws.messages(dm) if m.is_bot and not m.is_reply
                                             and "cost_delete" in json.dumps(m.blocks or [])), None))
    tracking = tracking_with_delete(stack, "idle-z")

    # Someone else: the tracking message's Delete asks an approver, like `/fw delete` does ...
    stack.ws.click("U_OTHER", CHANNEL, tracking.ts, "dep_delete")
    stack.wait_ephemeral("Waiting for approval", user="U_OTHER")
    [req] = stack.services.store.approvals()
    assert (req.kind, req.requester, req.deployment_id, req.status) == ("delete", "U_OTHER", "idle-z", "pending")
    # ... and so does the digest's Delete (the same request: it was asked for already) ...
    stack.ws.click("U_OTHER", dm, digest.ts, "cost_delete", value="idle-z")
    stack.ws.wait_for(lambda: [m for m in stack.ws.messages(dm) if m.ephemeral_to == "U_OTHER"
                               and "You asked for this already" in message_text(m)] or None)
    stack.fw("delete idle-z", user="U_OTHER")
    assert "You asked for this already" in stack.wait_ephemeral("already", user="U_OTHER")
    assert len(stack.services.store.approvals()) == 1 and len(request_messages(stack)) == 1
    assert stack.sdk().deployments.get("idle-z").state not in ("DELETED", "DELETING")

    # The owner: the digest's Delete (Slack's one confirmation) deletes it.
    stack.ws.click("U_DEV", dm, digest.ts, "cost_delete", value="idle-z")
    stack.ws.wait_for(lambda: [m for m in stack.ws.messages(dm) if m.ephemeral_to == "U_DEV"
                               and "deleted `idle-z` from the cost digest" in message_text(m)] or None)
    assert stack.sdk().deployments.get("idle-z").state in ("DELETED", "DELETING")


def test_with_approvals_off_a_foreign_delete_is_refused_everywhere(make_stack):
    stack = make_stack(env={"FWBOT_APPROVERS": ""})
    deploy(stack, "off-1")
    tracking = tracking_with_delete(stack, "off-1")
    stack.ws.click("U_OTHER", CHANNEL, tracking.ts, "dep_delete")
    assert "<@U_DEV>" in stack.wait_ephemeral("owned by", user="U_OTHER")
    stack.fw("delete off-1", user="U_OTHER")
    stack.ws.wait_for(lambda: len([m for m in stack.ephemerals("U_OTHER") if "owned by" in message_text(m)]) == 2)
    assert stack.services.store.approvals() == []
    assert stack.sdk().deployments.get("off-1").state not in ("DELETED", "DELETING")


# -- 4. a reviewable audit ------------------------------------------------------------------------------
def sections(payload_blocks) -> list[str]:
    return [b["text"]["text"] for b in payload_blocks if b.get("type") == "section" and b.get("text")]


def test_the_audit_says_who_when_what_and_why(stack):
    deploy(stack, "web-a")  # min 0, max 2 replicas: $16/h
    stack.fw("update web-a --min-replica-count 1")
    stack.wait_ephemeral("updated")
    msg, _, token = ask(stack, "update web-a --max-replica-count 8")
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    wait_status(stack, token, "approved")
    stack.fw("audit web-a", user="U_OTHER")
    text = stack.wait_ephemeral("Audit trail of web-a", user="U_OTHER")
    assert "Min replicas 0 → 1" in text  # what changed, not just "update → ok"
    assert "Max replicas 2 → 8 · approved by <@U_APPROVER> (needed because its worst case, $64.00/h" in text
    assert "<!date^" in text and "your Slack timezone" in text  # when, in the reader's zone
    assert "UTC" in text  # the fallback names its zone
    assert re.findall(r"(?<!<@)U_(DEV|APPROVER)", text) == []  # people by name, never raw ids
    assert "<@U_APPROVER> *approve* <@U_DEV>'s request to *update `web-a`* (needed because" in text
    stack.fw("audit", user="U_OTHER")
    everything = stack.wait_ephemeral("Audit trail, all deployments", user="U_OTHER")
    assert "`web-a`: Min replicas 0 → 1" in everything


def test_a_long_trail_is_trimmed_within_block_kit_limits_with_a_note(stack, clock):
    deploy(stack, "busy-1")
    store = stack.services.store
    for i in range(60):
        store.audit(actor="U_DEV", action="scale", result="ok", now=clock.now(), deployment_id="busy-1",
                    channel=CHANNEL, request={"replicas": i % 3}, detail="x" * 2000)
    stack.fw("audit busy-1", user="U_OTHER")
    reply = stack.ws.wait_for(lambda: next((m for m in reversed(stack.ephemerals("U_OTHER"))
                                            if "Audit trail of busy-1" in message_text(m)), None))
    assert len(reply.blocks) <= 50
    assert all(len(s) <= 3000 for s in sections(reply.blocks))
    assert len([line for s in sections(reply.blocks) for line in s.split("\n") if line.startswith("•")]) == 25
    older = len(store.audit_trail("busy-1", limit=1000)) - 25
    assert f"{older} older entries are not shown" in message_text(reply)


def test_help_tells_what_delete_and_audit_do(stack):
    delete = json.dumps(stack.fw("help delete").json)
    assert "confirms once" in delete and "approval request" in delete and "owner is told by DM" in delete
    audit = json.dumps(stack.fw("help audit").json)
    assert "Slack timezone" in audit and "Min replicas 1 \\u2192 2" in audit and "why" in audit


def test_refused_clicks_and_approval_rows_keep_their_story(stack):
    msg, _, token = ask(stack)
    stack.ws.click("U_OTHER", APPROVALS, msg.ts, "approval_approve")
    wait_told(stack, "U_OTHER", "only approvers")
    dep = record(stack, token).deployment_id
    stack.fw(f"audit {dep}", user="U_OTHER")
    text = stack.wait_ephemeral(f"Audit trail of {dep}", user="U_OTHER")
    assert "<@U_OTHER> *approval click* on <@U_DEV>'s request to *deploy" in text and "refused" in text
    assert "only approvers" in text and "→ waiting for an approver" in text
    assert [a["action"] for a in audit_rows(stack, dep)] == ["approval click", "approval request"]
    clock_now = stack.services.clock.now()
    assert record(stack, token).expires_at - clock_now == timedelta(hours=24)
