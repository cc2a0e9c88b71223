"""A price for every accelerator fwbot offers, or it is not offered (bot.pricing.not_offered).

Every accelerator type of Fireworks' enum (contract §2.2):
offered with its list price per GPU-hour in the deploy form and in ``/fw deploy``, or refused by
``/fw deploy --accelerator-type`` in one sentence saying fwbot has no price for it and how to set
one, and absent from the form. ``FWBOT_PRICES`` makes an unlisted one offered. Signed HTTP into
the bot, the simulator over HTTP, a real SQLite file.
"""

from __future__ import annotations

import pytest

from bot.core.names import accelerator_label, short_accelerator
from tests.harness import message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"

# Fireworks' list prices of 2026-10-07 (contract §4), USD per GPU-hour.
LISTED = {
    "NVIDIA_H100_80GB": 8.0,
    "NVIDIA_H200_141GB": 8.0,
    "NVIDIA_B200_180GB": 13.0,
    "NVIDIA_B300_288GB": 15.0,
}
# No current list price: the A100 80GB and MI300X figures are third-party and from 2025, the
# others have none at all.
UNLISTED = ["NVIDIA_A100_80GB", "NVIDIA_A100_40GB", "NVIDIA_L4_24GB", "NVIDIA_A10G_24GB", "AMD_MI300X_192GB",
            "AMD_MI325X_256GB", "AMD_MI350X_288GB"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = start_stack(tmp_path_factory.mktemp("prices"), sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def priced_stack(tmp_path_factory):
    s = start_stack(tmp_path_factory.mktemp("priced"), sim_config={"create_seconds": 0.0},
                    env={"FWBOT_PRICES": "NVIDIA_A100_80GB=3.5"})
    yield s
    s.stop()


def dry_run(stack, accelerator: str, user: str) -> str:
    """The reply to a dry-run deploy of 3 replicas × 2 GPUs of ``accelerator``."""
    before = len(stack.ephemerals(user))
    stack.fw(f"deploy {MODEL} --accelerator-type {accelerator} --accelerator-count 2 --max-replica-count 3 "
             "--dry-run", user=user)
    return stack.ws.wait_for(lambda: message_text(m[before]) if len(m := stack.ephemerals(user)) > before else None,
                             timeout=10)


def form_accelerators(stack, user: str) -> list[tuple[str, str]]:
    stack.fw("deploy", user=user)
    view = stack.ws.wait_for(lambda: (stack.ws.views_for(user) or [None])[-1])
    block = next(b for b in view.view["blocks"] if b.get("block_id") == "acc_type")
    return [(o["value"], o["text"]["text"]) for o in block["element"]["options"]]


def test_the_table_covers_every_accelerator_fwbot_knows():
    from bot.core.names import ACCELERATOR_TYPES

    assert sorted(ACCELERATOR_TYPES) == sorted([*LISTED, *UNLISTED])


@pytest.mark.parametrize("enum", [*LISTED, *UNLISTED])
def test_every_accelerator_is_priced_or_refused_with_the_sentence(stack, enum):
    user = f"U_{enum}"  # one Slack user per row, so each reads only its own replies
    stack.ws.add_user(user, enum.lower())
    text = dry_run(stack, short_accelerator(enum), user)
    if enum in LISTED:
        assert "no price" not in text, text
        # 3 replicas × 2 GPUs at the list price.
        assert f"${6 * LISTED[enum]:,.2f}/h" in text and "Dry run" in text, text
    else:
        assert (f"fwbot has no price for {accelerator_label(enum)} (`{enum}`), so it does not offer it; whoever "
                f"runs fwbot can set one in `FWBOT_PRICES` (`FWBOT_PRICES={enum}=<USD per GPU-hour>`). "
                "It offers `h100`, `h200`, `b200`, `b300`.") in text, text
    # A dry run creates nothing (fwbot's ids for MODEL start with its name).
    assert not [d for d in stack.sdk().deployments.list() if d.name.rsplit("/", 1)[-1].startswith(MODEL)]


def test_the_deploy_form_offers_exactly_the_priced_accelerators_with_their_price(stack):
    stack.ws.add_user("U_FORM", "former")
    assert form_accelerators(stack, "U_FORM") == [
        (enum, f"{accelerator_label(enum)} · ${price:.2f}/h per GPU") for enum, price in LISTED.items()]


def test_fwbot_prices_makes_an_unlisted_accelerator_offered(priced_stack):
    stack = priced_stack
    stack.ws.add_user("U_A", "a100-user")
    text = dry_run(stack, "a100", "U_A")
    assert "no price" not in text and "$21.00/h" in text and "Dry run" in text, text  # 3 × 2 × $3.50
    offered = dict(form_accelerators(stack, "U_A"))
    assert offered["NVIDIA_A100_80GB"] == "A100 80GB · $3.50/h per GPU"
    assert "AMD_MI300X_192GB" not in offered and offered["NVIDIA_H100_80GB"] == "H100 · $8.00/h per GPU"
    # The refusal of one still without a price names the one now offered.
    assert "It offers `h100`, `h200`, `b200`, `b300`, `a100`." in dry_run(stack, "mi300x", "U_A")


def test_an_update_to_an_accelerator_without_a_price_is_refused_with_the_sentence(stack):
    stack.ws.add_user("U_UPD", "updater")
    stack.fw(f"deploy {MODEL} --deployment-id on-h100 --accelerator-type h100", user="U_UPD")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment("on-h100")) is not None and r.state is not None)
    before = len(stack.ephemerals("U_UPD"))
    stack.fw("update on-h100 --accelerator-type l4", user="U_UPD")
    text = stack.ws.wait_for(lambda: message_text(m[-1]) if len(m := stack.ephemerals("U_UPD")) > before else None)
    assert "fwbot has no price for L4 (`NVIDIA_L4_24GB`), so it does not offer it" in text, text
    assert stack.sdk().deployments.get("on-h100").accelerator_type == "NVIDIA_H100_80GB"
