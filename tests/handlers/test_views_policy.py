"""The deploy form under a team policy: it offers only what the policy allows the person opening it
in that channel, shows the limits and the lifetime with their sources, and refuses a forbidden
submission on the field to blame, creating nothing.

Driven through the Slack stand-in (signed requests into the bot, the simulator over HTTP, a real
database) with a policy file named by FWBOT_POLICY_FILE. H100s cost $8/GPU-hour.
"""

from __future__ import annotations

import json

import pytest

from bot.core.names import REGIONS
from bot.core.policy import EXAMPLE
from tests.fixtures.policies import write_policy
from tests.harness import ALERTS, CHANNEL, start_stack

SMALL = "accounts/fireworks/models/llama-v3p1-8b-instruct"  # 1 GPU per replica
BIG = "accounts/fireworks/models/llama-v3p1-70b-instruct"  # 2 GPUs per replica; shapes on H100 and H200
H100, H200, B200 = "NVIDIA_H100_80GB", "NVIDIA_H200_141GB", "NVIDIA_B200_180GB"
US = [r for r in REGIONS if r.startswith("US_")]


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    write_policy(path, EXAMPLE)  # C0MLPLAT (the harness's CHANNEL) has a rule of its own; S0MLTEAM too
    return path


@pytest.fixture
def stack(tmp_path, policy_file):
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.0}, env={"FWBOT_POLICY_FILE": str(policy_file)})
    s.ws.add_usergroup("S0MLTEAM", "ml-team", users=["U_OTHER"])
    yield s
    s.stop()


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def open_form(stack, user="U_DEV", channel=CHANNEL):
    r = stack.fw("deploy", user=user, channel=channel)
    assert r.status == 200 and r.elapsed < 3.0
    return stack.ws.wait_for(lambda: (stack.ws.views_for(user) or [None])[-1])


def blocks(stack, view_id: str) -> dict[str, dict]:
    return {b.get("block_id"): b for b in stack.ws.view(view_id).view["blocks"]}


def contexts(stack, view_id: str) -> str:
    return dumps([b for b in stack.ws.view(view_id).view["blocks"] if b["type"] == "context"])


def values(block: dict) -> list[str]:
    return [o["value"] for o in block["element"]["options"]]


def hint(block: dict) -> str:
    return (block.get("hint") or {}).get("text", "")


def pick(stack, view_id: str, block: str, value: str, user="U_DEV") -> None:
    before = stack.ws.view(view_id).view["hash"]
    assert stack.ws.click_in_view(user, view_id, "v", block_id=block, value=value).status == 200
    stack.ws.wait_for(lambda: stack.ws.view(view_id).view["hash"] != before, timeout=10)


def chosen(value: str) -> dict:
    return {"type": "static_select", "selected_option": {"value": value, "text": {"type": "plain_text",
                                                                                   "text": value}}}


def created(stack) -> list[str]:
    return [d.name for d in stack.sdk().deployments.list()]


def test_the_form_offers_only_what_the_policy_allows_with_its_limits_and_lifetime(stack):
    view = open_form(stack)
    form = blocks(stack, view.id)
    # Models: the channel's rule (llama-v3p1-8b*, qwen*), matched on full names.
    models = values(form["model"])
    assert models and all(m.startswith(("accounts/fireworks/models/llama-v3p1-8b",
                                        "accounts/fireworks/models/qwen")) for m in models), models
    assert SMALL in models and BIG not in models
    assert "from channel C0MLPLAT" in hint(form["model"])
    # Accelerators: the defaults' H100 and H200, nothing else fwbot would offer (B200).
    assert values(form["acc_type"]) == [H100, H200]
    assert "accelerators, from defaults" in hint(form["acc_type"])
    # Regions: only US ones, and a region must be picked (no global placement); the first is preselected.
    assert values(form["region"]) == US and form["region"]["optional"] is False
    assert form["region"]["element"]["initial_option"]["value"] == US[0]
    assert "regions, from defaults" in hint(form["region"])
    # Limits as hints, each with its source.
    max_hint = hint(form["max"])
    assert "at most 2 replicas (max_replicas, from defaults)" in max_hint, max_hint
    assert "at most 2 GPUs in all" in max_hint and "max_gpus_per_deployment, from channel C0MLPLAT" in max_hint
    assert "72h (max_unused_auto_delete, from defaults)" in hint(form["unused"])
    assert "require_idle_policy, from defaults" in hint(form["unused"])
    assert "2h (max_scale_to_zero_window, from defaults)" in hint(form["stz"])
    text = contexts(stack, view.id)
    assert "Above $40.00/h worst case a deploy waits for an approver" in text
    assert "max_usd_per_hour_without_approval`, from defaults" in text
    # The lifetime that will apply: the channel's 3 days.
    assert "deleted after 3 days unless someone renews it (`max_lifetime`, from channel C0MLPLAT)" in text


def test_the_same_form_elsewhere_and_for_a_group_shows_their_rules(stack):
    view = open_form(stack, channel=ALERTS)  # no channel rule there: the defaults
    form = blocks(stack, view.id)
    assert BIG in values(form["model"])
    assert "deleted after 14 days unless someone renews it (`max_lifetime`, from defaults)" in contexts(stack, view.id)
    assert "at most 8 GPUs in all" in hint(form["max"])
    # U_OTHER is in S0MLTEAM, whose rule beats the channel's.
    view = open_form(stack, user="U_OTHER")
    form = blocks(stack, view.id)
    assert values(form["acc_type"]) == [H100, H200, B200]
    assert "at most 4 replicas (max_replicas, from usergroup S0MLTEAM)" in hint(form["max"])
    assert BIG in values(form["model"])


def test_shapes_the_policy_forbids_are_not_offered(stack, policy_file):
    write_policy(policy_file, """\
        [policy]
        accelerators = ["h200"]
        """)
    view = open_form(stack, channel=ALERTS)
    assert values(blocks(stack, view.id)["acc_type"]) == [H200]
    pick(stack, view.id, "model", BIG)
    shape = blocks(stack, view.id)["shape"]
    labels = [o["text"]["text"] for o in shape["element"]["options"][1:]]
    assert labels and all("H200" in label for label in labels), labels
    assert "not offered" in hint(shape) and "not allowed here" in shape["element"]["placeholder"]["text"]


def test_a_forbidden_submission_is_refused_on_its_fields_and_nothing_is_created(stack):
    view = open_form(stack)
    pick(stack, view.id, "model", SMALL)
    r = stack.ws.submit_view("U_DEV", view.id, values={
        "acc_count": {"v": "4"}, "min": {"v": "1"}, "max": {"v": "3"}, "deployment_id": {"v": "too-big"}})
    assert r.status == 200 and r.json["response_action"] == "errors", r.body
    errors = r.json["errors"]
    assert set(errors) == {"acc_count", "max", "unused"}, errors
    assert "the limit here is 2 (max_gpus_per_deployment, from channel C0MLPLAT)" in errors["acc_count"]
    assert "At most 2 replicas are allowed here, not 3 (max_replicas, from defaults)" in errors["max"]
    assert "1 replica up never scales to zero, so it needs an `--unused-auto-delete-duration`" in errors["unused"]
    assert "require_idle_policy, max_unused_auto_delete and max_scale_to_zero_window, from defaults" \
        in errors["unused"]
    assert created(stack) == [] and stack.services.store.deployment("too-big") is None
    assert stack.sim.state.count_requests("POST", "/v1/accounts/demo/deployments") == 0
    # Within the policy, the same form deploys.
    r = stack.ws.submit_view("U_DEV", view.id, values={
        "acc_count": {"v": "1"}, "min": {"v": "1"}, "max": {"v": "2"}, "unused": {"v": "48h"},
        "deployment_id": {"v": "within"}})
    assert r.status == 200 and not (r.json or {}).get("errors"), r.body
    stack.ws.wait_for(lambda: created(stack) or None, timeout=10)
    dep = stack.sdk().deployments.get("within")
    assert (dep.accelerator_type, dep.max_replica_count) == (H100, 2)


def test_a_scale_to_zero_window_longer_than_allowed_is_refused_at_its_field(stack):
    view = open_form(stack)
    assert "with min replicas 0, at most 2h (max_scale_to_zero_window, from defaults)" \
        in hint(blocks(stack, view.id)["stz"])
    pick(stack, view.id, "model", SMALL)
    r = stack.ws.submit_view("U_DEV", view.id, values={"min": {"v": "0"}, "max": {"v": "1"}, "stz": {"v": "3h"},
                                                       "deployment_id": {"v": "slow-to-sleep"}})
    assert r.json["response_action"] == "errors" and set(r.json["errors"]) == {"stz"}, r.body
    assert "Its scale-to-zero window, 3h, is longer than allowed here" in r.json["errors"]["stz"]
    assert created(stack) == []
    # Fireworks' default window (an hour) is within the 2h: min replicas 0 with no window deploys.
    r = stack.ws.submit_view("U_DEV", view.id, values={"stz": {"v": ""}, "deployment_id": {"v": "sleeps"}})
    assert r.status == 200 and not (r.json or {}).get("errors"), r.body
    stack.ws.wait_for(lambda: created(stack) or None, timeout=10)


def test_a_policy_changed_while_the_form_is_open_is_the_one_applied(stack, policy_file):
    view = open_form(stack, channel=ALERTS)
    pick(stack, view.id, "model", BIG, )
    write_policy(policy_file, EXAMPLE.replace('models = ["accounts/fireworks/models/*"]',
                                              'models = ["accounts/fireworks/models/qwen*"]', 1))
    r = stack.ws.submit_view("U_DEV", view.id, values={
        "model": {"v": chosen(BIG)}, "shape": {"v": chosen("none")}, "acc_type": {"v": chosen(H100)},
        "min": {"v": "0"}, "max": {"v": "1"}, "deployment_id": {"v": "stale"}})
    assert r.json["response_action"] == "errors", r.body
    assert set(r.json["errors"]) == {"model"}
    assert ("`llama-v3p1-70b-instruct` is not an allowed model here (models: accounts/fireworks/models/qwen*, "
            "from defaults)") in r.json["errors"]["model"]
    assert created(stack) == [] and stack.services.store.deployment("stale") is None


def test_when_nothing_is_allowed_the_form_says_which_rule_and_where_it_comes_from(stack, policy_file):
    write_policy(policy_file, """\
        [policy]
        models = ["accounts/acme/models/*"]
        accelerators = ["h100"]

        [[policy.rule]]
        channel = "C0ALERTS"
        regions = ["ZZ_*"]
        """)
    view = open_form(stack, channel=ALERTS)
    body = stack.ws.view(view.id).view
    text = dumps(body["blocks"])
    assert "no model in the catalog is allowed: models `accounts/acme/models/*` (models, from defaults)" \
        in text.replace("No model", "no model"), text
    assert "no region is allowed: regions `ZZ_*` (regions, from channel C0ALERTS)" in text.replace("No region",
                                                                                                  "no region")
    assert "`/fw deploy accounts/<account>/models/<id>`" in text.replace("&lt;", "<").replace("&gt;", ">")
    assert not body.get("submit") and "model" not in blocks(stack, view.id)


def test_without_a_policy_the_form_is_as_before(tmp_path):
    s = start_stack(tmp_path, sim_config={"create_seconds": 0.0})
    try:
        view = open_form(s)
        form = blocks(s, view.id)
        assert BIG in values(form["model"]) and B200 in values(form["acc_type"])
        assert values(form["region"])[0] == "global" and form["region"]["optional"] is True
        assert not hint(form["model"]) and not hint(form["max"])
        assert "Lifetime" not in contexts(s, view.id) and "approver" not in contexts(s, view.id)
    finally:
        s.stop()


def test_the_form_shows_the_schedule_the_policy_will_give_in_the_openers_zone(stack, policy_file):
    write_policy(policy_file, EXAMPLE.replace("max_lifetime = \"3d\"",
                                              "max_lifetime = \"3d\"\nschedule = \"down 19:00 Mon-Fri, up 08:00 Mon-Fri\"",
                                              1))
    view = open_form(stack)  # U_DEV is in Europe/Berlin
    shown = contexts(stack, view.id)
    assert "*Schedule:* scale to 0 at 19:00" in shown and "(Europe/Berlin)" in shown
    assert "(`schedule`, from channel C0MLPLAT)" in shown
    elsewhere = open_form(stack, channel=ALERTS)  # the defaults set no schedule
    assert "*Schedule:*" not in contexts(stack, elsewhere.id)
