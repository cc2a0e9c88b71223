"""Deletes send ``ignoreChecks`` only when asked; a deployment in use is refused by Fireworks and
the person is told so, with a *Delete anyway* that follows the one delete rule.

End to end: signed `/fw` commands and button clicks into the bot, the Fireworks simulator over HTTP
(it refuses to delete a deployment that served traffic in the last minute unless ignoreChecks=true),
a real SQLite file, approvals on (FWBOT_APPROVERS=U_APPROVER, admins U_ADMIN).
"""

from __future__ import annotations

import json
import time

import pytest

from bot.core.clock import FakeClock
from sims.slack import payloads
from tests.harness import APPROVALS, CHANNEL, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
ENV = {"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20",
       "FWBOT_APPROVAL_CHANNEL": APPROVALS}
IN_USE = "it is in use (serving traffic)"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 60.0}, env=ENV)
    yield s
    s.stop()


def busy(stack, clock, dep_id, *, traffic=True):
    """A READY deployment of U_DEV's with a replica kept warm, that served a request just now."""
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --accelerator-type h100 --min-replica-count 1 "
             "--max-replica-count 2")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(dep_id)) is not None and r.thread_ts
                      and r.state is not None)
    clock.advance(61)
    stack.sync()
    if traffic:
        stack.services.gateway.complete(dep_id, "hello")


def state(stack, dep_id):
    return stack.sdk().deployments.get(dep_id).state


def buttons(message) -> dict[str, str]:
    return {el["action_id"]: el.get("value") for block in message.blocks or []
            for el in block.get("elements") or [] if el.get("type") == "button"}


def ephemeral_with(stack, user, needle, channel=CHANNEL):
    return stack.ws.wait_for(lambda: next((m for m in reversed(stack.ephemerals(user, channel))
                                           if needle in message_text(m)), None), timeout=10)


def confirmation(stack, dep_id, user="U_DEV", flags=""):
    stack.fw(f"delete {dep_id} {flags}".strip(), user=user)
    return ephemeral_with(stack, user, f"Delete `{dep_id}`")


def changed(stack, msg, channel=CHANNEL):
    """The message once a click's answer replaced it."""
    before = msg.blocks
    return stack.ws.wait_for(lambda: (m := stack.ws.find_message(channel, msg.ts, include_ephemeral=True))
                             and (m.blocks != before or m.text != msg.text) and m, timeout=10)


def deletes(stack, dep_id):
    """fwbot's audit rows about deleting ``dep_id``: (actor, result, ignore_checks)."""
    rows = [r for r in stack.services.store.audit_trail(dep_id, limit=100) if r["action"] == "delete"]
    return sorted((r["actor"], r["result"], bool(json.loads(r["request"] or "{}").get("ignore_checks")))
                  for r in rows)


def offer_for(stack, dep_id, user="U_DEV"):
    """The owner confirms a plain delete of a deployment in use: the in-use answer replaces the confirmation."""
    confirm = confirmation(stack, dep_id, user)
    stack.ws.click(user, CHANNEL, confirm.ts, "confirm_delete")
    return changed(stack, confirm)


def request_messages(stack):
    return [m for m in stack.ws.messages(APPROVALS) if not m.ephemeral_to and not m.thread_ts]


def approve_latest(stack, count_before):
    msg = stack.ws.wait_for(lambda: request_messages(stack)[count_before:] or None, timeout=10)[0]
    token = buttons(msg)["approval_approve"]
    stack.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    return stack.ws.wait_for(lambda: (r := stack.services.store.approval(token)).result is not None and r,
                             timeout=15)


# -- the owner ------------------------------------------------------------------------------------------
def test_owner_is_told_it_is_in_use_and_delete_anyway_deletes_it(stack, clock):
    busy(stack, clock, "busy-1")
    offer = offer_for(stack, "busy-1")
    text = message_text(offer)
    assert f"Fireworks refused to delete `busy-1`: {IN_USE}. Nothing was deleted." in text
    assert "Fireworks says:" in text and "in use" in text
    assert set(buttons(offer)) == {"delete_anyway", "confirm_cancel"}
    assert state(stack, "busy-1") == "READY"  # sent without ignoreChecks: Fireworks refused
    assert deletes(stack, "busy-1") == [("U_DEV", "refused", False)]
    anyway = next(el for b in offer.blocks for el in b.get("elements") or [] if el.get("action_id") == "delete_anyway")
    assert anyway["confirm"]["confirm"]["text"] == "Delete anyway"  # Slack asks once more first

    stack.ws.click("U_DEV", CHANNEL, offer.ts, "delete_anyway")
    done = changed(stack, offer)
    assert "Deleted `busy-1` although it was in use." in message_text(done)
    assert state(stack, "busy-1") in ("DELETING", "DELETED")
    assert deletes(stack, "busy-1") == [("U_DEV", "ok", True), ("U_DEV", "refused", False)]
    record = stack.services.store.deployment("busy-1")
    stack.ws.wait_for(lambda: any("deleted `busy-1` although it was in use" in message_text(m)
                                  for m in stack.ws.thread(record.channel, record.thread_ts)), timeout=10)
    stack.fw("audit busy-1")
    assert "while in use (`--ignore-checks`)" in message_text(ephemeral_with(stack, "U_DEV", "Audit trail of busy-1"))


def test_a_deployment_not_in_use_is_deleted_without_skipping_the_check(stack, clock):
    busy(stack, clock, "idle-1", traffic=False)
    confirm = confirmation(stack, "idle-1")
    assert "even if it is in use" not in message_text(confirm)
    stack.ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
    assert "Deleted `idle-1`." in message_text(changed(stack, confirm))
    assert deletes(stack, "idle-1") == [("U_DEV", "ok", False)]


def test_delete_anyway_clicked_twice_deletes_and_audits_once(stack, clock):
    busy(stack, clock, "twice-1")
    offer = offer_for(stack, "twice-1")
    first = stack.ws.click("U_DEV", CHANNEL, offer.ts, "delete_anyway")
    done = changed(stack, offer)
    assert "Deleted `twice-1` although it was in use." in message_text(done)
    removes = stack.sim.state.count_requests("DELETE", "/v1/accounts/demo/deployments/twice-1")
    # The very same click once more, freshly signed (a double click, or Slack's retry of a slow answer).
    body = payloads.interactive_body({**first.payload, "trigger_id": "again-1"})
    assert stack.ws.send_raw(body, stack.ws.signed_headers(body, timestamp=int(time.time()) - 7)).status == 200
    again = changed(stack, done)
    assert "`twice-1` is already deleted; nothing was changed." in message_text(again)
    assert stack.sim.state.count_requests("DELETE", "/v1/accounts/demo/deployments/twice-1") == removes
    assert deletes(stack, "twice-1") == [("U_DEV", "ok", True), ("U_DEV", "refused", False)]


@pytest.mark.parametrize("hard", [False, True])
def test_deleted_elsewhere_before_delete_anyway_changes_nothing(stack, clock, hard):
    busy(stack, clock, "else-1")
    offer = offer_for(stack, "else-1")
    stack.sdk().deployments.delete("else-1", ignore_checks=True, hard=hard)  # firectl, the console …
    stack.ws.click("U_DEV", CHANNEL, offer.ts, "delete_anyway")
    text = message_text(changed(stack, offer))
    assert ("is already gone; nothing was changed" if hard else "is already deleted; nothing was changed") in text
    assert deletes(stack, "else-1") == [("U_DEV", "refused", False)]


def test_the_ignore_checks_flag_deletes_an_owned_deployment_in_use_after_one_confirmation(stack, clock):
    busy(stack, clock, "flag-1")
    confirm = confirmation(stack, "flag-1", flags="--ignore-checks")
    assert "even if it is in use (`--ignore-checks`" in message_text(confirm)
    stack.ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
    assert "Deleted `flag-1`." in message_text(changed(stack, confirm))
    assert deletes(stack, "flag-1") == [("U_DEV", "ok", True)]


def test_the_tracking_messages_delete_button_gets_the_same_offer(stack, clock):
    busy(stack, clock, "track-1")
    record = stack.services.store.deployment("track-1")
    tracking = stack.ws.wait_for(lambda: (m := stack.ws.message(record.channel, record.thread_ts))
                                 and "dep_delete" in json.dumps(m.blocks or []) and m)
    stack.ws.click("U_DEV", CHANNEL, tracking.ts, "dep_delete", value="track-1")
    offer = ephemeral_with(stack, "U_DEV", "Fireworks refused to delete `track-1`")
    assert IN_USE in message_text(offer) and "delete_anyway" in buttons(offer)
    stack.ws.click("U_DEV", CHANNEL, offer.ts, "delete_anyway")
    changed(stack, offer)
    assert state(stack, "track-1") in ("DELETING", "DELETED")


# -- anyone else: an approver decides, also for Delete anyway -------------------------------------------
def test_a_non_owners_delete_of_a_deployment_in_use_ends_in_a_second_request_to_delete_anyway(stack, clock):
    busy(stack, clock, "theirs-1")
    n = len(request_messages(stack))
    stack.fw("delete theirs-1", user="U_OTHER")
    ephemeral_with(stack, "U_OTHER", "Waiting for approval")
    stack.services.gateway.complete("theirs-1", "still busy")
    first = approve_latest(stack, n)
    assert first.result == {"ok": False, "text": f"Fireworks refused to delete `theirs-1`: {IN_USE}. "
                                                 "Nothing was deleted.", "in_use": True}
    assert state(stack, "theirs-1") == "READY"
    dm = stack.ws.dm_channel("U_OTHER")
    told = stack.ws.wait_for(lambda: next((m for m in stack.ws.messages(dm) if not m.ephemeral_to
                                           and "delete_anyway" in buttons(m)), None), timeout=10)
    assert IN_USE in message_text(told)

    # Delete anyway from the DM: not theirs, so it is a request of its own, for exactly that.
    n = len(request_messages(stack))
    stack.ws.click("U_OTHER", dm, told.ts, "delete_anyway")
    waiting = ephemeral_with(stack, "U_OTHER", "Waiting for approval", channel=dm)
    assert "delete `theirs-1` even while it is in use" in message_text(waiting)
    request = stack.ws.wait_for(lambda: request_messages(stack)[n:] or None, timeout=10)[0]
    assert "Fireworks' check that it serves no traffic is skipped" in message_text(request)
    assert state(stack, "theirs-1") == "READY"  # nothing until an approver says so
    stack.services.gateway.complete("theirs-1", "busy as ever")
    second = approve_latest(stack, n)
    assert second.result["ok"] and second.request["ignore_checks"] is True
    assert state(stack, "theirs-1") in ("DELETING", "DELETED")
    assert deletes(stack, "theirs-1") == [("U_OTHER", "ok", True), ("U_OTHER", "refused", False)]
    owner_dms = [message_text(m) for m in stack.ws.messages(stack.ws.dm_channel("U_DEV"))]
    assert any("asked to delete your deployment `theirs-1`" in t for t in owner_dms)


def test_a_non_owners_ignore_checks_asks_an_approver_for_exactly_that(stack, clock):
    busy(stack, clock, "theirs-2")
    n = len(request_messages(stack))
    stack.fw("delete theirs-2 --ignore-checks", user="U_OTHER")
    waiting = ephemeral_with(stack, "U_OTHER", "Waiting for approval")
    assert "even while it is in use" in message_text(waiting)
    stack.fw("delete theirs-2", user="U_OTHER")  # a plain delete is a different request, not "already asked"
    stack.ws.wait_for(lambda: len([m for m in stack.ephemerals("U_OTHER")
                                   if "Waiting for approval" in message_text(m)]) == 2, timeout=10)
    assert len(stack.services.store.approvals()) == 2
    done = approve_latest(stack, n)
    assert done.request.get("ignore_checks") is True and done.result["ok"]
    assert state(stack, "theirs-2") in ("DELETING", "DELETED")


def test_delete_anyway_on_someone_elses_deployment_never_deletes_directly(stack, clock):
    busy(stack, clock, "theirs-3")
    offer = offer_for(stack, "theirs-3")  # the owner's offer …
    # … clicked by someone else, as a forged click would (the button's value names only the deployment).
    ws = stack.ws
    where = next(c for c in ws.channels if c.id == CHANNEL)
    payload = payloads.block_actions(
        team_id=ws.team_id, domain=ws.domain, user=ws.user("U_OTHER"), trigger_id="forged-anyway",
        actions=[{"action_id": "delete_anyway", "block_id": "b", "type": "button",
                  "value": json.dumps({"d": "theirs-3", "h": 0}), "action_ts": "4.000001"}],
        token=ws.verification_token, container={"type": "message", "message_ts": offer.ts, "channel_id": CHANNEL,
                                                "is_ephemeral": True},
        response_url=ws.new_response_url("U_OTHER", CHANNEL), channel=where, message=None)
    body = payloads.interactive_body(payload)
    assert ws.send_raw(body, ws.signed_headers(body)).status == 200
    ephemeral_with(stack, "U_OTHER", "Waiting for approval")
    assert state(stack, "theirs-3") == "READY"
    [req] = stack.services.store.approvals()
    assert (req.requester, req.kind, req.request.get("ignore_checks")) == ("U_OTHER", "delete", True)


@pytest.mark.parametrize("value, needle", [
    ({"d": "theirs-4", "h": 2}, "not one fwbot made"),
    ({"d": "theirs-4", "h": 0.0}, "not one fwbot made"),
    ({"d": "Not An Id!", "h": 0}, "nothing was changed"),
])
def test_a_forged_delete_anyway_changes_nothing(stack, clock, value, needle):
    busy(stack, clock, "theirs-4")
    offer = offer_for(stack, "theirs-4")
    ws = stack.ws
    where = next(c for c in ws.channels if c.id == CHANNEL)
    payload = payloads.block_actions(
        team_id=ws.team_id, domain=ws.domain, user=ws.user("U_DEV"), trigger_id="forged-anyway-2",
        actions=[{"action_id": "delete_anyway", "block_id": "b", "type": "button", "value": json.dumps(value),
                  "action_ts": "5.000001"}],
        token=ws.verification_token, container={"type": "message", "message_ts": offer.ts, "channel_id": CHANNEL,
                                                "is_ephemeral": True},
        response_url=ws.new_response_url("U_DEV", CHANNEL), channel=where, message=None)
    body = payloads.interactive_body(payload)
    assert ws.send_raw(body, ws.signed_headers(body)).status == 200
    ephemeral_with(stack, "U_DEV", needle)
    assert state(stack, "theirs-4") == "READY"
    assert deletes(stack, "theirs-4") == [("U_DEV", "refused", False)]


def test_help_names_ignore_checks_and_delete_anyway(stack):
    text = json.dumps(stack.fw("help delete").json)
    assert "--ignore-checks" in text and "Delete anyway" in text
