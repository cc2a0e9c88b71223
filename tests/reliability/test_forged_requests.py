"""Forged and replayed Slack requests: refused at the front door, nothing executed.

Every forgery is built from a request that *would* act (create a deployment, scale one, delete
one, submit the deploy modal) and is checked by its effects: Fireworks calls, Slack calls,
deployments, audit rows and response_url posts, which must not move at all.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

import pytest

from tests.harness import CHANNEL, message_text

MODEL = "llama-v3p1-8b-instruct"
FORM = "application/x-www-form-urlencoded"


def command_body(ws, text: str, user: str = "U_DEV") -> tuple[bytes, str]:
    response_url = ws.new_response_url(user, CHANNEL)
    fields = {"token": "x", "team_id": ws.team_id, "channel_id": CHANNEL, "channel_name": "ml-platform",
              "user_id": user, "user_name": "dev", "command": "/fw", "text": text,
              "response_url": response_url, "trigger_id": f"{time.time()}.1.abc"}
    return urlencode(fields).encode(), response_url


def interactive_body(payload: dict) -> bytes:
    return ("payload=" + quote(json.dumps(payload, separators=(",", ":")))).encode()


def click_body(ws, action_id: str, value: str, user: str = "U_DEV") -> tuple[bytes, str]:
    response_url = ws.new_response_url(user, CHANNEL)
    payload = {"type": "block_actions", "user": {"id": user, "name": "dev"}, "team": {"id": ws.team_id},
               "api_app_id": "A0FWBOT", "token": "x", "trigger_id": f"{time.time()}.2.abc",
               "response_url": response_url, "channel": {"id": CHANNEL},
               "container": {"type": "message", "channel_id": CHANNEL, "message_ts": "1.0", "is_ephemeral": True},
               "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                            "action_ts": str(time.time())}]}
    return interactive_body(payload), response_url


def submit_body(ws, deployment_id: str, user: str = "U_DEV") -> bytes:
    values = {
        "model": {"v": {"type": "static_select",
                        "selected_option": {"value": f"accounts/fireworks/models/{MODEL}"}}},
        "shape": {"v": {"type": "static_select", "selected_option": {"value": "none"}}},
        "acc_type": {"v": {"type": "static_select", "selected_option": {"value": "NVIDIA_H100_80GB"}}},
        "acc_count": {"v": {"type": "number_input", "value": "1"}},
        "min": {"v": {"type": "number_input", "value": "0"}},
        "max": {"v": {"type": "number_input", "value": "1"}},
        "deployment_id": {"v": {"type": "plain_text_input", "value": deployment_id}},
    }
    payload = {"type": "view_submission", "user": {"id": user, "name": "dev"}, "team": {"id": ws.team_id},
               "api_app_id": "A0FWBOT", "token": "x", "trigger_id": f"{time.time()}.3.abc",
               "view": {"id": "V0FORGED", "type": "modal", "callback_id": "deploy_modal",
                        "private_metadata": json.dumps({"channel": CHANNEL}), "hash": "1.x",
                        "state": {"values": values}},
               "response_urls": []}
    return interactive_body(payload)


def forgeries(ws, body: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Every way we know to present ``body`` without a valid, fresh signature."""
    now = int(time.time())
    good = ws.signed_headers(body)
    altered = body.replace(b"U_DEV", b"U_ADMIN") if b"U_DEV" in body else body + b"&x=1"
    return {
        "unsigned": (body, {"Content-Type": FORM}),
        "wrong secret": (body, ws.signed_headers(body, secret="not-the-signing-secret")),
        "body altered after signing": (altered, good),
        "body truncated after signing": (body[:-3], good),
        "timestamp 6 minutes old": (body, ws.signed_headers(body, timestamp=now - 360)),
        "timestamp 1 day old": (body, ws.signed_headers(body, timestamp=now - 86400)),
        "timestamp 6 minutes ahead": (body, ws.signed_headers(body, timestamp=now + 360)),
        "timestamp swapped after signing": (body, {**good, "X-Slack-Request-Timestamp": str(now - 1)}),
        "timestamp not a number": (body, {**good, "X-Slack-Request-Timestamp": "yesterday"}),
        "signature missing": (body, {k: v for k, v in good.items() if k != "X-Slack-Signature"}),
        "signature of another version": (body, {**good, "X-Slack-Signature": good["X-Slack-Signature"].replace(
            "v0=", "v1=")}),
        "signature garbage": (body, {**good, "X-Slack-Signature": "v0=" + "0" * 64}),
        "signature empty secret": (body, ws.signed_headers(body, secret="")),
    }


def effects(stack) -> dict[str, int]:
    """Everything a request that acted would have moved."""
    with stack.sim.state.lock:  # read the simulator directly: an SDK call would count itself
        fireworks_calls = len(stack.sim.state.requests)
        deployments = len(stack.sim.state.deployments)
    return {
        "fireworks calls": fireworks_calls,
        "slack calls": len(stack.ws.calls),
        "audit rows": stack.services.store.db.scalar("SELECT COUNT(*) FROM audit"),
        "deployments": deployments,
    }


@pytest.fixture
def owned(module_stack):
    """A READY deployment owned by U_DEV, made through the front door."""
    dep_id = f"forge-{int(time.time() * 1000) % 10**9}"
    module_stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 1")
    wait_tracked(module_stack, dep_id)
    return dep_id


def wait_tracked(stack, dep_id: str) -> None:
    """Until the create has finished and its tracking message shows the outcome (the last effect)."""
    def done():
        record = stack.services.store.deployment(dep_id)
        if not (record and record.state and record.thread_ts):
            return False
        # Edited after the create, or posted after it (its channel's slot was taken), rendered then.
        message = stack.ws.message(record.channel, record.thread_ts)
        return message.edited or "requested by" not in message_text(message)

    stack.ws.wait_for(done, timeout=10)


def test_forged_requests_are_refused_with_401_and_change_nothing(module_stack, owned, errors):
    stack, ws = module_stack, module_stack.ws
    targets = {
        "/fw deploy": command_body(ws, f"deploy {MODEL} --deployment-id forged-create"),
        "/fw scale": command_body(ws, f"scale {owned} 1"),
        "confirm_delete click": click_body(ws, "confirm_delete", json.dumps({"d": owned, "h": 0})),
        "dep_delete click": click_body(ws, "dep_delete", owned),
        "deploy modal submit": (submit_body(ws, "forged-modal"), None),
    }
    before = effects(stack)
    tried = executed = 0
    statuses = {}
    for target, (body, response_url) in targets.items():
        for how, (sent, headers) in forgeries(ws, body).items():
            delivery = ws.send_raw(sent, headers)
            tried += 1
            statuses[(target, how)] = delivery.status
            if delivery.status != 401 or (response_url and ws.response_url_uses(response_url)):
                executed += 1
    time.sleep(0.3)  # anything a forged request had started would have reached Fireworks by now
    assert effects(stack) == before
    assert {k: v for k, v in statuses.items() if v != 401} == {}
    assert (tried, executed) == (len(targets) * 13, 0)
    assert errors.take() == []
    assert stack.services.store.deployment("forged-create") is None


def test_replayed_signed_requests_run_once(module_stack, owned, errors):
    """The same signed bytes sent again within the 5-minute window act only the first time."""
    stack, ws = module_stack, module_stack.ws
    sdk = stack.sdk()

    # a command that creates: replayed, still one deployment
    body, _ = command_body(ws, f"deploy {MODEL} --deployment-id replayed-cmd --max-replica-count 1")
    headers = ws.signed_headers(body)
    assert ws.send_raw(body, headers).status == 200
    wait_tracked(stack, "replayed-cmd")
    again = ws.send_raw(body, headers)
    assert again.status == 401 and "replayed" in again.body

    # the modal's submit: replayed, still one deployment
    body = submit_body(ws, "replayed-modal")
    headers = ws.signed_headers(body)
    assert ws.send_raw(body, headers).status == 200
    wait_tracked(stack, "replayed-modal")
    assert ws.send_raw(body, headers).status == 401

    # the delete confirmation: replayed, one DELETE at Fireworks and one audit row
    body, response_url = click_body(ws, "confirm_delete", json.dumps({"d": owned, "h": 0}))
    headers = ws.signed_headers(body)
    assert ws.send_raw(body, headers).status == 200
    ws.wait_for(lambda: ws.response_url_uses(response_url) >= 1)
    assert ws.send_raw(body, headers).status == 401
    time.sleep(0.3)

    names = [d.name.rsplit("/", 1)[-1] for d in sdk.deployments.list(show_deleted=True)]
    assert names.count("replayed-cmd") == 1 and names.count("replayed-modal") == 1
    assert stack.sim.state.count_requests("DELETE", rf".*/deployments/{owned}") == 1
    rows = stack.services.store.db.query("SELECT action FROM audit WHERE deployment_id = :d AND action = 'delete'",
                                         {"d": owned})
    assert len(rows) == 1
    assert ws.response_url_uses(response_url) == 1
    assert errors.take() == []


def test_second_delete_click_is_told_and_neither_deletes_nor_audits_again(module_stack, owned, errors):
    """Two genuine clicks (two signatures: a double click, or the confirmation shown twice)."""
    stack, ws = module_stack, module_stack.ws
    urls = []
    for _ in range(2):
        body, response_url = click_body(ws, "confirm_delete", json.dumps({"d": owned, "h": 0}))
        assert ws.send_raw(body, ws.signed_headers(body)).status == 200
        ws.wait_for(lambda u=response_url: ws.response_url_uses(u) >= 1)
        urls.append(response_url)
    assert stack.sim.state.count_requests("DELETE", rf".*/deployments/{owned}") == 1
    assert stack.services.store.db.scalar(
        "SELECT COUNT(*) FROM audit WHERE deployment_id = :d AND action = 'delete'", {"d": owned}) == 1
    last = [m for m in ws.messages(CHANNEL) if m.ephemeral_to == "U_DEV"][-1]
    assert "already deleted" in message_text(last)
    assert errors.take() == []


def test_a_hard_delete_after_a_soft_one_still_purges(module_stack, owned):
    """The one-shot rule does not swallow a deliberate second step."""
    stack, ws = module_stack, module_stack.ws
    for hard in (0, 1):
        body, response_url = click_body(ws, "confirm_delete", json.dumps({"d": owned, "h": hard}))
        assert ws.send_raw(body, ws.signed_headers(body)).status == 200
        ws.wait_for(lambda u=response_url: ws.response_url_uses(u) >= 1)
    assert stack.sim.state.count_requests("DELETE", rf".*/deployments/{owned}") == 2
    assert stack.sim.state.get_deployment(owned) is None


def test_a_replayed_approval_click_runs_the_request_once(tmp_path, errors):
    from tests.harness import APPROVALS, start_stack

    stack = start_stack(tmp_path, env={"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_CHANNEL": APPROVALS,
                                       "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20"},
                        sim_config={"create_seconds": 1.0})
    try:
        ws = stack.ws
        stack.fw(f"deploy {MODEL} --deployment-id costly --max-replica-count 8 --accelerator-type h100")
        request = ws.wait_for(lambda: next((m for m in ws.messages(APPROVALS) if not m.thread_ts and "approval_approve"
                                            in json.dumps(m.blocks or [])), None))
        token = next(e["value"] for b in request.blocks for e in b.get("elements") or []
                     if e.get("action_id") == "approval_approve")
        payload = {"type": "block_actions", "user": {"id": "U_APPROVER", "name": "approver"},
                   "team": {"id": ws.team_id}, "api_app_id": "A0FWBOT", "token": "x",
                   "trigger_id": f"{time.time()}.4.abc", "response_url": ws.new_response_url("U_APPROVER", APPROVALS),
                   "channel": {"id": APPROVALS}, "container": {"type": "message", "channel_id": APPROVALS,
                                                               "message_ts": request.ts},
                   "message": {"ts": request.ts, "text": request.text, "blocks": request.blocks},
                   "actions": [{"action_id": "approval_approve", "block_id": "approval", "type": "button",
                                "value": token, "action_ts": str(time.time())}]}
        body = interactive_body(payload)
        headers = ws.signed_headers(body)
        assert ws.send_raw(body, headers).status == 200
        assert ws.send_raw(body, headers).status == 401
        ws.wait_for(lambda: stack.services.store.approval(token).result, timeout=15)
        time.sleep(0.5)
        assert [n for n in stack.sim.state.deployments] == ["costly"]
        assert stack.services.store.db.scalar(
            "SELECT COUNT(*) FROM audit WHERE action = 'approved run'") == 1
        assert errors.take() == []
    finally:
        stack.stop()


def test_the_word_payload_anywhere_in_a_command_does_not_lose_it(module_stack, errors):
    """Bolt's own parser took any form body containing "payload" for an interaction."""
    ws = module_stack.ws
    ws.add_channel("C0PAYLOAD", "payload-team")
    ws.add_user("U_PAYLOAD", "payload")
    for text in ("get payload-api", "help", "list mine"):
        delivery = ws.slash_command(user="U_PAYLOAD", channel="C0PAYLOAD", text=text)
        assert delivery.status == 200
    module_stack.wait_ephemeral("no deployment `payload-api`", user="U_PAYLOAD", channel="C0PAYLOAD")
    module_stack.wait_ephemeral("You own no deployments", user="U_PAYLOAD", channel="C0PAYLOAD")
    assert not [m for m in ws.messages("C0PAYLOAD") if "failed with the error" in (m.text or "")]
    assert errors.take() == []
