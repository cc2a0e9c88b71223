"""Fuzzing block action payloads (ids, values, containers) through the real HTTP stack."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reliability.fuzzing import (
    BATCH,
    CASES,
    FUZZ,
    clicks,
    slack_name,
)

pytestmark = pytest.mark.slow


@settings(FUZZ, max_examples=CASES["clicks"] // BATCH)
@given(cases=st.lists(st.tuples(st.data(), slack_name, slack_name), min_size=BATCH, max_size=BATCH))
def test_clicks_with_hostile_values_always_get_a_readable_answer(fuzz, cases):
    prepared = []
    for data, name, channel_name in cases:  # draw first: hypothesis' data is not thread-safe
        action, in_view = data.draw(clicks(fuzz.action_ids))
        user = fuzz.new_user(name)
        channel = fuzz.new_channel(channel_name)
        response_url = fuzz.ws.new_response_url(user, channel)
        payload: dict = {"type": "block_actions", "user": {"id": user, "name": name},
                         "team": {"id": fuzz.ws.team_id}, "api_app_id": "A0FWBOT", "token": "x",
                         "trigger_id": f"{time.time()}.9.fuzz", "actions": [action]}
        if in_view:
            payload["container"] = {"type": "view", "view_id": "V0FUZZ"}
            payload["view"] = {"id": "V0FUZZ", "type": "modal", "callback_id": "deploy_modal", "hash": "1.x",
                               "private_metadata": data.draw(st.text(max_size=40)), "state": {"values": {}}}
            response_url = None
        else:
            payload["response_url"] = response_url
            payload["channel"] = {"id": channel, "name": channel_name}
            payload["container"] = {"type": "message", "channel_id": channel,
                                    "message_ts": data.draw(st.sampled_from(["1.000001", "", "nope"])),
                                    "is_ephemeral": data.draw(st.booleans())}
        prepared.append((payload, user, channel, response_url))

    def one(case):
        payload, user, channel, response_url = case
        before = len(fuzz.ws.calls)
        delivery = fuzz.send_interaction(payload)
        if payload["actions"][0]["action_id"] == "confirm_cancel" and response_url is None:
            # "Cancel" only removes the confirmation; without a response_url there is nothing to remove
            # and nothing to say. It must still be acked cleanly.
            assert delivery.status == 200
            fuzz.no_errors()
            return
        fuzz.judge(delivery, user, channel, response_url, before)

    fuzz.run_batch("clicks", one, prepared)


