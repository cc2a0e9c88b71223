"""What fwbot says is true, in words people read: times, timers, errors, counts and GPU time.

End to end through the real boundary (signed HTTP into the bot, the Fireworks simulator over HTTP,
a real SQLite file), plus table and property tests of the pure pieces in the style of
tests/core/test_grammar.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock, parse_iso
from bot.core.costs import DeploymentCost, owner_digest
from bot.core.grammar import UsageError, help_text, parse
from bot.core.names import closest_models
from bot.core.pricing import format_gpu_time
from bot.core.requests import DeployCommand, DeploymentChange, ParsedCommand
from bot.jobs import costs as cost_jobs
from bot.services.lifecycle import LifecycleEngine
from bot.ui import kit
from bot.ui.costs import digest_summary
from bot.ui.deployments import latest_start, models_list, ready_line
from handlers.views import validate_form
from tests.harness import CHANNEL, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
DEV_TZ = "Europe/Berlin"  # U_DEV's Slack timezone in tests/harness.py
RAW_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 60.0})
    yield s
    s.stop()


def deployments(stack, show_deleted=False):
    return list(stack.sdk().deployments.list(show_deleted=show_deleted))


def deploy_ready(stack, clock, dep_id, flags=""):
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} {flags}")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(dep_id)) is not None and r.state is not None)
    clock.advance(61)
    stack.sync()
    assert stack.services.store.deployment(dep_id).state == "READY"


def ask(stack, text, needle, user="U_DEV"):
    """Run ``/fw text`` and return the ephemeral answer containing ``needle`` (waiting for it)."""
    before = len(stack.ephemerals(user))
    stack.fw(text, user=user)

    def answer():
        for m in stack.ephemerals(user)[before:]:
            if needle in message_text(m):
                return message_text(m)
        return None

    return stack.ws.wait_for(answer)


def reply_to(stack, text, user="U_DEV"):
    """The one answer ``/fw text`` gets, whether in the ack or after it."""
    before = len(stack.ephemerals(user))
    r = stack.fw(text, user=user)
    if r.json and r.json.get("blocks"):
        return json.dumps(r.json, ensure_ascii=False)
    return stack.ws.wait_for(lambda: (new := stack.ephemerals(user)[before:]) and message_text(new[-1]))


# --- 8: typographic dashes are read as -- ---------------------------------------------------------

ACCOUNT = "acme"


def p(text: str) -> ParsedCommand:
    return parse(text, account_id=ACCOUNT)


def same(a: ParsedCommand, b: ParsedCommand) -> bool:
    return dataclasses.replace(a, raw="") == dataclasses.replace(b, raw="")


@pytest.mark.parametrize("typed, ascii_text", [
    ("deploy x —max-replica-count 2", "deploy x --max-replica-count 2"),
    ("deploy x –max-replica-count 2", "deploy x --max-replica-count 2"),
    ("deploy x −−max-replica-count 2", "deploy x --max-replica-count 2"),
    ("deploy x —-max-replica-count 2", "deploy x --max-replica-count 2"),
    ("deploy x —max-replica-count=3 —dry-run", "deploy x --max-replica-count=3 --dry-run"),
    ("scale web-1 2 —dry-run", "scale web-1 2 --dry-run"),
    ("cost week —by owner", "cost week --by owner"),
    ("lora load my-adapter —deployment web-1", "lora load my-adapter --deployment web-1"),
    ("delete web-1 –hard", "delete web-1 --hard"),
    ("—help", "--help"),
    ("scale –h", "scale -h"),
    ("update web-1 —unused-auto-delete-duration 0", "update web-1 --unused-auto-delete-duration 0"),
])
def test_typographic_dashes_before_a_flag_read_as_two_hyphens(typed: str, ascii_text: str) -> None:
    assert same(p(typed), p(ascii_text))


@pytest.mark.parametrize("text, needle", [
    ('deploy x "—max-replica-count" 2', "Too many arguments"),  # quoted: the user's literal text
    ("deploy x \\—max-replica-count 2", "Too many arguments"),  # escaped likewise
    ("scale web-1 −1", "whole number"),  # a minus sign before a digit is no flag
    ("deploy x —frobnicate", "`--frobnicate` is not a flag"),
])
def test_dashes_that_stay_what_they_are(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        p(text)
    assert needle in e.value.message


def test_the_rest_of_a_prompt_keeps_its_dashes() -> None:
    cmd = p("query web-1 Write — in one line — –a haiku")
    assert cmd.prompt == "Write — in one line — –a haiku"


_DASHES = st.sampled_from(["--", "—", "–", "−−", "—-", "-—", "––", "–-"])
_DEPLOY_FLAGS = st.sampled_from([
    ("max-replica-count", "2"), ("min-replica-count", "1"), ("accelerator-type", "h200"),
    ("accelerator-count", "2"), ("scale-to-zero-window", "30m"), ("scale-down-window", "5m"),
    ("unused-auto-delete-duration", "0"), ("display-name", "Nice"), ("load-targets", "default=0.6"),
    ("deployment-id", "dash-1"), ("enable-addons", None), ("dry-run", None),
])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_DEPLOY_FLAGS, _DASHES, st.booleans()), min_size=1, max_size=5,
                unique_by=lambda t: t[0][0]))
def test_any_dash_spelling_of_any_flag_parses_as_the_ascii_one(flags) -> None:
    typed, ascii_words = ["deploy", MODEL], ["deploy", MODEL]
    for (name, value), dashes, inline in flags:
        if value is None:
            typed.append(dashes + name)
            ascii_words.append("--" + name)
        elif inline:
            typed.append(f"{dashes}{name}={value}")
            ascii_words.append(f"--{name}={value}")
        else:
            typed += [dashes + name, value]
            ascii_words += ["--" + name, value]
    got, want = p(" ".join(typed)), p(" ".join(ascii_words))
    assert isinstance(got, DeployCommand) and same(got, want)


def test_em_dash_flags_from_slack_create_what_they_say(stack):
    stack.fw(f"deploy {MODEL} —deployment-id dash-1 —max-replica-count 2 –min-replica-count 1")
    dep = stack.ws.wait_for(lambda: [d for d in deployments(stack) if d.name.endswith("/dash-1")] or None)[0]
    assert (dep.min_replica_count, dep.max_replica_count) == (1, 2)


# --- 5: /fw get: times for people, and the idle timers the engine computes ------------------------

def test_get_shows_local_times_and_the_engines_timers(stack, clock):
    deploy_ready(stack, clock, "timed-1", "--max-replica-count 2 --scale-to-zero-window 30m")
    clock.advance(300)
    text = ask(stack, "get timed-1", "Idle timers")
    assert not RAW_TIME.search(text), text
    assert f"({DEV_TZ})" in text and "ago" in text
    now = clock.now()
    record = stack.services.store.deployment("timed-1")
    timers = LifecycleEngine(stack.services).timers_for(record, now)
    assert {t.kind for t in timers} == {"scale_to_zero", "auto_delete"}
    for t in timers:
        assert kit.people_time(t.due, DEV_TZ, now) in text
    assert "*Scale to zero:*" in text and "after 30m without requests" in text
    assert "*Auto-delete:*" in text
    assert f"READY since {kit.people_time(parse_iso(record.ready_at), DEV_TZ, now)}" in text


def test_get_of_a_warm_deployment_shows_idle_but_paying(stack, clock):
    deploy_ready(stack, clock, "warm-1", "--min-replica-count 1 --unused-auto-delete-duration 0")
    text = ask(stack, "get warm-1", "Idle timers")
    assert "*Idle but paying:*" in text and "*Scale to zero:*" not in text
    assert "fwbot auto-delete is *off*" in text


def test_get_of_a_deleted_deployment_promises_no_idle_deletion(stack, clock):
    deploy_ready(stack, clock, "gone-1")
    stack.sdk().deployments.delete("gone-1")
    clock.advance(120)
    stack.sync()
    text = ask(stack, "get gone-1", "Idle timers")
    assert "if unused by" not in text and "*Auto-delete:*" not in text
    assert "None: it is deleted" in text and "*Deleted:*" in text and "`/fw undelete gone-1`" in text
    assert not RAW_TIME.search(text), text


def test_ready_counts_from_the_latest_start() -> None:
    created = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    undeleted = created + timedelta(days=3)
    start = latest_start(created, None, undeleted)
    assert start == undeleted
    assert ready_line(undeleted + timedelta(seconds=154), start) == ":white_check_mark: READY in 2m34s"
    assert ready_line(created, undeleted) == ":white_check_mark: READY"  # never a negative duration


def test_ready_after_an_undelete_counts_from_the_undelete(stack, clock):
    deploy_ready(stack, clock, "back-1")
    stack.sdk().deployments.delete("back-1")
    clock.advance(3600)
    stack.sync()
    stack.fw("undelete back-1")
    stack.wait_ephemeral("undeleted")
    clock.advance(61)
    stack.sync()
    record = stack.services.store.deployment("back-1")
    assert "READY in 1m1s" in message_text(stack.ws.message(record.channel, record.thread_ts))


# --- 7: errors that say what is true -----------------------------------------------------------

NO_SUCH = [
    "scale nope-123 2", "scale nope-123 2 --dry-run", "update nope-123 --max-replica-count 2",
    "delete nope-123", "undelete nope-123", "undelete nope-123 --dry-run",
    "lora load my-adapter --deployment nope-123", "owner nope-123 <@U0NEWOWNER|newowner>",
    "keep nope-123 1h", "adopt nope-123", "get nope-123", "query nope-123 hello",
]


@pytest.mark.parametrize("user", ["U_DEV", "U_ADMIN"])
@pytest.mark.parametrize("text", NO_SUCH)
def test_an_id_fireworks_does_not_have_is_said_not_to_exist(stack, text, user):
    answer = ask(stack, text, "nope-123", user=user)
    assert "there is no deployment `nope-123`" in answer, answer
    assert "owner" not in answer.replace("/fw owner", "") and "adopt" not in answer.replace("/fw adopt", "")
    assert "Fireworks says" not in answer


def test_a_purged_deployment_someone_owned_is_said_not_to_exist(stack, clock):
    deploy_ready(stack, clock, "purged-1")
    stack.sdk().deployments.delete("purged-1", hard=True, ignore_checks=True)
    stack.sync()
    answer = ask(stack, "scale purged-1 1", "purged-1", user="U_OTHER")
    assert "there is no deployment `purged-1`" in answer and "owned by" not in answer


def test_a_second_undelete_says_there_is_nothing_to_undelete(stack, clock):
    deploy_ready(stack, clock, "twice-1")
    stack.sdk().deployments.delete("twice-1")
    clock.advance(120)
    stack.sync()
    ask(stack, "undelete twice-1", "undeleted")
    answer = ask(stack, "undelete twice-1", "nothing to undelete")
    assert "`twice-1` is not deleted" in answer and "Fireworks says" not in answer


def test_an_unknown_model_gets_the_closest_catalog_ids(stack):
    answer = ask(stack, "deploy llama-v3p1-8b-instruc", "unknown model")
    assert f"Did you mean `{MODEL}`" in answer
    assert deployments(stack) == []
    answer = ask(stack, "models llama-v3p1-8b-instrcut", "No deployable model")
    assert f"`{MODEL}`" in answer


def test_closest_models_prefers_spelling_then_substring() -> None:
    names = [f"accounts/fireworks/models/{m}" for m in (MODEL, "llama-v3p1-70b-instruct", "qwen2p5-7b")]
    assert closest_models("accounts/fireworks/models/llama-v3p1-8b-instruc", names)[0] == MODEL
    assert closest_models("qwen", names) == ["qwen2p5-7b"]
    assert closest_models("zzzz", names) == []


# --- 10: requests that could never work, and adopting your own ----------------------------------

def test_max_replica_count_zero_is_refused_on_deploy_and_update(stack, clock):
    for text in (f"deploy {MODEL} --max-replica-count 0", f"deploy {MODEL} —max-replica-count 0 --dry-run"):
        answer = ask(stack, text, "max-replica-count")
        assert "could never serve" in answer
    assert deployments(stack) == []
    deploy_ready(stack, clock, "zero-1")
    answer = ask(stack, "update zero-1 --max-replica-count 0", "could never serve")
    assert "`/fw scale zero-1 0`" in answer
    assert stack.sdk().deployments.get("zero-1").max_replica_count == 1
    spec, errors = validate_form({"model": f"accounts/fireworks/models/{MODEL}", "max": "0"})  # the form
    assert spec is None and "max" in errors
    assert DeploymentChange(max_replica_count=0).problem_with({"minReplicaCount": 0, "maxReplicaCount": 2})


def test_adopting_your_own_deployment_says_you_own_it(stack, clock):
    deploy_ready(stack, clock, "own-1")
    answer = ask(stack, "adopt own-1", "own-1")
    assert "You already own `own-1`" in answer and "adopted" not in answer
    assert "adopt" not in [r["action"] for r in stack.services.store.audit_trail("own-1")]


# --- 11: words and numbers ---------------------------------------------------------------------

@pytest.mark.parametrize("n, noun, plural, text", [
    (0, "replica", None, "0 replicas"), (1, "replica", None, "1 replica"), (2, "replica", None, "2 replicas"),
    (1, "deployable base model", None, "1 deployable base model"), (2, "person", "people", "2 people"),
])
def test_counted(n, noun, plural, text) -> None:
    assert kit.counted(n, noun, plural) == text


@pytest.mark.parametrize("seconds, text", [
    (0, "no GPU time"), (0.4, "1 GPU-s"), (40, "40 GPU-s"), (171, "2.9 GPU-min"), (600, "10 GPU-min"),
    (3500, "58 GPU-min"), (3600, "1.0 GPU-h"), (4680, "1.3 GPU-h"), (90_000, "25.0 GPU-h"),
    (5_083_200, "1,412.0 GPU-h"),
])
def test_gpu_time_never_reads_as_zero(seconds, text) -> None:
    assert format_gpu_time(seconds) == text


def test_scale_says_one_replica(stack, clock):
    deploy_ready(stack, clock, "one-1", "--max-replica-count 2")
    answer = ask(stack, "scale one-1 1", "scaled")
    assert "to 1 replica." in answer and "1 replicas" not in answer
    answer = ask(stack, "scale one-1 2 --dry-run", "Dry run")
    assert "to 2 replicas" in answer


def test_models_list_counts_in_words() -> None:
    one = models_list([{"name": f"accounts/fireworks/models/{MODEL}"}], None, simulated=False)
    assert "*1 deployable base model*" in json.dumps(one.payload()) and one.text == "1 model"


def test_a_few_minutes_of_gpu_time_are_not_zero_hours(stack, clock):
    deploy_ready(stack, clock, "brief-1", "--min-replica-count 1")
    clock.advance(180)
    stack.sync()
    answer = ask(stack, "cost today", "GPU cost")
    assert "GPU-min" in answer and "0.0 GPU-h" not in answer and "$0.00 " not in answer


def _cost(dep: str, usd: float, idle: float = 0.0) -> DeploymentCost:
    return DeploymentCost(deployment_id=dep, gpu_seconds=usd / 8 * 3600, idle_gpu_seconds=idle / 8 * 3600,
                          usd=usd, idle_usd=idle, known_usd=usd, known_idle_usd=idle)


@pytest.mark.parametrize("results, meta, text", [
    ({}, {"a": {"owner": "U1"}},
     "You own 1 deployment; it had no replicas running this week, so it cost nothing then."),
    ({}, {"a": {"owner": "U1"}, "b": {"owner": "U1"}},
     "You own 2 deployments; none of them had replicas running this week, so they cost nothing then."),
    ({"a": _cost("a", 10)}, {"a": {"owner": "U1"}, "b": {"owner": "U1"}},
     "You own 2 deployments; 1 of them had replicas running this week: $10.00, $0.00 of it idle."),
    ({"a": _cost("a", 10), "b": _cost("b", 3)}, {"a": {"owner": "U1"}, "b": {"owner": "U1"}},
     "You own 2 deployments, $13.00 this week, $0.00 of it idle. Biggest: `a` ($10.00)."),
    ({"a": _cost("a", 10), "c": _cost("c", 5, 4)}, {"a": {"owner": "U1"}, "c": {"owner": "U1", "live": False}},
     "You own 1 deployment. 2 deployments of yours had replicas running this week (1 of them deleted since): "
     "$15.00, $4.00 of it idle. Biggest: `a` ($10.00)."),
])
def test_the_digest_sentence_matches_its_numbers(results, meta, text) -> None:
    assert digest_summary(owner_digest("U1", results, meta)) == text


def test_deleted_deployments_get_no_buttons_in_the_digest() -> None:
    digest = owner_digest("U1", {"c": _cost("c", 5, 4)}, {"c": {"owner": "U1", "live": False}})
    assert digest.idle == ()


def test_weekly_dm_does_not_say_running_deployments_never_ran(tmp_path):
    monday = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)  # the digest covers Mon 2 – Sun 8 Nov
    clock = FakeClock(monday)
    stack = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 0.0})
    try:
        for dep_id in ("new-a", "new-b"):
            stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --min-replica-count 1")
            stack.ws.wait_for(lambda d=dep_id: (r := stack.services.store.deployment(d)) and r.state and r)
        stack.sync()
        clock.set(monday + timedelta(hours=1))
        stack.sync()
        cost_jobs.post_summaries(stack.services)
        dm = stack.ws.dm_channel("U_DEV")
        digest = next(message_text(m) for m in stack.ws.messages(dm) if m.is_bot and not m.is_reply)
        assert "none of them ran" not in digest
        assert ("You own 2 deployments; none of them had replicas running in the week Mon 2 Nov – Sun 8 Nov"
                in digest)
    finally:
        stack.stop()


# --- help says it -------------------------------------------------------------------------------

def test_help_says_what_users_need_to_know() -> None:
    overview = help_text()
    assert "`—flag` as `--flag`" in overview
    assert "Times are in your Slack timezone" in help_text("get")
    assert "could never serve" in help_text("deploy") and "could never serve" in help_text("update")
    assert "One you own already" in help_text("adopt")
    assert "closest model ids" in help_text("models")


def test_help_reaches_slack(stack):
    r = stack.fw("help get")
    assert "idle timers" in json.dumps(r.json)
    assert CHANNEL
