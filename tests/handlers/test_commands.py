"""The /fw chat surface end to end: signed HTTP into the bot, the simulator over HTTP, real SQLite."""

from __future__ import annotations

import json
import time

import pytest

from bot.core.clock import FakeClock
from tests.harness import ALERTS, CHANNEL, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 60.0, "require_update_mask": True})
    yield s
    s.stop()


def deployments(stack, show_deleted=False):
    return list(stack.sdk().deployments.list(show_deleted=show_deleted))


def tracking_message(stack, dep_id):
    record = stack.services.store.deployment(dep_id)
    assert record is not None and record.thread_ts
    return stack.ws.message(record.channel, record.thread_ts)


def deploy(stack, text, user="U_DEV"):
    before = {d.name for d in deployments(stack)}
    r = stack.fw(text, user=user)
    assert r.status == 200
    dep = stack.ws.wait_for(lambda: [d for d in deployments(stack) if d.name not in before] or None)
    assert len(dep) == 1
    return dep[0]


def test_deploy_is_acked_fast_creates_exactly_that_and_turns_ready(stack, clock):
    r = stack.fw(f"deploy {MODEL} --min-replica-count 1 --max-replica-count 2 --accelerator-type h100")
    assert r.status == 200 and r.elapsed < 3.0
    deps = stack.ws.wait_for(lambda: deployments(stack) or None)
    assert len(deps) == 1
    dep = deps[0]
    assert dep.base_model == f"accounts/fireworks/models/{MODEL}"
    assert (dep.min_replica_count, dep.max_replica_count) == (1, 2)
    assert dep.accelerator_type == "NVIDIA_H100_80GB"
    dep_id = dep.name.rsplit("/", 1)[-1]

    record = stack.ws.wait_for(lambda: stack.services.store.deployment(dep_id))
    assert record.owner == "U_DEV" and record.channel == CHANNEL and record.created_by_bot
    # Posted before the create and edited after it, or (when the channel's slot was taken) posted
    # once its turn came, rendered then: either way it shows the deployment being created.
    msg = stack.ws.wait_for(lambda: (m := tracking_message(stack, dep_id)) and "$16.00/h" in message_text(m) and m)
    text = message_text(msg)
    assert "Creating" in text and "$16.00/h" in text and "<@U_DEV>" in text

    clock.advance(61)
    stack.sync()
    msg = tracking_message(stack, dep_id)
    assert msg.edited and "READY in 1m1s" in message_text(msg)
    # a second sync changes nothing (idempotent)
    calls = len(stack.ws.calls)
    stack.sync()
    assert len(stack.ws.calls) == calls

    db = stack.services.store.db
    if db.dialect == "sqlite":
        assert db.journal_mode() == "wal"
    rows = db.query("SELECT actor, action, result FROM audit WHERE deployment_id = :d", {"d": dep_id})
    assert {"actor": "U_DEV", "action": "deploy", "result": "ok"} in rows


def test_min_greater_than_max_names_the_problem_and_creates_nothing(stack):
    r = stack.fw("deploy --min-replica-count 3 --max-replica-count 1 x")
    assert r.status == 200
    text = json.dumps(r.json)
    assert "min-replica-count" in text and "greater than" in text and "Usage" in text
    assert deployments(stack) == []


@pytest.mark.parametrize("text, needle", [
    (f"deploy {MODEL} --scale-to-zero-window 5 minutes", "duration"),
    (f"deploy {MODEL} --accelerator-type h900", "accelerator"),
    (f"deploy {MODEL} --min-replica-count -1", "replica"),
    (f"deploy {MODEL} --deployment-id Bad_Id", "deployment id"),
    (f"deploy {MODEL} --max-replica-count two", "max-replica-count"),
    (f"deploy {MODEL} --frobnicate", "frobnicate"),
    ("deplooy x", "deploy"),
    ("scale", "Usage"),
])
def test_bad_input_gets_a_clear_ephemeral_and_changes_nothing(stack, text, needle):
    r = stack.fw(text)
    assert r.status == 200
    body = json.dumps(r.json)
    assert needle.lower() in body.lower()
    assert deployments(stack) == []


def test_unknown_model_is_named(stack):
    stack.fw("deploy no-such-model-v9")
    text = stack.wait_ephemeral("unknown model")
    assert "no-such-model-v9" in text
    assert deployments(stack) == []


def test_forged_requests_get_401_and_do_nothing(stack):
    body = b"command=%2Ffw&text=deploy+llama-v3p1-8b-instruct&user_id=U_DEV&channel_id=" + CHANNEL.encode()
    unsigned = stack.ws.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded"})
    wrong = stack.ws.send_raw(body, {**stack.ws.signed_headers(body, secret="not-the-secret"),
                                     "Content-Type": "application/x-www-form-urlencoded"})
    old = stack.ws.send_raw(body, {**stack.ws.signed_headers(body, timestamp=int(time.time()) - 600),
                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert (unsigned.status, wrong.status, old.status) == (401, 401, 401)
    time.sleep(0.3)
    assert deployments(stack) == []
    assert stack.ws.calls_to("chat.postMessage") == []


def test_list_get_update_scale_delete_undelete(stack, clock):
    dep = deploy(stack, f"deploy {MODEL} --deployment-id web-1 --max-replica-count 2")
    clock.advance(61)
    stack.sync()

    stack.fw("list mine")
    assert "web-1" in stack.wait_ephemeral("deployment")
    stack.fw("list all", user="U_OTHER")
    assert "web-1" in stack.wait_ephemeral("web-1", user="U_OTHER")
    stack.fw("get web-1")
    assert "READY" in stack.wait_ephemeral("Replicas")

    stack.fw("update web-1 --max-replica-count 3 --scale-to-zero-window 20m")
    text = stack.wait_ephemeral("updated")
    assert "$24.00/h" in text
    dep = stack.sdk().deployments.get("web-1")
    assert dep.max_replica_count == 3 and dep.autoscaling_policy.scale_to_zero_window == "1200s"
    assert dep.min_replica_count == 0  # untouched: the simulator here rejects a PATCH without updateMask

    stack.fw("scale web-1 2")
    stack.wait_ephemeral("scaled")
    assert stack.sdk().deployments.get("web-1").desired_replica_count == 2

    stack.fw("delete web-1")
    text = stack.wait_ephemeral("Delete `web-1`")
    confirm = [m for m in stack.ephemerals("U_DEV") if "Delete `web-1`" in message_text(m)][-1]
    assert stack.sdk().deployments.get("web-1").state != "DELETED"  # nothing until confirmed
    stack.ws.click("U_DEV", CHANNEL, confirm.ts, "confirm_delete")
    stack.ws.wait_for(lambda: stack.sdk().deployments.get("web-1").state in ("DELETED", "DELETING") or None)

    stack.fw("undelete web-1")
    stack.wait_ephemeral("undeleted")
    assert stack.sdk().deployments.get("web-1").state not in ("DELETED", "DELETING")
    actions = [r["action"] for r in stack.services.store.audit_trail("web-1")]
    assert {"deploy", "update", "scale", "delete", "undelete"} <= set(actions)


def test_non_owner_cannot_change_or_delete(stack, clock):
    deploy(stack, f"deploy {MODEL} --deployment-id mine-1")
    for text in ("delete mine-1", "scale mine-1 0", "update mine-1 --max-replica-count 2"):
        stack.fw(text, user="U_OTHER")
        reply = stack.wait_ephemeral("owned by", user="U_OTHER")
        assert "<@U_DEV>" in reply
    dep = stack.sdk().deployments.get("mine-1")
    assert dep.state != "DELETED" and dep.max_replica_count == 1
    # an admin may
    stack.fw("scale mine-1 1", user="U_ADMIN")
    stack.wait_ephemeral("scaled", user="U_ADMIN")


def test_lora_load_and_unload(stack, clock):
    deploy(stack, f"deploy {MODEL} --deployment-id lora-base --enable-addons")
    clock.advance(61)
    sdk = stack.sdk()
    sdk.models.create(model_id="my-adapter", model={
        "kind": "HF_PEFT_ADDON", "peft_details": {"base_model": f"accounts/fireworks/models/{MODEL}", "r": 8,
                                                  "target_modules": ["q_proj"]}})
    clock.advance(30)
    stack.fw("lora load my-adapter --deployment lora-base")
    stack.wait_ephemeral("loaded LoRA")
    loaded = [m.model for m in sdk.lora.list()]
    assert "accounts/demo/models/my-adapter" in loaded
    stack.fw("lora unload my-adapter --deployment lora-base")
    stack.wait_ephemeral("unloaded LoRA")
    assert "accounts/demo/models/my-adapter" not in [m.model for m in sdk.lora.list()]


def test_dry_run_validates_and_creates_nothing(stack):
    stack.fw(f"deploy {MODEL} --max-replica-count 4 --accelerator-type h200 --dry-run")
    text = stack.wait_ephemeral("Dry run")
    assert "$32.00/h" in text
    assert deployments(stack) == []


def test_deploy_modal_validates_inline_then_creates(stack):
    view, picked = stack.open_deploy_form(MODEL)
    bad = stack.ws.submit_view("U_DEV", view.id, values={
        **picked, "acc_count": {"v": "1"}, "min": {"v": "3"}, "max": {"v": "1"}, "stz": {"v": "soon"}})
    assert bad.json["response_action"] == "errors"
    assert set(bad.json["errors"]) >= {"min", "stz"}
    assert deployments(stack) == []
    good = stack.ws.submit_view("U_DEV", view.id, values={
        **picked, "acc_count": {"v": "1"}, "min": {"v": "1"}, "max": {"v": "2"}, "stz": {"v": ""},
        "deployment_id": {"v": "from-modal"}})
    assert good.status == 200
    dep = stack.ws.wait_for(lambda: [d for d in deployments(stack) if d.name.endswith("/from-modal")] or None)[0]
    assert (dep.min_replica_count, dep.max_replica_count) == (1, 2)


def test_models_and_query(stack, clock):
    stack.fw("models llama")
    assert MODEL in stack.wait_ephemeral("deployable base models")
    deploy(stack, f"deploy {MODEL} --deployment-id q-1 --min-replica-count 1")
    clock.advance(61)
    stack.fw("query q-1 Say hello")
    text = stack.wait_ephemeral("Answer")
    assert "answered in" in text


def test_help_lists_every_verb(stack):
    r = stack.fw("help")
    body = json.dumps(r.json)
    for verb in ("deploy", "list", "get", "update", "scale", "delete", "undelete", "lora", "models", "query"):
        assert verb in body
    assert "Approvals are off" in body


def test_deployments_made_outside_are_offered_for_adoption(stack, clock):
    stack.sdk().deployments.create(base_model=f"accounts/fireworks/models/{MODEL}", deployment_id="from-firectl",
                                   accelerator_type="NVIDIA_H100_80GB", min_replica_count=1, max_replica_count=1)
    stack.sync()
    stack.sync()
    offers = [m for m in stack.ws.messages(ALERTS) if "from-firectl" in message_text(m)]
    assert len(offers) == 1
    stack.ws.click("U_OTHER", ALERTS, offers[0].ts, "adopt")
    stack.ws.wait_for(lambda: (stack.services.store.deployment("from-firectl").owner == "U_OTHER") or None)


def test_deleted_outside_the_bot_is_noticed(stack, clock):
    deploy(stack, f"deploy {MODEL} --deployment-id vanish")
    clock.advance(61)
    stack.sync()
    stack.sdk().deployments.delete("vanish", hard=True, ignore_checks=True)
    stack.sync()
    record = stack.services.store.deployment("vanish")
    assert record.gone_at is not None
    thread = stack.ws.thread(record.channel, record.thread_ts)
    assert any("deleted outside fwbot" in message_text(m) for m in thread)


def test_deploy_modal_offers_validated_shapes_with_cost(stack):
    stack.fw("deploy")
    view = stack.ws.wait_for(lambda: (stack.ws.views_for("U_DEV") or [None])[-1])
    model = f"accounts/fireworks/models/{MODEL}"
    stack.ws.click_in_view("U_DEV", view.id, "v", block_id="model", value=model)
    updated = stack.ws.wait_for(lambda: (v := stack.ws.view(view.id)) and "Fast" in json.dumps(v.view) and v)
    shape_block = next(b for b in updated.view["blocks"] if b.get("block_id") == "shape")
    options = shape_block["element"]["options"]
    fast = next(o for o in options if o["text"]["text"].startswith("Fast"))
    assert "$" in fast["text"]["text"]
    stack.ws.click_in_view("U_DEV", view.id, "v", block_id="shape", value=fast["value"])
    stack.ws.wait_for(lambda: "per replica" in json.dumps(stack.ws.view(view.id).view))
    r = stack.ws.submit_view("U_DEV", view.id, values={"deployment_id": {"v": "shaped"}, "min": {"v": "0"},
                                                       "max": {"v": "1"}})
    assert r.status == 200, r.json
    dep = stack.ws.wait_for(lambda: [d for d in deployments(stack) if d.name.endswith("/shaped")] or None)[0]
    assert dep.deployment_shape and "fast" in dep.deployment_shape


def test_deploy_with_a_shape_preset(stack):
    deploy(stack, f"deploy {MODEL} --deployment-id preset-1 --deployment-shape throughput")
    dep = stack.sdk().deployments.get("preset-1")
    assert "throughput" in dep.deployment_shape
    r = stack.fw(f"deploy {MODEL} --deployment-shape no-such-preset-x")
    assert "deployment-shape" in json.dumps(r.json)
    assert [d.name for d in deployments(stack)] == ["accounts/demo/deployments/preset-1"]


def test_many_deployments_made_outside_are_offered_in_one_message(stack, clock):
    sdk = stack.sdk()
    for i in range(6):
        sdk.deployments.create(base_model=f"accounts/fireworks/models/{MODEL}", deployment_id=f"ext-{i}",
                               accelerator_type="NVIDIA_H100_80GB", min_replica_count=1, max_replica_count=1)
    stack.sync()
    stack.sync()
    offers = [m for m in stack.ws.messages(ALERTS) if m.ephemeral_to is None]
    assert len(offers) == 1 and "6 deployments were created outside fwbot" in message_text(offers[0])
    stack.ws.click("U_OTHER", ALERTS, offers[0].ts, "adopt_listed_3", value="ext-3")
    record = stack.ws.wait_for(lambda: (r := stack.services.store.deployment("ext-3")).thread_ts and r)
    assert record.owner == "U_OTHER" and record.channel == ALERTS
    assert "ext-3" in message_text(stack.ws.message(ALERTS, record.thread_ts))
    assert "You now own `ext-3`" in stack.wait_ephemeral("You now own", user="U_OTHER", channel=ALERTS)


def test_adopt_by_command_gives_the_deployment_a_tracking_message(stack):
    stack.sdk().deployments.create(base_model=f"accounts/fireworks/models/{MODEL}", deployment_id="mine-now",
                                   accelerator_type="NVIDIA_H100_80GB", min_replica_count=1, max_replica_count=1)
    stack.fw("adopt mine-now")
    assert "adopted `mine-now`" in stack.wait_ephemeral("adopted")
    record = stack.services.store.deployment("mine-now")
    assert record.owner == "U_DEV" and record.channel == CHANNEL and record.thread_ts


@pytest.mark.parametrize("text, needle", [
    ("undelete dry-1 --dry-run", "would undelete `dry-1`"),
    ("owner dry-1 <@U0NEWOWNER|newowner> --dry-run", "would make <@U0NEWOWNER> the owner"),
    ("lora load my-adapter --deployment dry-1 --dry-run", "would load `demo/my-adapter`"),
])
def test_dry_runs_check_who_may_and_change_nothing(stack, text, needle):
    deploy(stack, f"deploy {MODEL} --deployment-id dry-1")
    stack.fw(text)
    assert needle in stack.wait_ephemeral("Dry run")
    stack.fw(text, user="U_OTHER")
    assert "owned by" in stack.wait_ephemeral("owned by", user="U_OTHER")
    record = stack.services.store.deployment("dry-1")
    assert record.owner == "U_DEV"
    assert [r["action"] for r in stack.services.store.audit_trail("dry-1")] == ["deploy"]


def test_scale_with_firectls_replica_count_flag_reaches_fireworks(stack, clock):
    deploy(stack, f"deploy {MODEL} --deployment-id flag-1 --max-replica-count 3")
    clock.advance(61)
    stack.sync()
    stack.fw("scale flag-1 --replica-count 2")
    assert "2 replicas" in stack.wait_ephemeral("scaled")
    assert stack.sdk().deployments.get("flag-1").desired_replica_count == 2
    stack.fw("scale flag-1 1 --replica-count 2")
    assert "not both" in stack.wait_ephemeral("not both")
    assert stack.sdk().deployments.get("flag-1").desired_replica_count == 2
