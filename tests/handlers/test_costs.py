"""/fw cost and /fw budget as people type them, over signed HTTP into the bot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import FakeClock
from tests.harness import ALERTS, CHANNEL, start_stack

MODEL = "llama-v3p1-8b-instruct"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # Monday


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


def deploy(stack, dep_id, *, user, channel=CHANNEL, gpus=1, accelerator="h100"):
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --accelerator-type {accelerator} --accelerator-count {gpus} "
             "--min-replica-count 1", user=user, channel=channel)
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(dep_id)) is not None and r.state is not None)


def two_weeks(stack, clock):
    """Last week: old-a (U_DEV) 10 h. This week so far, 5 h each: small-a (U_DEV) and big-b (U_OTHER, 4 GPUs)."""
    clock.set(T0 - timedelta(days=7))
    deploy(stack, "old-a", user="U_DEV")
    stack.sync()
    clock.advance(hours=10)
    stack.sdk().deployments.delete("old-a")
    stack.sync()
    clock.set(T0)
    deploy(stack, "small-a", user="U_DEV")
    deploy(stack, "big-b", user="U_OTHER", channel=ALERTS, gpus=4)
    stack.sync()
    clock.set(T0 + timedelta(hours=5))
    stack.sync()


def test_cost_week_by_owner_with_change_and_billing(stack, clock):
    two_weeks(stack, clock)
    stack.fw("cost week --by owner")
    text = stack.wait_ephemeral("GPU cost this week")
    # This week: small-a 5 GPU-h ($40), big-b 20 GPU-h ($160). Previous 5 h: nothing ran.
    assert "*Total*\n$200.00" in text and "*GPU-hours*\n25.0" in text
    assert text.index("<@U_OTHER>") < text.index("<@U_DEV>")
    assert "*1.* <@U_OTHER> — *$160.00*" in text and "new this period" in text
    assert "billingUsage" in text and "difference +0.0%" in text

    stack.fw("cost 2026-10-26..2026-11-01 --by deployment")
    text = stack.wait_ephemeral("Mon 26 Oct – Sun 1 Nov")
    assert "*Total*\n$80.00" in text and "`old-a`" in text and "`big-b`" not in text

    # Against the seven days before, when old-a spent $80.
    stack.fw("cost 2026-10-27..2026-11-02 --by model")
    text = stack.wait_ephemeral("Tue 27 Oct – Mon 2 Nov")
    assert "*Change*\n▲ $120.00 (+150%) vs previous period" in text
    assert f"`{MODEL}` — *$200.00*" in text and "▲ $120.00 (+150%)" in text

    stack.fw("cost month --by channel")
    text = stack.wait_ephemeral("November 2026 so far")
    assert f"<#{ALERTS}>" in text and f"<#{CHANNEL}>" in text


def test_cost_bad_and_future_periods_are_explained(stack, clock):
    stack.fw("cost 2026-11-05..2026-11-03")
    assert "before it starts" in stack.wait_ephemeral("before it starts")
    stack.fw("cost 2026-12-01..2026-12-31")
    assert "not started yet" in stack.wait_ephemeral("not started")
    stack.fw("cost today")
    assert "No GPU time in this period" in stack.wait_ephemeral("GPU cost today")


def test_cost_still_answers_when_billing_usage_fails(stack, clock):
    two_weeks(stack, clock)
    stack.sim.faults.fail_next(5, status=500)
    stack.fw("cost today")
    text = stack.wait_ephemeral("GPU cost today")
    assert "could not be read" in text and "*Total*\n$200.00" in text


def test_help_for_cost_and_budget(stack):
    r = stack.fw("help cost")
    assert "--by" in str(r.json) and "today" in str(r.json)
    r = stack.fw("help budget")
    assert "usd-per-month" in str(r.json)
