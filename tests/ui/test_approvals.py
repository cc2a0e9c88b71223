"""Approval Block Kit: buttons carry only the token, decided messages have none, limits hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.ui import approvals as ui
from storage.approvals import ApprovalRecord

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def record(**kw) -> ApprovalRecord:
    base = dict(id="tok-123", kind="deploy", requester="U_DEV", channel="C1", deployment_id="web-1",
                request={"why": "above the threshold", "summary": [["Model", "llama"], ["Replicas", "0–8"]]},
                usd_per_hour=64.0, status="pending", decided_by=None, decided_at=None, reason=None,
                executed_at=None, result=None, message_channel="C2", message_ts="1.1", requester_ts=None,
                created_at=T0, expires_at=T0 + timedelta(hours=24), reminded_at=None)
    return ApprovalRecord(**{**base, **kw})


def elements(payload: dict) -> list[dict]:
    return [e for b in payload["blocks"] for e in b.get("elements") or [] if e.get("type") == "button"]


def test_request_buttons_carry_only_the_token():
    payload = ui.request_message(record(), approvers=["U_APPROVER", "S0GROUP"], simulated=True).payload()
    assert [(e["action_id"], e["value"]) for e in elements(payload)] == [
        (ui.APPROVE, "tok-123"), (ui.REJECT, "tok-123")]
    text = json.dumps(payload)
    assert "$64.00/h" in text and "$1,536.00/day" in text and "<!subteam^S0GROUP>" in text
    assert "simulated Fireworks" in json.dumps(payload["blocks"][-1])


def test_decided_messages_have_no_buttons_and_say_who_and_when():
    approved = record(status="approved", decided_by="U_APPROVER", decided_at=T0,
                      result={"ok": True, "text": "created `web-1`"})
    rejected = record(status="rejected", decided_by="U_APPROVER", decided_at=T0, reason="<b>no</b> " * 400)
    for rec in (approved, rejected, record(status="expired"), record(status="cancelled", decided_by="U_DEV",
                                                                     decided_at=T0)):
        payload = ui.decided_message(rec, simulated=False).payload()
        assert elements(payload) == []
    assert "Approved by <@U_APPROVER>" in json.dumps(ui.decided_message(approved, simulated=False).payload())
    text = json.dumps(ui.decided_message(rejected, simulated=False).payload())
    assert "&lt;b&gt;" in text and "<b>" not in text  # the reason is the user's text: escaped, clipped


def test_update_and_delete_show_what_exactly_and_money():
    upd = record(kind="update", request={"why": "raises", "diff": ["• *Max replicas:* 2 → 8"], "usd_before": 16.0})
    text = json.dumps(ui.request_message(upd, approvers=["U_A"], simulated=False).payload(), ensure_ascii=False)
    assert "2 → 8" in text and "$16.00/h → $64.00/h" in text
    dele = record(kind="delete", request={"why": "someone else's", "hard": True, "owner": "U_OWNER"})
    text = json.dumps(ui.request_message(dele, approvers=["U_A"], simulated=False).payload())
    assert "permanently delete" in text and "<@U_OWNER>" in text


def test_waiting_message_has_cancel_and_the_reject_modal_keeps_the_token_out_of_inputs():
    payload = ui.waiting_message(record(), approvers=["U_A"], simulated=False).payload()
    assert [(e["action_id"], e["value"]) for e in elements(payload)] == [(ui.CANCEL, "tok-123")]
    modal = ui.reject_modal(record())
    assert modal["private_metadata"] == "tok-123" and modal["callback_id"] == ui.REJECT_VIEW
