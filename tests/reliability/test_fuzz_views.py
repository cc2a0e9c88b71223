"""Fuzzing view submissions (callback ids, state values, metadata) through the real HTTP stack."""

from __future__ import annotations

import json
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reliability.fuzzing import (
    BATCH,
    CASES,
    FUZZ,
    anything,
    deploy_form,
    form_text,
    slack_name,
)

pytestmark = pytest.mark.slow


@settings(FUZZ, max_examples=CASES["submissions"] // BATCH)
@given(cases=st.lists(st.tuples(st.data(), slack_name, slack_name), min_size=BATCH, max_size=BATCH))
def test_view_submissions_with_hostile_state_always_get_a_readable_answer(fuzz, cases):
    prepared = []
    for data, name, channel_name in cases:
        user = fuzz.new_user(name)
        channel = fuzz.new_channel(channel_name)
        callback = data.draw(st.one_of(st.just("deploy_modal"), st.sampled_from(fuzz.callback_ids),
                                       st.text(alphabet=string.ascii_letters, min_size=1, max_size=20)))
        metadata = data.draw(st.one_of(st.just(json.dumps({"channel": channel})), st.text(max_size=60),
                                       st.builds(json.dumps, anything)))
        values = data.draw(deploy_form()) if callback == "deploy_modal" else data.draw(
            st.dictionaries(st.text(min_size=1, max_size=10), st.dictionaries(
                st.text(min_size=1, max_size=10), st.fixed_dictionaries({"type": st.just("plain_text_input")},
                                                                        optional={"value": form_text}),
                max_size=2), max_size=3))
        payload = {"type": "view_submission", "user": {"id": user, "name": name}, "team": {"id": fuzz.ws.team_id},
                   "api_app_id": "A0FWBOT", "token": "x", "trigger_id": f"{time.time()}.8.fuzz",
                   "view": {"id": "V0FUZZ", "type": "modal", "callback_id": callback, "hash": "1.x",
                            "private_metadata": metadata, "state": {"values": values}},
                   "response_urls": []}
        prepared.append((payload, user, channel))

    def one(case):
        payload, user, channel = case
        before = len(fuzz.ws.calls)
        fuzz.judge(fuzz.send_interaction(payload), user, channel, None, before)

    fuzz.run_batch("submissions", one, prepared)
