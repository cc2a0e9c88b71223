"""`/fw list --filter/--order-by/--show-deleted`, paged, end to end: signed `/fw` commands and
button clicks into the bot, the Fireworks simulator over HTTP (which filters, sorts and pages), a
real SQLite file. Fireworks' refusals come back as one sentence naming what it refused; a long
list is shown a page at a time with its count and a Next page button, never cut silently."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from bot.core.clock import FakeClock
from bot.ui import kit
from sims.slack import payloads
from tests.harness import CHANNEL, message_text, start_stack

MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
H100, A100 = "NVIDIA_H100_80GB", "NVIDIA_A100_80GB"
LINE_ID = re.compile(r"`([a-z][a-z0-9-]*)` · ")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 1.0})
    yield s
    s.stop()


def create(stack, dep_id, *, acc=H100, display_name="", min_replicas=0, sdk=None):
    (sdk or stack.sdk()).deployments.create(
        base_model=MODEL, deployment_id=dep_id, accelerator_type=acc, accelerator_count=1,
        min_replica_count=min_replicas, max_replica_count=1, display_name=display_name)


def own(stack, clock, owner_of):
    """Mirror what Fireworks has and give each deployment its owner in fwbot (what `/fw adopt`
    writes; a fixture shortcut for hundreds of them)."""
    clock.advance(2)
    stack.sync()
    for dep_id, owner in owner_of.items():
        stack.services.store.set_deployment_fields(dep_id, clock.now(), owner=owner, channel=CHANNEL)


def answer(stack, text, user="U_DEV"):
    """Run ``/fw text``; the one reply it gets (the ack's, or the ephemeral after it)."""
    before = len(stack.ephemerals(user))
    r = stack.fw(text, user=user)
    assert r.status == 200
    if r.json and (r.json.get("blocks") or r.json.get("text")):
        return None, json.dumps(r.json, ensure_ascii=False)
    msg = stack.ws.wait_for(lambda: (new := stack.ephemerals(user)[before:]) and new[-1], timeout=10)
    return msg, message_text(msg)


def ids_in(text):
    return LINE_ID.findall(text)


def next_value(msg):
    for block in msg.blocks or []:
        for el in block.get("elements") or []:
            if el.get("action_id") == "list_next":
                return el["value"]
    return None


def click_next(stack, msg, user="U_DEV"):
    """Click Next page; the page replaces the message. Returns the new message."""
    before = msg.blocks
    stack.ws.click(user, CHANNEL, msg.ts, "list_next")
    return stack.ws.wait_for(lambda: (m := stack.ws.find_message(CHANNEL, msg.ts, include_ephemeral=True))
                             and m.blocks != before and m, timeout=10)


def walk(stack, first, user="U_DEV"):
    """Every page from ``first`` on by Next page: (ids in order, each page's text)."""
    msg, texts = first, [message_text(first)]
    while next_value(msg) is not None:
        assert len(msg.blocks) <= 50
        msg = click_next(stack, msg, user)
        texts.append(message_text(msg))
    return [i for t in texts for i in ids_in(t)], texts


# -- the server filters and sorts ----------------------------------------------------------------------
def test_filter_is_applied_by_fireworks_and_named_in_the_reply(stack, clock):
    create(stack, "h-one")
    create(stack, "a-one", acc=A100)
    create(stack, "h-two")
    _, text = answer(stack, f"list --filter accelerator_type={H100}")
    assert sorted(ids_in(text)) == ["h-one", "h-two"]
    assert f"2 deployments matching `accelerator_type={H100}`" in text
    # snake_case or camelCase, quoted values, AND: Fireworks' grammar, passed as typed.
    _, text = answer(stack, f"list --filter 'acceleratorType=\"{H100}\" AND name:h-two'")
    assert ids_in(text) == ["h-two"]
    _, text = answer(stack, "list --filter state=FAILED")
    assert "No deployments matching `state=FAILED`" in text and "--show-deleted" in text


def test_order_by_sorts_on_the_server(stack, clock):
    for dep_id, name in (("d-1", "charlie"), ("d-2", "alpha"), ("d-3", "bravo")):
        create(stack, dep_id, display_name=name)
        clock.advance(1)
    _, text = answer(stack, "list --order-by display_name")
    assert ids_in(text) == ["d-2", "d-3", "d-1"] and "Sorted by `display_name`" in text
    _, text = answer(stack, "list --order-by create_time desc")  # unquoted: `desc` belongs to it
    assert ids_in(text) == ["d-3", "d-2", "d-1"]
    _, text = answer(stack, "list --order-by 'create_time'")
    assert ids_in(text) == ["d-1", "d-2", "d-3"]


def test_show_deleted_lists_deleted_ones_marked_as_such(stack, clock):
    create(stack, "alive-1")
    create(stack, "gone-1")
    own(stack, clock, {"alive-1": "U_DEV", "gone-1": "U_DEV"})
    stack.sdk().deployments.delete("gone-1")
    clock.advance(120)  # DELETING → DELETED
    _, text = answer(stack, "list")
    assert ids_in(text) == ["alive-1"] and "1 deployment ·" in text.replace("*", "")
    _, text = answer(stack, "list --show-deleted")
    assert sorted(ids_in(text)) == ["alive-1", "gone-1"]
    assert "2 deployments, deleted ones included" in text
    gone = next(line for line in text.split("\\n") if "`gone-1`" in line)
    assert "*deleted*, costs nothing" in gone and ":wastebasket:" in gone
    _, text = answer(stack, "list mine --show-deleted --filter state=DELETED")
    assert ids_in(text) == ["gone-1"] and "1 deployment you own matching `state=DELETED`" in text


# -- what Fireworks refuses, in one sentence naming it ----------------------------------------------
@pytest.mark.parametrize("flt", [
    "state=READY OR state=CREATING",  # OR is not in the grammar Fireworks takes here
    "replica_count>0",
    "state=",
])
def test_a_filter_fireworks_rejects_is_named(stack, clock, flt):
    create(stack, "x-1")
    _, text = answer(stack, f"list --filter '{flt}'")
    assert f"Fireworks rejected the filter `{kit.escape(flt)}`" in text  # as Slack shows `>`
    assert "Nothing is listed" in text and "`x-1`" not in text


def test_an_unknown_field_is_rejected_even_when_nothing_would_match(stack, clock):
    _, text = answer(stack, "list --filter colour=red")  # an empty account
    assert "Fireworks rejected the filter `colour=red`" in text and "colour" in text
    create(stack, "x-1")
    _, text = answer(stack, "list mine --filter 'state=READY AND colour=red'")
    assert "Fireworks rejected the filter `state=READY AND colour=red`" in text


def test_an_order_on_an_unknown_field_is_named_and_the_right_flag_is_blamed(stack, clock):
    create(stack, "x-1")
    _, text = answer(stack, "list --order-by colour")
    assert "Fireworks rejected the order `--order-by colour`" in text and "`x-1`" not in text
    # Both given: each is tried alone, so the one at fault is named, not the other.
    _, text = answer(stack, "list --filter state=READY --order-by 'colour desc'")
    assert "rejected the order `--order-by colour desc`" in text and "rejected the filter" not in text
    _, text = answer(stack, "list --filter colour=red --order-by display_name")
    assert "rejected the filter `colour=red`" in text and "rejected the order" not in text


@pytest.mark.parametrize("typed, needle", [
    ("list --order-by 'create_time descending'", "`create_time descending` is not one"),
    ("list --order-by 'a,,b'", "has an empty entry"),
    ("list --filter ''", "`--filter` needs a filter"),
    ("list --filter", "`--filter` needs a value"),
    ("list --show-deleted=maybe", "`--show-deleted` is on or off"),
    ("list everyone", "must be one of `mine`, `all`"),
])
def test_malformed_flags_are_refused_before_fireworks_is_asked(stack, typed, needle):
    lists = stack.sim.state.count_requests("GET", "/v1/accounts/demo/deployments")
    _, text = answer(stack, typed)
    assert needle in text
    assert stack.sim.state.count_requests("GET", "/v1/accounts/demo/deployments") == lists


# -- pages --------------------------------------------------------------------------------------------
N = 250


@pytest.fixture
def many(stack, clock):
    """250 deployments, one a second; U_DEV owns every third (84 of them), U_OTHER the rest."""
    owners = {}
    sdk = stack.sdk()
    for i in range(N):
        dep_id = f"dep-{i:03d}"
        create(stack, dep_id, acc=H100 if i % 2 else A100, sdk=sdk)
        owners[dep_id] = "U_DEV" if i % 3 == 0 else "U_OTHER"
        clock.advance(1)
    own(stack, clock, owners)
    return owners


def test_250_deployments_paged_to_the_end_none_missing_none_twice(stack, clock, many):
    first, text = answer(stack, "list all")
    assert "250 deployments" in text and "Showing 1–20 of 250" in text and "running now (these 20)" in text
    seen, texts = walk(stack, first)
    assert seen == sorted(many) and len(set(seen)) == N  # creation order, each once
    assert len(texts) == 13 and "Showing 241–250 of 250" in texts[-1]
    assert next_value(stack.ws.find_message(CHANNEL, first.ts, include_ephemeral=True)) is None


def test_mine_pages_through_the_owned_ones_with_filter_and_order(stack, clock, many):
    mine = sorted(d for d, o in many.items() if o == "U_DEV")
    first, text = answer(stack, "list mine --order-by create_time desc")
    assert f"{len(mine)} deployments you own" in text and f"Showing 1–20 of {len(mine)}" in text
    seen, texts = walk(stack, first)
    assert seen == sorted(mine, reverse=True) and len(texts) == 5
    # With a filter, Fireworks filters and fwbot keeps the owned ones: H100s are the odd numbers.
    wanted = [d for d in mine if int(d[-3:]) % 2]
    first, text = answer(stack, f"list mine --filter accelerator_type={H100}")
    assert f"{len(wanted)} deployments you own matching" in text
    seen, _ = walk(stack, first)
    assert seen == wanted


def test_filter_and_order_travel_with_the_next_page(stack, clock, many):
    wanted = sorted((d for d in many if int(d[-3:]) % 2 == 0), reverse=True)
    first, text = answer(stack, f"list --filter accelerator_type={A100} --order-by 'create_time desc'")
    assert f"{len(wanted)} deployments matching `accelerator_type={A100}`" in text
    seen, texts = walk(stack, first)
    assert seen == wanted
    assert all("Sorted by `create_time desc`" in t for t in texts)


def test_a_next_page_added_to_meanwhile_still_shows_the_rest_once(stack, clock, many):
    first, _ = answer(stack, "list")
    page2 = click_next(stack, first)
    for i in range(3):  # created after the first pages were read: they come last (by create time)
        create(stack, f"late-{i}")
    seen, _ = walk(stack, page2)
    assert seen == sorted(many)[20:] + ["late-0", "late-1", "late-2"]


_forged = itertools.count(1)


def forged_next(stack, msg, value: str, user="U_DEV"):
    """A Next page click signed as Slack signs it, carrying any value we like."""
    ws = stack.ws
    where = next(c for c in ws.channels if c.id == CHANNEL)
    n = next(_forged)
    payload = payloads.block_actions(
        team_id=ws.team_id, domain=ws.domain, user=ws.user(user), trigger_id=f"1.2.forged-list{n}",
        actions=[{"action_id": "list_next", "block_id": "b", "type": "button", "value": value,
                  "action_ts": f"3.{n:06d}"}],
        token=ws.verification_token, container={"type": "message", "message_ts": msg.ts, "channel_id": CHANNEL,
                                                "is_ephemeral": True},
        response_url=ws.new_response_url(user, CHANNEL, message_ts=msg.ts), channel=where, message=None)
    body = payloads.interactive_body(payload)
    before = len(stack.ephemerals(user))
    assert ws.send_raw(body, ws.signed_headers(body)).status == 200
    return stack.ws.wait_for(lambda: (new := stack.ephemerals(user)[before:]) and message_text(new[-1]))


def test_a_forged_or_stale_next_page_lists_nothing_and_says_why(stack, clock, many):
    first, _ = answer(stack, "list")
    value = json.loads(next_value(first))
    for bad in ("not json", json.dumps({**value, "s": "everyone"}), json.dumps({**value, "k": -1}),
                json.dumps({**value, "d": "yes"}), json.dumps([1, 2])):
        text = forged_next(stack, first, bad)
        assert "not one fwbot made; nothing was listed" in text
    # A cursor Fireworks does not take (garbage, or one issued for another filter): said, nothing listed.
    text = forged_next(stack, first, json.dumps({**value, "t": "garbage"}))
    assert "Fireworks no longer accepts where this page starts" in text and "Run `/fw list` again" in text
    assert ids_in(text) == []
    text = forged_next(stack, first, json.dumps({**value, "f": "state=READY"}))
    assert "Fireworks no longer accepts where this page starts" in text


def test_help_and_usage_name_the_new_flags(stack):
    r = stack.fw("help list")
    text = json.dumps(r.json)
    for flag in ("--filter FILTER", "--order-by FIELDS", "--show-deleted", "Next page"):
        assert flag in text
