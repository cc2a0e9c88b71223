"""`/fw lora` as firectl's load-lora and unload-lora: `--public` and `--replace-merged-addon` on
load, and unload with or without `--deployment` (without it: from Fireworks' serverless platform,
as firectl does). Every reply says what was loaded or unloaded where.

End to end: signed `/fw` commands into the bot, the Fireworks simulator over HTTP (it stores and
echoes `public`, and a hot-reload deployment takes an addon only with replaceMergedAddon=true,
replacing the one it has), a real SQLite file.
"""

from __future__ import annotations

import json

import pytest

from bot.core.clock import FakeClock
from tests.harness import message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
BASE = f"accounts/fireworks/models/{MODEL}"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 60.0})
    yield s
    s.stop()


def reply(stack, text, user="U_DEV"):
    """The one answer ``/fw text`` gets (its ack, or the ephemeral after it)."""
    before = len(stack.ephemerals(user))
    r = stack.fw(text, user=user)
    if r.json and (r.json.get("blocks") or r.json.get("text")):
        return json.dumps(r.json, ensure_ascii=False)
    return stack.ws.wait_for(lambda: (new := stack.ephemerals(user)[before:]) and message_text(new[-1]), timeout=10)


def deployment(stack, clock, dep_id, flags="--enable-addons"):
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} {flags}")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(dep_id)) is not None and r.state is not None)
    clock.advance(61)
    stack.sync()


def hot_reload_deployment(stack, clock, dep_id):
    """A hot-reload deployment (made with the SDK: fwbot has no flag for it), adopted by U_DEV."""
    stack.sdk().deployments.create(base_model=BASE, deployment_id=dep_id, accelerator_type="NVIDIA_H100_80GB",
                                   accelerator_count=1, enable_hot_reload_latest_addon=True)
    clock.advance(61)
    assert "adopted" in reply(stack, f"adopt {dep_id}")


def addons(stack, clock, *names):
    sdk = stack.sdk()
    for name in names:
        sdk.models.create(model_id=name, model={"kind": "HF_PEFT_ADDON", "peft_details": {
            "base_model": BASE, "r": 8, "target_modules": ["q_proj"]}})
    clock.advance(30)  # uploaded


def loaded(stack):
    """(addon id, deployment id or "serverless", public) of every addon loaded (base models left out)."""
    return sorted((m.model.rsplit("/", 1)[-1], m.deployment.rsplit("/", 1)[-1] if m.deployment else "serverless",
                   bool(m.public)) for m in stack.sdk().lora.list() if m.model.startswith("accounts/demo/"))


def lora_audit(stack):
    return [(r["action"], json.loads(r["request"] or "{}")) for r in stack.services.store.audit_trail(limit=50)
            if str(r["action"]).startswith("lora")]


# -- load ---------------------------------------------------------------------------------------------
def test_public_load_is_stored_echoed_and_said(stack, clock):
    deployment(stack, clock, "base-1")
    addons(stack, clock, "ad-1", "ad-2")
    text = reply(stack, "lora load ad-1 --deployment base-1 --public")
    assert ":jigsaw: <@U_DEV> loaded LoRA `demo/ad-1` on `base-1` (deployed model `ad-1-" in text
    assert ", public)." in text and "Query it as `accounts/demo/models/ad-1#accounts/demo/deployments/base-1`" in text
    text = reply(stack, "lora load ad-2 --deployment base-1")
    assert "public" not in text.split("Query it")[0]
    assert loaded(stack) == [("ad-1", "base-1", True), ("ad-2", "base-1", False)]
    assert [r.get("public") for a, r in lora_audit(stack) if a == "lora load"] == [None, True]  # newest first
    assert "(public)" in reply(stack, "audit base-1")


def test_a_hot_reload_deployment_needs_replace_merged_addon_and_it_replaces(stack, clock):
    hot_reload_deployment(stack, clock, "hot-1")
    addons(stack, clock, "v1", "v2")
    text = reply(stack, "lora load v1 --deployment hot-1")
    assert ("`hot-1` hot-reloads its addon: Fireworks loads one onto it only with `--replace-merged-addon`, "
            "which replaces the addon it has. Nothing was loaded.") in text
    assert loaded(stack) == []
    text = reply(stack, "lora load v1 --deployment hot-1 --replace-merged-addon")
    assert "loaded LoRA `demo/v1` on `hot-1`" in text and "There was no addon on it to replace." in text
    text = reply(stack, "lora load v2 --deployment hot-1 --replace-merged-addon")
    assert "loaded LoRA `demo/v2` on `hot-1`" in text and "It replaced `demo/v1`." in text
    assert loaded(stack) == [("v2", "hot-1", False)]
    load = next(r for a, r in lora_audit(stack) if a == "lora load")
    assert load["replace_merged_addon"] is True and load["replaced"] == ["accounts/demo/models/v1"]
    assert "replacing `demo/v1`" in reply(stack, "audit hot-1")


def test_replace_merged_addon_on_a_multi_lora_deployment_replaces_nothing(stack, clock):
    deployment(stack, clock, "multi-1")
    addons(stack, clock, "a", "b")
    reply(stack, "lora load a --deployment multi-1")
    text = reply(stack, "lora load b --deployment multi-1 --replace-merged-addon")
    assert "loaded LoRA `demo/b` on `multi-1`" in text and "There was no addon on it to replace." in text
    assert loaded(stack) == [("a", "multi-1", False), ("b", "multi-1", False)]


def test_loading_onto_a_deployment_without_addons_or_someone_elses_is_refused(stack, clock):
    deployment(stack, clock, "plain-1", flags="")
    addons(stack, clock, "ad-1")
    assert "enable_addons" in reply(stack, "lora load ad-1 --deployment plain-1")
    deployment(stack, clock, "theirs-1")
    text = reply(stack, "lora load ad-1 --deployment theirs-1 --public", user="U_OTHER")
    assert "owned by <@U_DEV>" in text
    assert loaded(stack) == []


# -- unload -------------------------------------------------------------------------------------------
def test_unload_from_a_deployment_says_what_was_unloaded_where(stack, clock):
    deployment(stack, clock, "base-1")
    deployment(stack, clock, "base-2")
    addons(stack, clock, "ad-1")
    reply(stack, "lora load ad-1 --deployment base-1")
    text = reply(stack, "lora unload ad-1 --deployment base-2")
    assert ("`demo/ad-1` is not loaded on `base-2`; nothing was unloaded. It is loaded on `base-1`: "
            "`/fw lora unload demo/ad-1 --deployment base-1`.") in text
    text = reply(stack, "lora unload ad-1 --deployment base-1")
    assert ":jigsaw: <@U_DEV> unloaded LoRA `demo/ad-1` from `base-1` (deployed model `ad-1-" in text
    assert loaded(stack) == []
    text = reply(stack, "lora unload ad-1 --deployment base-1")
    assert "not loaded on `base-1`; nothing was unloaded. It is not loaded on any deployment either." in text


def test_unload_without_deployment_is_from_serverless_as_firectl_does(stack, clock):
    deployment(stack, clock, "base-1")
    addons(stack, clock, "ad-1")
    reply(stack, "lora load ad-1 --deployment base-1")
    # Not on serverless: said, with where it is loaded; nothing is unloaded from the deployment.
    text = reply(stack, "lora unload ad-1")
    assert ("`demo/ad-1` is not loaded on Fireworks' serverless platform, which is what `/fw lora unload` without "
            "`--deployment` unloads from (as firectl does); nothing was unloaded. It is loaded on `base-1`") in text
    assert loaded(stack) == [("ad-1", "base-1", False)]

    stack.sim.state.load_serverless("accounts/demo/models/ad-1")  # loaded there before serverless LoRA ended
    text = reply(stack, "lora unload ad-1")  # U_DEV owns nothing on serverless: nobody does
    assert "only an fwbot admin can unload it from there. Nothing was unloaded." in text
    text = reply(stack, "lora unload ad-1 --dry-run", user="U_ADMIN")
    assert "would unload LoRA `demo/ad-1` from Fireworks' serverless platform (1 deployed model)" in text
    assert len(loaded(stack)) == 2
    text = reply(stack, "lora unload ad-1", user="U_ADMIN")
    assert ":jigsaw: <@U_ADMIN> unloaded LoRA `demo/ad-1` from Fireworks' serverless platform (deployed model `ad-1-" \
        in text
    assert loaded(stack) == [("ad-1", "base-1", False)]  # the deployment's copy stays
    unload = next(r for a, r in lora_audit(stack) if a == "lora unload")
    assert unload["serverless"] is True and len(unload["deployed_models"]) == 1
    assert "from Fireworks' serverless platform" in reply(stack, "audit", user="U_ADMIN")


@pytest.mark.parametrize("typed, needle", [
    ("lora load ad-1", "`--deployment <id>` is required for `/fw lora load`"),
    ("lora unload ad-1 --public", "`--public` is for `/fw lora load` only"),
    ("lora unload ad-1 --deployment base-1 --replace-merged-addon", "`--replace-merged-addon` is for `/fw lora load`"),
    ("lora load ad-1 --deployment base-1 --public=maybe", "`--public` is on or off"),
    ("lora load ad-1 --deployment base-1 --replace-merged", "Did you mean `--replace-merged-addon`?"),
    ("lora load ad-1 --deployment accounts/other/deployments/base-1", "belongs to account `other`"),
])
def test_flags_in_the_wrong_place_are_refused_and_change_nothing(stack, typed, needle):
    assert needle in reply(stack, typed)
    assert stack.sim.state.count_requests("POST", "/v1/accounts/demo/deployedModels") == 0
    assert stack.sim.state.count_requests("DELETE", "/v1/accounts/demo/deployedModels/.*") == 0


def test_help_says_what_unload_does_without_a_deployment(stack):
    text = json.dumps(stack.fw("help lora").json)
    assert "--replace-merged-addon" in text and "--public" in text and "serverless platform" in text
