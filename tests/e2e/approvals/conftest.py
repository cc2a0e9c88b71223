"""A whole fwbot with approvals on: FWBOT_APPROVERS=U_APPROVER, a $20/h threshold, #fw-approvals."""

from __future__ import annotations

import pytest

from bot.core.clock import FakeClock
from tests.harness import APPROVALS, start_stack

APPROVAL_ENV = {
    "FWBOT_APPROVERS": "U_APPROVER",
    "FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR": "20",
    "FWBOT_APPROVAL_CHANNEL": APPROVALS,
}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_stack(tmp_path, clock):
    """Start stacks (several for restarts); every one still running is stopped at the end."""
    started = []

    def make(env: dict[str, str] | None = None, **kwargs):
        stack = start_stack(tmp_path, clock=clock, env={**APPROVAL_ENV, **(env or {})}, **kwargs)
        started.append(stack)
        return stack

    yield make
    # The last stack owns the simulator and the workspace; earlier bots were stopped by the test.
    if started:
        started[-1].stop()
        for stack in started[:-1]:
            if stack.sim is not started[-1].sim:
                stack.stop()


@pytest.fixture
def stack(make_stack):
    return make_stack()
