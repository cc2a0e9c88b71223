"""What a person is told and what fwbot does must hold whatever Slack and Fireworks do: slow
Fireworks behind the deploy form, shapes that change the hardware, forged button values, and
response_urls that fail. Signed HTTP into the bot, the simulator over HTTP, real SQLite.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time

import pytest

import bot.services.container
import handlers.replies
from sims.slack import SlackWorkspace, payloads
from sims.slack.model import Delivery
from tests.harness import (
    APPROVALS,
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    message_text,
    seed_workspace,
    start_stack,
)

MODEL = "llama-v3p1-8b-instruct"
FULL_MODEL = f"accounts/fireworks/models/{MODEL}"
SHAPES = "accounts/fireworks/deploymentShapes"
SLOW_S = 3.5  # slower than Slack's 3 s for an ack
APPROVAL_ENV = {"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20",
                "FWBOT_APPROVAL_CHANNEL": APPROVALS}
MATCH = r"deploymentShapeVersions:match$"
CATALOG = r"/accounts/fireworks/models$"


@pytest.fixture
def stack(tmp_path):
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


@pytest.fixture
def gated(tmp_path):
    """Approvals on: U_APPROVER decides above $20/h (an H100 is $8/GPU-hour)."""
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.0}, env=APPROVAL_ENV)
    yield s
    s.stop()


# -- helpers -------------------------------------------------------------------------------------
def slow_down(stack, pattern: str, seconds: float = SLOW_S) -> None:
    """Fireworks answers the calls whose path matches ``pattern`` only after ``seconds`` (the
    others stay fast): the simulator's request handler sleeps before serving them."""
    server = stack.sim._server
    base = server.RequestHandlerClass

    class Slow(base):  # type: ignore[misc, valid-type]
        def _control_plane(self, method, path, query, body):
            if re.search(pattern, path):
                time.sleep(seconds)
            return super()._control_plane(method, path, query, body)

    server.RequestHandlerClass = Slow


def deployment_ids(stack) -> list[str]:
    return sorted(d.name.rsplit("/", 1)[-1] for d in stack.sdk().deployments.list())


def texts(stack, user="U_DEV", channel=CHANNEL) -> list[str]:
    return [message_text(m) for m in stack.ephemerals(user, channel)]


def told(stack, needle, user="U_DEV", channel=CHANNEL, timeout=10.0) -> str:
    return stack.ws.wait_for(lambda: [t for t in texts(stack, user, channel) if needle in t] or None,
                             timeout=timeout)[-1]


def pick(value: str) -> dict:
    return {"type": "static_select", "selected_option": {"value": value, "text": {"type": "plain_text",
                                                                                  "text": value}}}


def shaped_form(stack, preset: str = "Fast"):
    """The deploy form with the model picked (its shapes loaded) and the ``preset`` shape picked."""
    stack.fw("deploy")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1])
    stack.ws.click_in_view("U_DEV", view.id, "v", block_id="model", value=FULL_MODEL)
    stack.ws.wait_for(lambda: preset in json.dumps(stack.ws.view(view.id).view))
    shape_block = next(b for b in stack.ws.view(view.id).view["blocks"] if b.get("block_id") == "shape")
    shape = next(o["value"] for o in shape_block["element"]["options"] if o["text"]["text"].startswith(preset))
    stack.ws.click_in_view("U_DEV", view.id, "v", block_id="shape", value=shape)
    stack.ws.wait_for(lambda: "per replica" in json.dumps(stack.ws.view(view.id).view))
    stack.services.wait_work_done(10)
    return view, shape


_resends = itertools.count(1)


def resubmit(stack, delivery: Delivery) -> Delivery:
    """The same form submitted again (a second Submit, a re-delivery): same view, new trigger."""
    payload = json.loads(json.dumps(delivery.payload))
    payload["trigger_id"] = f"{int(time.time())}.9.resend{next(_resends)}"
    body = payloads.interactive_body(payload)
    return stack.ws.send_raw(body, stack.ws.signed_headers(body))


def already_submitted(stack) -> list[str]:
    return [t for t in texts(stack) if "already submitted" in t]


# -- 7. the deploy form answers Slack before Fireworks, and creates at most one deployment ----------
@pytest.mark.parametrize("slow", ["shape match", "catalog refresh"])
def test_the_deploy_form_is_acked_before_slow_fireworks_and_a_second_submit_creates_nothing(stack, monkeypatch,
                                                                                           slow):
    if slow == "shape match":
        view, _ = shaped_form(stack)
        slow_down(stack, MATCH)
        values = {"min": {"v": "0"}, "max": {"v": "1"}}
    else:
        view, values = stack.open_deploy_form(MODEL)
        values = {**values, "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "1"}}
        slow_down(stack, CATALOG)
        monkeypatch.setattr(bot.services.container, "CATALOG_TTL_S", 0.0)  # the 10-minute cache has run out
    first = stack.ws.submit_view("U_DEV", view.id, values=values)
    assert first.status == 200 and first.elapsed < 2.0 and not first.body.strip(), first
    created = stack.ws.wait_for(lambda: deployment_ids(stack) or None, timeout=15)
    assert len(created) == 1 and created[0].startswith(MODEL)
    again = resubmit(stack, first)  # Slack's retry, a double click, a second Submit
    assert again.status == 200 and again.elapsed < 2.0
    assert f"`{created[0]}`" in stack.ws.wait_for(lambda: already_submitted(stack), timeout=15)[-1]
    stack.services.wait_work_done(15)
    assert deployment_ids(stack) == created


def test_submit_again_after_slack_lost_the_answer_creates_one_deployment(stack, monkeypatch):
    """Slack shows "trouble connecting" and keeps the form open; the person presses Submit again."""
    view, values = stack.open_deploy_form(MODEL)
    ws, lost = stack.ws, []
    apply = ws._apply_submission_ack

    def lose_the_first(user, view_id, delivery):
        if not lost:
            lost.append(delivery)
            delivery = Delivery(0, "", delivery.elapsed, error="operation_timeout", payload=delivery.payload)
        return apply(user, view_id, delivery)

    monkeypatch.setattr(ws, "_apply_submission_ack", lose_the_first)
    form = {**values, "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "1"}}
    ws.submit_view("U_DEV", view.id, values=form)
    assert ws.view(view.id).errors  # still open, with Slack's error
    ws.submit_view("U_DEV", view.id, values={**form, "max": {"v": "2"}})  # and changed a field, too
    stack.ws.wait_for(lambda: already_submitted(stack), timeout=15)
    stack.services.wait_work_done(15)
    assert len(deployment_ids(stack)) == 1
    assert len(already_submitted(stack)) == 1


def test_identical_submissions_at_once_create_one_deployment(stack):
    view, values = stack.open_deploy_form(MODEL)
    slow_down(stack, r"/deployments$", 0.5)  # validate and create take a while
    first = stack.ws.submit_view("U_DEV", view.id, values={
        **values, "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "1"}, "deployment_id": {"v": "twice"}})
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(resubmit(stack, first))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status for a in answers] == [200, 200, 200]
    stack.ws.wait_for(lambda: len(already_submitted(stack)) == 3 or None, timeout=15)
    stack.services.wait_work_done(15)
    assert deployment_ids(stack) == ["twice"]


def test_problems_only_fireworks_can_see_are_reported_after_the_ack(stack):
    view, values = stack.open_deploy_form(MODEL)
    slow_down(stack, CATALOG, 0.2)
    bot.services.container.CATALOG_TTL_S, ttl = 0.0, bot.services.container.CATALOG_TTL_S
    try:
        r = stack.ws.submit_view("U_DEV", view.id, values={
            **values, "model": {"v": pick("accounts/fireworks/models/no-such-model-v9")},
            "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "1"}})
        assert r.status == 200 and not r.body.strip()
        assert "no-such-model-v9" in told(stack, "Deploy failed")
    finally:
        bot.services.container.CATALOG_TTL_S = ttl
    assert deployment_ids(stack) == []


def test_field_problems_are_still_answered_inline_without_fireworks(stack):
    view, values = stack.open_deploy_form(MODEL)
    slow_down(stack, r".", 5.0)  # any Fireworks call would make the answer late
    r = stack.ws.submit_view("U_DEV", view.id, values={
        **values, "acc_count": {"v": "1"}, "min": {"v": "3"}, "max": {"v": "1"}, "unused": {"v": "a week"}})
    assert r.elapsed < 2.0 and r.json["response_action"] == "errors"
    assert set(r.json["errors"]) == {"min", "unused"}


def test_the_form_opens_in_time_while_fireworks_is_slow_to_list_the_models(stack):
    slow_down(stack, CATALOG)
    assert stack.fw("deploy").status == 200
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1], timeout=3)
    assert "Loading" in json.dumps(view.view) and not view.view.get("submit")
    stack.ws.wait_for(lambda: any(b.get("block_id") == "model" for b in stack.ws.view(view.id).view["blocks"]),
                      timeout=10)
    assert stack.ws.view(view.id).view.get("submit")
    assert not [t for t in texts(stack) if "did not open the form" in t]
    # The form keeps its identity (the token that makes its deployment id) through the fill-in.
    assert json.loads(stack.ws.view(view.id).view["private_metadata"])["form"]


def test_the_live_cost_update_never_holds_the_ack(stack):
    stack.fw("deploy")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1])
    slow_down(stack, MATCH, 1.0)
    r = stack.ws.click_in_view("U_DEV", view.id, "v", block_id="model", value=FULL_MODEL)
    assert r.status == 200 and r.elapsed < 0.9
    stack.ws.wait_for(lambda: "Fast" in json.dumps(stack.ws.view(view.id).view), timeout=10)


# -- 8. a shape change is priced on the shape's hardware ----------------------------------------------
def request_messages(stack):
    return [m for m in stack.ws.messages(APPROVALS) if not m.ephemeral_to and not m.thread_ts]


def deploy(stack, dep_id: str, flags: str = "--max-replica-count 2 --accelerator-type h100") -> None:
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} {flags}")
    stack.ws.wait_for(lambda: dep_id in deployment_ids(stack) or None, timeout=10)
    stack.services.wait_work_done(10)


@pytest.mark.parametrize("shape", ["fast", f"{SHAPES}/{MODEL}-fast"])
def test_a_shape_with_more_gpus_is_priced_on_them_and_needs_approval(gated, shape):
    deploy(gated, "sh-1")  # 2 replicas × 1 H100: $16/h
    gated.fw(f"update sh-1 --deployment-shape {shape}")
    msg = gated.ws.wait_for(lambda: request_messages(gated) or None, timeout=10)[0]
    text = message_text(msg)
    assert "$16.00/h → $32.00/h" in text and "1 × H100 → 2 × H100" in text, text
    assert gated.sdk().deployments.get("sh-1").accelerator_count == 1  # waits for the approver
    button = next(e["value"] for b in msg.blocks or [] for e in b.get("elements") or []
                  if e.get("action_id") == "approval_approve")
    gated.ws.click("U_APPROVER", APPROVALS, msg.ts, "approval_approve")
    done = gated.ws.wait_for(lambda: (r := gated.services.store.approval(button)).result and r, timeout=15)
    assert done.result["ok"], done.result  # the re-check before the run priced the same hardware
    dep = gated.sdk().deployments.get("sh-1")
    assert dep.accelerator_count == 2 and "fast" in dep.deployment_shape


def test_a_shape_that_lowers_the_price_runs_at_once_and_says_so(gated):
    deploy(gated, "sh-low", "--max-replica-count 1 --accelerator-type h100 --accelerator-count 2")  # $16/h
    gated.fw(f"update sh-low --deployment-shape {SHAPES}/{MODEL}-minimal")
    text = told(gated, "updated `sh-low`")
    assert "$16.00/h → $8.00/h" in text and "2 × H100 → 1 × H100" in text, text
    assert gated.sdk().deployments.get("sh-low").accelerator_count == 1
    assert request_messages(gated) == []


def test_a_shape_on_other_hardware_at_the_same_price_shows_the_hardware(gated):
    deploy(gated, "sh-same")
    gated.fw("update sh-same --deployment-shape throughput --dry-run")
    text = told(gated, "Dry run")
    assert "1 × H100 → 1 × H200" in text and "$16.00/h → $16.00/h" in text, text
    assert gated.sdk().deployments.get("sh-same").accelerator_type == "NVIDIA_H100_80GB"


def test_a_shape_fwbot_cannot_price_is_not_priced_as_the_old_hardware(gated):
    deploy(gated, "sh-odd")
    gated.fw(f"update sh-odd --deployment-shape {SHAPES}/qwen3-8b-fast")
    msg = gated.ws.wait_for(lambda: request_messages(gated) or None, timeout=10)[0]
    text = message_text(msg)
    assert "$16.00/h → $16.00/h" not in text and "no known price" in text, text


def test_a_preset_the_model_lacks_is_refused(gated):
    deploy(gated, "sh-none")
    gated.fw("update sh-none --deployment-shape agentic-coding")
    assert "agentic-coding" in told(gated, "no deployment shape")
    assert request_messages(gated) == []


# -- 15. a button that carries a change is checked as the command is --------------------------------
_clicks = itertools.count(1)


def forged_click(stack, user: str, ts: str, action_id: str, value: str) -> Delivery:
    """A click on an ephemeral confirmation, signed as Slack signs it, with any value we like."""
    ws = stack.ws
    where = next(c for c in ws.channels if c.id == CHANNEL)
    n = next(_clicks)
    payload = payloads.block_actions(
        team_id=ws.team_id, domain=ws.domain, user=ws.user(user), trigger_id=f"1.2.forged{n}",
        actions=[{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                  "action_ts": f"2.{n:06d}"}],
        token=ws.verification_token, container={"type": "message", "message_ts": ts, "channel_id": CHANNEL,
                                                "is_ephemeral": True},
        response_url=ws.new_response_url(user, CHANNEL, message_ts=ts), channel=where, message=None)
    body = payloads.interactive_body(payload)
    return ws.send_raw(body, ws.signed_headers(body))


def scale_confirmation(stack, dep_id: str):
    """An admin's `/fw scale <id> 0` on someone else's deployment: the confirm_scale button."""
    stack.fw(f"scale {dep_id} 0", user="U_ADMIN")
    return stack.ws.wait_for(lambda: next((m for m in reversed(stack.ephemerals("U_ADMIN"))
                                           if "confirm_scale" in json.dumps(m.blocks or [])), None), timeout=10)


def scales(stack, dep_id: str) -> int:
    return sum(1 for r in stack.services.store.audit_trail(dep_id) if r["action"] == "scale")


@pytest.mark.parametrize("value, needle", [
    ({"d": "sc-1", "r": 500}, "outside `sc-1`'s range (min 0, max 2)"),
    ({"d": "sc-1", "r": -1}, "not a replica count"),
    ({"d": "sc-1", "r": "2"}, "not a replica count"),
    ({"d": "sc-1", "r": 1.5}, "not a replica count"),
    ({"d": "sc-1", "r": True}, "not a replica count"),
    ({"d": "sc-1"}, "not a replica count"),
    ({"d": "../sc-1", "r": 0}, "nothing was changed"),
    ({"d": ["sc-1"], "r": 0}, "nothing was changed"),
    ({"d": "sc-nope", "r": 0}, "sc-nope"),
])
def test_a_forged_scale_button_gets_the_commands_checks(stack, value, needle):
    deploy(stack, "sc-1")
    confirm = scale_confirmation(stack, "sc-1")
    before = stack.sdk().deployments.get("sc-1").desired_replica_count
    assert forged_click(stack, "U_ADMIN", confirm.ts, "confirm_scale", json.dumps(value)).status == 200
    assert needle in told(stack, needle, user="U_ADMIN")
    assert stack.sdk().deployments.get("sc-1").desired_replica_count == before
    assert scales(stack, "sc-1") == 0


def test_a_scale_button_is_checked_against_the_range_as_it_is_now(stack):
    deploy(stack, "sc-2")
    confirm = scale_confirmation(stack, "sc-2")
    stack.fw("update sc-2 --min-replica-count 1")  # the owner raises the floor meanwhile
    told(stack, "updated `sc-2`")
    stack.ws.click("U_ADMIN", CHANNEL, confirm.ts, "confirm_scale")
    assert "(min 1, max 2)" in told(stack, "outside", user="U_ADMIN")
    assert scales(stack, "sc-2") == 0


def test_a_scale_button_in_other_hands_is_refused(stack):
    deploy(stack, "sc-3")
    confirm = scale_confirmation(stack, "sc-3")
    forged_click(stack, "U_OTHER", confirm.ts, "confirm_scale", json.dumps({"d": "sc-3", "r": 0}))
    assert "<@U_DEV>" in told(stack, "owned by", user="U_OTHER")
    assert scales(stack, "sc-3") == 0
    stack.ws.click("U_ADMIN", CHANNEL, confirm.ts, "confirm_scale")  # the real one still works
    told(stack, "Scaled `sc-3` to 0", user="U_ADMIN")
    assert scales(stack, "sc-3") == 1


def test_the_scale_command_refuses_what_the_button_refuses(stack):
    deploy(stack, "sc-4")
    stack.fw("scale sc-4 3")
    assert "(min 0, max 2)" in told(stack, "outside")
    stack.fw("scale sc-4 1", user="U_OTHER")
    told(stack, "owned by", user="U_OTHER")
    assert scales(stack, "sc-4") == 0


@pytest.mark.parametrize("hard", ["yes", 2, 0.5, [1]])
def test_a_forged_delete_button_value_deletes_nothing(stack, hard):
    deploy(stack, "del-1")
    assert forged_click(stack, "U_DEV", "1.000001", "confirm_delete",
                        json.dumps({"d": "del-1", "h": hard})).status == 200
    told(stack, "not one fwbot made")
    assert stack.sdk().deployments.get("del-1").state not in ("DELETED", "DELETING")


# -- 5. a reply whose response_url fails reaches the person anyway ----------------------------------
def break_response_urls(stack, monkeypatch, status: int | None, *, hang_s: float = 0.0) -> list[str]:
    """Every response_url answers ``status`` (or hangs ``hang_s`` first); returns what was posted."""
    seen: list[str] = []

    def failing(token, body):
        seen.append(body.get("text") or "")
        if hang_s:
            time.sleep(hang_s)
        return status or 504, "expired_url" if status == 404 else "upstream_error"

    monkeypatch.setattr(stack.ws, "handle_response_url", failing)
    return seen


def fallbacks(stack, user="U_DEV") -> list[str]:
    return [c.params.get("text") or "" for c in stack.ws.calls_to("chat.postEphemeral")
            if c.params.get("user") == user]


@pytest.mark.parametrize("status", [404, 500, 400])
def test_a_failing_response_url_is_logged_and_the_reply_sent_directly(stack, monkeypatch, caplog, status):
    deploy(stack, "ru-1")
    seen = break_response_urls(stack, monkeypatch, status)
    with caplog.at_level(logging.WARNING, logger="fwbot"):
        stack.fw("get ru-1")
        stack.ws.wait_for(lambda: [t for t in fallbacks(stack) if "ru-1" in t] or None, timeout=10)
    assert seen and "ru-1" in seen[-1]  # it tried the response_url first
    assert f"HTTP {status}" in caplog.text and "response_url" in caplog.text


def test_a_response_url_that_hangs_counts_as_failed(stack, monkeypatch):
    deploy(stack, "ru-2")
    monkeypatch.setattr(handlers.replies, "RESPONSE_URL_TIMEOUT_S", 0.3)
    break_response_urls(stack, monkeypatch, None, hang_s=2.0)
    started = time.monotonic()
    stack.fw("get ru-2")
    stack.ws.wait_for(lambda: [t for t in fallbacks(stack) if "ru-2" in t] or None, timeout=10)
    assert time.monotonic() - started < 2.0


def test_a_button_reply_with_a_dead_response_url_still_arrives(stack, monkeypatch):
    deploy(stack, "ru-3")
    stack.fw("delete ru-3")
    confirm = stack.ws.wait_for(lambda: next((m for m in reversed(stack.ephemerals("U_DEV"))
                                              if "confirm_delete" in json.dumps(m.blocks or [])), None))
    break_response_urls(stack, monkeypatch, 404)
    stack.ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
    stack.ws.wait_for(lambda: [t for t in fallbacks(stack) if "Deleted `ru-3`" in t] or None, timeout=10)


def test_without_the_channel_the_reply_goes_to_a_dm(stack, monkeypatch):
    deploy(stack, "ru-4")
    break_response_urls(stack, monkeypatch, 404)
    stack.ws.script("chat.postEphemeral", error="user_not_in_channel", times=None)
    stack.fw("get ru-4")
    dm = stack.ws.dm_channel("U_DEV")
    stack.ws.wait_for(lambda: [m for m in stack.ws.messages(dm) if "ru-4" in message_text(m)] or None, timeout=10)


def test_an_expired_response_url_of_the_stand_in_itself(tmp_path):
    """No patching: the stand-in's own 30-minute expiry answers 404 ``expired_url``."""
    from bot.core.clock import FakeClock

    clock = FakeClock()
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, clock=clock)
    ws.start(host="127.0.0.1", port=0)
    seed_workspace(ws)
    stack = start_stack(tmp_path, ws=ws, sim_config={"create_seconds": 0.0})
    try:
        deploy(stack, "ru-5")
        slow_down(stack, r"/deployments/ru-5$", 0.5)  # the answer comes after the URL expired
        assert stack.fw("get ru-5").status == 200
        clock.advance(31 * 60)
        stack.ws.wait_for(lambda: [t for t in fallbacks(stack) if "ru-5" in t] or None, timeout=10)
    finally:
        stack.stop()
