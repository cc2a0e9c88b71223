"""firectl's serving flags on ``/fw deploy`` and ``/fw update``, end to end.

Signed ``/fw`` commands into the bot, the Fireworks simulator over HTTP (which stores, validates
and echoes every one of these fields as Fireworks would), a real SQLite file. Each flag goes
``/fw deploy … --flag`` → Fireworks → ``/fw get`` (and the tracking message where it matters);
updates change what firectl lets change and refuse placement; bad values and contradictory
combinations are refused with the flag, the value and what is allowed; a single-region
deployment's worst case is ×1.5 wherever fwbot shows it; the deploy form takes precision and
region through the same validator as the command.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from handlers.views import validate_form
from tests.harness import APPROVALS, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"  # 1 × H100 per replica: $8.00/h at list price
WITH_DRAFT = "llama-v3p3-70b-instruct"  # the simulator's catalog gives it a default draft model
DRAFT = "llama-v3p2-3b-instruct"
FULL = "accounts/fireworks/models/"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


# --- helpers ------------------------------------------------------------------------------------

def wire(stack, dep_id: str) -> dict[str, Any]:
    """The deployment as Fireworks (the simulator, over HTTP) shows it."""
    r = httpx.get(f"{stack.sim.url}/v1/accounts/demo/deployments/{dep_id}",
                  headers={"Authorization": "Bearer sim-key"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def deploy(stack, dep_id: str, flags: str, model: str = MODEL) -> dict[str, Any]:
    r = stack.fw(f"deploy {model} --deployment-id {dep_id} {flags}")
    assert r.status == 200 and not (r.json or {}).get("blocks"), r.body  # acked, no usage error
    stack.ws.wait_for(lambda: (rec := stack.services.store.deployment(dep_id)) is not None
                      and rec.state is not None and rec.thread_ts, timeout=10)
    return wire(stack, dep_id)


def answer(stack, text: str, needle: str, user: str = "U_DEV") -> str:
    """``/fw text``'s answer containing ``needle``: in the ack (usage errors) or posted after it."""
    before = len(stack.ephemerals(user))
    r = stack.fw(text, user=user)
    if r.json and r.json.get("blocks"):
        body = json.dumps(r.json, ensure_ascii=False)
        assert needle in body, body
        return body

    def found():
        for m in stack.ephemerals(user)[before:]:
            if needle in message_text(m):
                return message_text(m)
        return None

    return stack.ws.wait_for(found, timeout=10)


def get_text(stack, dep_id: str) -> str:
    return answer(stack, f"get {dep_id}", "*State:*")


def tracking_text(stack, dep_id: str) -> str:
    record = stack.services.store.deployment(dep_id)
    return message_text(stack.ws.message(record.channel, record.thread_ts))


def names(stack) -> list[str]:
    return [d.name for d in stack.sdk().deployments.list()]


# --- 1. every flag round-trips ------------------------------------------------------------------

def _placement(w):
    return w["placement"]


ROUND_TRIP = {
    # flag: (flags as typed, model, what Fireworks stores, in /fw get, in the tracking message or None)
    "precision": ("--precision fp16", MODEL, lambda w: w["precision"] == "FP16", "*Precision:* FP16", "FP16"),
    "region": ("--region eu-frankfurt-1", MODEL, lambda w: _placement(w) == {"region": "EU_FRANKFURT_1"},
               "*Placement:* `EU_FRANKFURT_1` only (single-region placement ×1.5)",
               "`EU_FRANKFURT_1` only (single-region placement ×1.5)"),
    "long-prompt": ("--long-prompt", MODEL, lambda w: w["autoTune"] == {"longPrompt": True},
                    "*Long-prompt tuning:* on", None),
    "max-context-length": ("--max-context-length 8192", MODEL, lambda w: w["maxContextLength"] == 8192,
                           "*Context length:* 8,192 tokens", "context 8,192 tokens"),
    "draft-model": (f"--draft-model {DRAFT} --draft-token-count 4", MODEL,
                    lambda w: (w["draftModel"], w["draftTokenCount"]) == (FULL + DRAFT, 4),
                    f"*Speculative decoding:* draft model `{DRAFT}`, 4 tokens per step",
                    f"speculative decoding: draft model `{DRAFT}`, 4 tokens per step"),
    "draft-token-count": ("--draft-token-count 6", WITH_DRAFT,
                          lambda w: (w["draftModel"], w["draftTokenCount"]) == (FULL + DRAFT, 6),
                          f"*Speculative decoding:* draft model `{DRAFT}`, 6 tokens per step",
                          f"draft model `{DRAFT}`, 6 tokens per step"),
    "ngram-speculation-length": ("--ngram-speculation-length 8 --draft-token-count 3", MODEL,
                                 lambda w: (w["ngramSpeculationLength"], w["draftTokenCount"], w["draftModel"])
                                 == (8, 3, ""),
                                 "*Speculative decoding:* n-gram, length 8, 3 tokens per step",
                                 "speculative decoding: n-gram, length 8, 3 tokens per step"),
    "disable-speculative-decoding": ("--disable-speculative-decoding", WITH_DRAFT,
                                     lambda w: (w["draftModel"], w["draftTokenCount"]) == ("", 0),
                                     "*Speculative decoding:* off", "speculative decoding: off"),
    "enable-mtp": ("--enable-mtp", MODEL, lambda w: w["enableMtp"] is True,
                   "*Speculative decoding:* multi-token prediction (MTP)", "multi-token prediction (MTP)"),
    "enable-session-affinity": ("--enable-session-affinity", MODEL, lambda w: w["enableSessionAffinity"] is True,
                                "*Session affinity:* on", None),
    "description": ('--description "Evals for the search team, week 47"', MODEL,
                    lambda w: w["description"] == "Evals for the search team, week 47",
                    "*Description:* Evals for the search team, week 47", "Evals for the search team, week 47"),
}


def test_the_round_trip_table_covers_every_new_flag():
    from tests.core.test_grammar import SPEC_DEPLOY_FLAGS

    # --override is fwbot's own (a reason to go ahead against the policy), never sent to Fireworks.
    new = [f for f in SPEC_DEPLOY_FLAGS[SPEC_DEPLOY_FLAGS.index("precision"):-1] if f != "override"] + ["description"]
    assert sorted(ROUND_TRIP) == sorted(new)


@pytest.mark.parametrize("flag", sorted(ROUND_TRIP))
def test_every_flag_round_trips_from_deploy_through_fireworks_to_get(stack, flag):
    flags, model, stored, in_get, in_tracking = ROUND_TRIP[flag]
    w = deploy(stack, "flagged", flags, model=model)
    assert stored(w), w
    assert in_get in get_text(stack, "flagged")
    if in_tracking:
        stack.ws.wait_for(lambda: in_tracking in tracking_text(stack, "flagged"), timeout=10)


def test_disable_speculative_decoding_is_what_turns_the_models_default_off(stack):
    w = deploy(stack, "with-default", "", model=WITH_DRAFT)
    assert (w["draftModel"], w["draftTokenCount"]) == (FULL + DRAFT, 4)
    assert f"*Speculative decoding:* draft model `{DRAFT}`, 4 tokens per step" in get_text(stack, "with-default")
    # On create it travels as the query parameter disableSpeculativeDecoding (contract §2.1).
    w = deploy(stack, "without", "--disable-speculative-decoding", model=WITH_DRAFT)
    assert (w["draftModel"], w["draftTokenCount"], w["ngramSpeculationLength"], w["enableMtp"]) == ("", 0, 0, False)
    assert "*Speculative decoding:* off" in get_text(stack, "without")


def test_all_flags_at_once_and_the_dry_run_lists_them(stack):
    dry = answer(stack, f"deploy {MODEL} --precision bf16 --region ap-tokyo-1 --long-prompt --max-context-length 4096 "
                        f"--draft-model {DRAFT} --draft-token-count 4 --enable-mtp --enable-session-affinity "
                        '--description "night batch" --dry-run', "Dry run")
    for needle in ("*Precision:* BF16", "*Placement:* `AP_TOKYO_1` only — single-region placement ×1.5",
                   "*Context length:* 4,096 tokens", "*Long-prompt tuning:* on",
                   f"*Speculative decoding:* draft model `{DRAFT}`, 4 tokens per step; multi-token prediction (MTP)",
                   "*Session affinity:* on", "*Description:* night batch"):
        assert needle in dry, (needle, dry)
    assert names(stack) == []  # validated by Fireworks, nothing created


# --- 2. update ----------------------------------------------------------------------------------

def test_update_changes_what_firectl_lets_change(stack):
    deploy(stack, "tuned", "")
    text = answer(stack, 'update tuned --precision bf16 --max-context-length 4096 --long-prompt --enable-mtp '
                         '--enable-session-affinity --description "now tuned"', "updated")
    for needle in ("*Precision:* FP8 → BF16", "*Context length:* the model's default → 4,096 tokens",
                   "*Long-prompt tuning:* off → on", "*Multi-token prediction:* off → on",
                   "*Session affinity:* off → on", "*Description:* — → now tuned"):
        assert needle in text, (needle, text)
    w = wire(stack, "tuned")
    assert (w["precision"], w["maxContextLength"], w["autoTune"], w["enableMtp"], w["enableSessionAffinity"],
            w["description"]) == ("BF16", 4096, {"longPrompt": True}, True, True, "now tuned")
    shown = get_text(stack, "tuned")
    assert "*Precision:* BF16" in shown and "*Context length:* 4,096 tokens" in shown

    # --flag=false turns an on/off setting off again.
    answer(stack, "update tuned --enable-mtp=false --long-prompt=false", "updated")
    w = wire(stack, "tuned")
    assert (w["enableMtp"], w["autoTune"]["longPrompt"]) == (False, False)

    # Speculative decoding from a draft model, then n-grams refused while the draft model is there.
    text = answer(stack, f"update tuned --draft-model {DRAFT} --draft-token-count 5", "updated")
    assert f"*Draft model:* none → `{DRAFT}`" in text
    assert wire(stack, "tuned")["draftModel"] == FULL + DRAFT
    text = answer(stack, "update tuned --ngram-speculation-length 8", "cannot go with")
    assert f"the draft model it has (`{DRAFT}`)" in text
    assert wire(stack, "tuned")["ngramSpeculationLength"] == 0


def test_update_refuses_a_region_because_placement_cannot_change_in_place(stack):
    deploy(stack, "placed", "--region us-iowa-1")
    text = answer(stack, "update placed --region eu-frankfurt-1", "cannot be changed")
    assert "`--region` cannot be changed with `/fw update`: placement cannot be changed in place" in text
    text = answer(stack, "update placed --disable-speculative-decoding", "cannot be changed")
    assert "only when a deployment is created" in text
    assert wire(stack, "placed")["placement"] == {"region": "US_IOWA_1"}
    # Fireworks itself (the simulator) refuses a placement change on PATCH.
    r = httpx.patch(f"{stack.sim.url}/v1/accounts/demo/deployments/placed",
                    params={"updateMask": "placement"}, headers={"Authorization": "Bearer sim-key"},
                    json={"baseModel": FULL + MODEL, "placement": {"region": "EU_FRANKFURT_1"}}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == 9 and "placement cannot be changed" in r.json()["message"]


def test_update_precision_of_a_shaped_deployment_is_refused_in_words(stack):
    deploy(stack, "shaped", "--deployment-shape minimal")
    text = answer(stack, "update shaped --precision bf16", "validated shape")
    assert "`--precision` cannot change a deployment on a validated shape" in text
    assert wire(stack, "shaped")["precision"] == "FP8"


def test_update_with_an_unknown_draft_model_names_the_closest(stack):
    deploy(stack, "drafty", "")
    text = answer(stack, "update drafty --draft-model llama-v3p2-3b-instruc --draft-token-count 4", "unknown model")
    assert "`--draft-model`" in text and f"`{DRAFT}`" in text
    assert wire(stack, "drafty")["draftModel"] == ""


# --- 5. bad values ------------------------------------------------------------------------------

BAD = [
    # (flags, what the answer must say)
    ("--precision fp9", ["`--precision`", "`fp9`", "`FP8`", "`BF16`"]),
    ("--precision precision_unspecified", ["`--precision`", "`precision_unspecified`", "use one of"]),
    ("--region mars", ["`--region`", "`mars`", "`US_IOWA_1`"]),
    ("--region global", ["`--region`", "`global` is a multi-region"]),
    ("--region us", ["`--region`", "`us` is a multi-region"]),
    ("--max-context-length -1", ["`--max-context-length`", "negative", "-1"]),
    ("--max-context-length 2147483648", ["`--max-context-length`", "2147483648", "2147483647"]),
    ("--max-context-length lots", ["`--max-context-length`", "`lots`", "whole number"]),
    ("--draft-token-count 0", ["`--draft-token-count`", "at least 1", "got 0"]),
    ("--ngram-speculation-length 0 --draft-token-count 4", ["`--ngram-speculation-length`", "at least 1"]),
    ("--ngram-speculation-length 99999999999 --draft-token-count 4", ["`--ngram-speculation-length`", "too large"]),
    ("--long-prompt=maybe", ["`--long-prompt`", "on or off"]),
    ("--description " + "x" * 1000, ["`--description`", "1000 characters", "under 1000"]),
    # contradictory combinations, refused as Fireworks refuses them
    (f"--draft-model {DRAFT} --ngram-speculation-length 4 --draft-token-count 4",
     ["`--draft-model` and `--ngram-speculation-length` cannot be used together"]),
    ("--disable-speculative-decoding --enable-mtp", ["`--disable-speculative-decoding`", "`--enable-mtp`"]),
    (f"--disable-speculative-decoding --draft-model {DRAFT} --draft-token-count 4",
     ["`--disable-speculative-decoding`", "`--draft-model`", "`--draft-token-count`"]),
    ("--disable-speculative-decoding --ngram-speculation-length 3",
     ["`--disable-speculative-decoding`", "`--ngram-speculation-length`"]),
    (f"--draft-model {DRAFT}", ["`--draft-token-count N` is required with `--draft-model`"]),
    ("--ngram-speculation-length 5", ["`--draft-token-count N` is required with `--ngram-speculation-length`"]),
    ("--deployment-shape fast --precision fp16", ["`--deployment-shape` already decides the precision",
                                                 "`--precision FP16`"]),
]


@pytest.mark.parametrize("flags, needles", BAD, ids=[b[0][:50] for b in BAD])
def test_bad_values_are_refused_naming_flag_value_and_what_is_allowed(stack, flags, needles):
    text = answer(stack, f"deploy {MODEL} {flags}", needles[0])
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Usage:" in text
    assert names(stack) == [] and stack.services.store.deployments() == []


def test_a_region_of_the_right_form_that_fireworks_does_not_have_is_fireworks_to_refuse(stack):
    # The Region enum is open (Fireworks adds datacenters): fwbot passes on any name of a region's
    # form, and Fireworks' validation (validateOnly, before anything is created) names what it has.
    text = answer(stack, f"deploy {MODEL} --region us-mars-1", "Fireworks says")
    assert "invalid value for placement.region: 'US_MARS_1'" in text and "US_IOWA_1" in text
    assert names(stack) == [] and stack.services.store.deployments() == []


def test_an_unknown_draft_model_is_refused_before_anything_is_created(stack):
    text = answer(stack, f"deploy {MODEL} --draft-model llama-v3p2-3b --draft-token-count 4", "unknown model")
    assert "`--draft-model`" in text and f"`{DRAFT}`" in text
    assert names(stack) == []


_INT_FLAGS = {"max-context-length": 0, "draft-token-count": 1, "ngram-speculation-length": 1}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_out_of_range_int_or_unknown_enum_is_refused_over_signed_http(stack, data):
    kind = data.draw(st.sampled_from(["int", "precision", "region"]))
    if kind == "int":
        flag = data.draw(st.sampled_from(sorted(_INT_FLAGS)))
        value = str(data.draw(st.one_of(st.integers(max_value=_INT_FLAGS[flag] - 1),
                                        st.integers(min_value=2**31))))
        needles = [f"`--{flag}`", value.lstrip("-")]
    elif kind == "precision":
        flag = "precision"
        value = data.draw(st.from_regex(r"[a-z][a-z0-9]{1,8}", fullmatch=True).filter(
            lambda v: v.upper() not in ("FP8", "FP16", "BF16", "FP4", "NF4")))
        needles = ["`--precision`", f"`{value}`", "`FP8`"]
    else:
        flag = "region"
        value = data.draw(st.from_regex(r"[a-z]{1,6}", fullmatch=True))
        needles = ["`--region`", f"`{value}`", "`US_IOWA_1`"]
    extra = " --draft-token-count 4" if flag == "ngram-speculation-length" else ""
    text = answer(stack, f"deploy {MODEL} --{flag} {value}{extra}", needles[0])
    for needle in needles:
        assert needle in text, (needle, text)
    assert names(stack) == []


def test_the_simulator_refuses_what_fireworks_refuses_with_a_json_error(stack):
    def post(body, **query):
        return httpx.post(f"{stack.sim.url}/v1/accounts/demo/deployments", params=query, timeout=10,
                          headers={"Authorization": "Bearer sim-key"},
                          json={"baseModel": FULL + MODEL, "acceleratorType": "NVIDIA_H100_80GB", **body})

    cases = [
        ({"precision": "FP9"}, {}, "invalid value for precision"),
        ({"placement": {"region": "US_MARS_1"}}, {}, "invalid value for placement.region"),
        ({"maxContextLength": 2**31}, {}, "maxContextLength"),
        ({"draftTokenCount": -1}, {}, "draftTokenCount"),
        ({"draftModel": FULL + DRAFT, "ngramSpeculationLength": 4, "draftTokenCount": 4}, {}, "cannot be used together"),
        ({"draftModel": FULL + DRAFT}, {}, "draft_token_count is required"),
        ({"draftModel": FULL + "no-such-model", "draftTokenCount": 4}, {}, "not found"),
        ({"enableMtp": True}, {"disableSpeculativeDecoding": "true"}, "disable_speculative_decoding cannot be combined"),
        ({"description": "x" * 1000}, {}, "description must be fewer than 1000"),
    ]
    for body, query, needle in cases:
        r = post(body, **query)
        assert r.status_code == 400, (body, r.text)
        err = r.json()
        assert err["code"] == 3 and needle in err["message"], (body, err)
    assert names(stack) == []


# --- 4. single-region placement costs ×1.5 wherever the cost is shown ----------------------------

def test_single_region_worst_case_is_one_and_a_half_times_everywhere(stack):
    # Dry run: $8.00/h for 1 × H100 becomes $12.00/h, and says why.
    plain = answer(stack, f"deploy {MODEL} --dry-run", "Dry run")
    assert "*Worst case:* $8.00/h" in plain and "single-region" not in plain
    dry = answer(stack, f"deploy {MODEL} --region us-iowa-1 --dry-run", "Dry run")
    assert "*Worst case:* $12.00/h · $288.00/day worst case (single-region placement ×1.5)" in dry

    deploy(stack, "pinned", "--region us-iowa-1 --min-replica-count 1")
    stack.ws.wait_for(lambda: "$12.00/h" in tracking_text(stack, "pinned"), timeout=10)
    shown = get_text(stack, "pinned")
    assert "$12.00/h · $288.00/day worst case (single-region placement ×1.5)" in shown
    # An update shows the same note with before → after.
    text = answer(stack, "update pinned --max-replica-count 2", "updated")
    assert "*Worst case:* $12.00/h → $24.00/h (single-region placement ×1.5)" in text

    # App Home: what it costs at its current replica (min 1), with the same multiplier.
    stack.ws.open_home("U_DEV")
    home = json.dumps(stack.ws.wait_for(lambda: stack.ws.home("U_DEV")).view, ensure_ascii=False)
    assert "`pinned`" in home and "$12.00/h" in home and "$8.00/h" not in home


def test_single_region_counts_against_the_approval_threshold(tmp_path, clock):
    env = {"FWBOT_APPROVERS": "U_APPROVER", "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20",
           "FWBOT_APPROVAL_CHANNEL": APPROVALS}
    stack = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 0.0}, env=env)
    try:
        # 2 replicas × 1 H100: $16/h runs at once; pinned to a region it is $24/h and waits.
        deploy(stack, "global-two", "--max-replica-count 2")
        answer(stack, f"deploy {MODEL} --deployment-id pinned-two --max-replica-count 2 --region eu-frankfurt-1",
               "approval")
        request = stack.ws.wait_for(lambda: next((m for m in stack.ws.messages(APPROVALS)
                                                  if "pinned-two" in message_text(m)), None), timeout=10)
        text = message_text(request)
        assert "$24.00/h" in text and "`EU_FRANKFURT_1` only — single-region placement ×1.5" in text
        assert "accounts/demo/deployments/pinned-two" not in names(stack)
    finally:
        stack.stop()


# --- 3. the deploy form -------------------------------------------------------------------------

def _picked(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value, "text": {"type": "plain_text",
                                                                                   "text": value}}}


def test_the_form_offers_precision_and_region_prices_the_region_and_creates_them(stack):
    view, values = stack.open_deploy_form(MODEL)
    before = stack.ws.view(view.id).view["hash"]
    assert stack.ws.click_in_view("U_DEV", view.id, "v", block_id="model", value=FULL + MODEL).status == 200
    stack.ws.wait_for(lambda: stack.ws.view(view.id).view["hash"] != before, timeout=10)
    blocks = {b.get("block_id"): b for b in stack.ws.view(view.id).view["blocks"]}
    assert {"precision", "region"} <= set(blocks)
    assert "FP16" in [o["value"] for o in blocks["precision"]["element"]["options"]]
    assert "EU_FRANKFURT_1" in [o["value"] for o in blocks["region"]["element"]["options"]]

    before = stack.ws.view(view.id).view["hash"]
    assert stack.ws.click_in_view("U_DEV", view.id, "v", block_id="region", value="EU_FRANKFURT_1").status == 200
    stack.ws.wait_for(lambda: stack.ws.view(view.id).view["hash"] != before, timeout=10)
    cost = next(json.dumps(b, ensure_ascii=False) for b in stack.ws.view(view.id).view["blocks"]
                if b["type"] == "context" and "Worst case" in json.dumps(b))
    assert "$12.00/h" in cost and "× 1.5 for single-region placement" in cost

    r = stack.ws.submit_view("U_DEV", view.id, values={**values, "precision": {"v": _picked("FP16")},
                                                          "deployment_id": {"v": "from-form"}})
    assert r.status == 200 and not (r.json or {}).get("errors"), r.body
    stack.ws.wait_for(lambda: stack.services.store.deployment("from-form"), timeout=10)
    w = wire(stack, "from-form")
    assert (w["precision"], w["placement"]) == ("FP16", {"region": "EU_FRANKFURT_1"})
    stack.ws.wait_for(lambda: "$12.00/h" in tracking_text(stack, "from-form"), timeout=10)


def test_the_form_refuses_bad_values_at_their_fields_in_the_commands_words(stack):
    view, values = stack.open_deploy_form(MODEL)
    r = stack.ws.submit_view("U_DEV", view.id, values={**values, "precision": {"v": _picked("fp9")},
                                                          "region": {"v": _picked("mars")}})
    errors = (r.json or {}).get("errors") or {}
    assert "`fp9` is not a precision" in errors.get("precision", ""), r.body
    assert "`mars` is not a region" in errors.get("region", ""), r.body
    assert names(stack) == []
    # One validator: the command says the same of the same values.
    text = answer(stack, f"deploy {MODEL} --region mars", "not a region")
    assert "`mars` is not a region" in text
    _, form_errors = validate_form({"model": FULL + MODEL, "acc_type": "NVIDIA_H100_80GB", "region": "global",
                                    "precision": "FP16", "shape": "accounts/fireworks/deploymentShapes/x-minimal"})
    assert form_errors == {}  # "global" is the form's own default option; the shape wins over a precision
    _, form_errors = validate_form({"model": FULL + MODEL, "acc_type": "NVIDIA_H100_80GB", "region": "us"})
    assert form_errors["region"].startswith("Region `us` is a multi-region")


def test_audit_shows_the_serving_settings_before_and_after(stack):
    deploy(stack, "audited", "--precision fp16 --max-context-length 8192")
    answer(stack, "update audited --precision bf16 --max-context-length 0", "updated")
    text = answer(stack, "audit audited", "Precision")
    assert "Precision FP16 → BF16" in text and "Context length 8,192 tokens → the model's default" in text


# --- 7. help ------------------------------------------------------------------------------------

def test_help_deploy_and_update_explain_the_new_flags(stack):
    deploy_help = answer(stack, "help deploy", "*/fw deploy*")
    for flag in ROUND_TRIP:
        assert f"--{flag}" in deploy_help, flag
    assert "× 1.5 with `--region`" in deploy_help
    update_help = answer(stack, "help update", "*/fw update*")
    assert "`--precision PRECISION`" in update_help and "`--region REGION`" not in update_help
    assert "placement cannot be changed in place" in update_help
