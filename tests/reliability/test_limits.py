"""Block Kit limits under worst-case inputs: 200 deployments, 63-character ids, 63-character
display names full of mrkdwn, a 5,000-character failure reason, long audit details.

Every surface is produced through the front door (commands, App Home, clicks, the sweep), and
every payload the bot sent is checked twice: by the stand-in, which refuses what Slack refuses,
and here again with slack_sdk's own models, which enforce each documented limit.
"""

from __future__ import annotations

import json

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.core.clock import FakeClock
from tests.harness import CHANNEL, start_stack

pytestmark = pytest.mark.slow

MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
N = 200
TEXT_MAX = 4000  # chat.postMessage: "limit … to 4,000 characters"
VIEW_BYTES_MAX = 250_000


def long_id(i: int) -> str:
    return f"d{i:03d}-" + "x" * (63 - 5)


def check_blocks(blocks, limit: int, where: str) -> None:
    assert isinstance(blocks, list) and len(blocks) <= limit, f"{where}: {len(blocks)} blocks"
    for block in Block.parse_all(blocks):
        block.to_dict()  # runs slack_sdk's validators (text lengths, element counts, …)


def check_everything_sent(ws) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in ws.calls:
        counts[call.method] = counts.get(call.method, 0) + 1
        assert (call.response or {}).get("error") not in ("invalid_blocks", "invalid_blocks_format", "msg_too_long",
                                                           "view_too_large", "invalid_arguments"), call
        p = call.params
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            text = p.get("text") or ""
            assert len(text) <= TEXT_MAX, f"{call.method}: text of {len(text)}"
            blocks = json.loads(p["blocks"]) if isinstance(p.get("blocks"), str) else p.get("blocks") or []
            check_blocks(blocks, 50, call.method)
        if call.method in ("views.open", "views.update", "views.publish", "views.push"):
            view = json.loads(p["view"]) if isinstance(p.get("view"), str) else p["view"]
            assert len(json.dumps(view)) < VIEW_BYTES_MAX
            check_blocks(view.get("blocks") or [], 100, call.method)
            View(**view).to_dict()
    return counts


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    clock = FakeClock()
    stack = start_stack(tmp_path_factory.mktemp("limits"), clock=clock, sim_config={"create_seconds": 1.0},
                        env={"FWBOT_ALERT_CHANNEL": ""})
    sdk = stack.sdk()
    nasty = "*_~`<!here>&<@U_ADMIN>" * 3
    for i in range(N):
        sdk.deployments.create(base_model=MODEL, deployment_id=long_id(i), min_replica_count=0,
                               max_replica_count=8, accelerator_type="NVIDIA_B200_180GB", accelerator_count=8,
                               display_name=(nasty + str(i))[:63])
    stack.sim.state.fail_deployment(long_id(0), message="ERR " + "reason <!channel> " * 300)
    clock.advance(5)
    stack.sync()
    # 200 deployments, all owned by one person and tracked in one channel (fixture shortcut: the
    # owner columns are what /fw adopt would write, 200 times).
    for i in range(N):
        stack.services.store.set_deployment_fields(long_id(i), clock.now(), owner="U_DEV", channel=CHANNEL)
    yield stack, clock
    stack.stop()


def test_lists_and_home_with_200_deployments_stay_inside_the_limits(big, errors):
    stack, _ = big
    for user, text in (("U_ADMIN", "list all"), ("U_DEV", "list mine"), ("U_DEV", "list all")):
        stack.fw(text, user=user)
        answer = stack.wait_ephemeral("deployments", user=user)
        assert f"{N} deployments" in answer
    published = len(stack.ws.calls_to("views.publish"))
    for user in ("U_ADMIN", "U_DEV"):
        stack.ws.open_home(user)
    # Each Home is published after the event's ack; wait for both (a Home from earlier is no sign).
    stack.ws.wait_for(lambda: len(stack.ws.calls_to("views.publish")) >= published + 2, timeout=20)
    counts = check_everything_sent(stack.ws)
    assert counts.get("views.publish", 0) >= 2
    assert errors.take() == []


def test_worst_case_cards_audit_models_help_and_the_modal(big, errors):
    stack, clock = big
    stack.fw(f"get {long_id(0)}")
    assert "reason" in stack.wait_ephemeral("FAILED")
    for i in range(30):  # long audit details, as a long Fireworks refusal of a create leaves them
        stack.services.store.audit(actor="U_DEV", action="deploy", result="error", now=clock.now(),
                                   deployment_id=long_id(i), channel=CHANNEL, request={"x": "y" * 3000},
                                   detail="Fireworks says: " + "no <!here> & `x` " * 400)
    stack.fw("audit")
    stack.wait_ephemeral("Audit trail")
    stack.fw(f"audit {long_id(3)}")
    stack.wait_ephemeral("Audit trail")
    stack.fw("models")
    stack.wait_ephemeral("deployable base models")
    for topic in ("", "deploy", "update", "list", "keep", "cost", "budget", "lora"):
        assert stack.fw(f"help {topic}".strip()).status == 200
    stack.fw("deploy")
    stack.ws.wait_for(lambda: stack.ws.views_for("U_DEV"))
    seen = len(stack.ephemerals("U_ADMIN"))
    stack.fw("cost month --by deployment", user="U_ADMIN")
    stack.ws.wait_for(lambda: len(stack.ephemerals("U_ADMIN")) > seen, timeout=20)
    check_everything_sent(stack.ws)
    assert errors.take() == []


def test_warnings_for_200_idle_deployments_in_one_channel_stay_inside_the_limits(big, errors):
    """The sweep's digest: 200 deployments due together in one channel."""
    from bot.services.lifecycle import LifecycleEngine

    stack, clock = big
    clock.advance(7 * 24 * 3600 - 30 * 60)  # within the auto-delete warning leads of all of them
    stack.sync()
    report = LifecycleEngine(stack.services).sweep()
    assert report.posts >= 1
    check_everything_sent(stack.ws)
    assert errors.take() == []
