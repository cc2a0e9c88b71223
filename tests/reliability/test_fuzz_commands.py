"""Fuzzing /fw text, user names and channel names through the real HTTP stack."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reliability.fuzzing import (
    BATCH,
    CASES,
    FUZZ,
    command_text,
    slack_name,
)

pytestmark = pytest.mark.slow


@settings(FUZZ, max_examples=CASES["commands"] // BATCH)
@given(cases=st.lists(st.tuples(command_text, slack_name, slack_name, st.booleans()), min_size=BATCH, max_size=BATCH))
def test_fw_text_always_gets_a_readable_answer(fuzz, cases):
    def one(case):
        text, name, channel_name, admin = case
        user = "U_ADMIN" if admin and len(text) % 5 == 0 else fuzz.new_user(name)
        channel = fuzz.new_channel(channel_name)
        before = len(fuzz.ws.calls)
        delivery = fuzz.ws.slash_command(user=user, channel=channel, text=text)
        sent = delivery.payload or {}
        fuzz.judge(delivery, user, channel, sent.get("response_url"), before, marks=(sent.get("trigger_id", "-"),))

    fuzz.run_batch("commands", one, cases)


