"""Owner digests and quiet hours: a digest whose owner is in their quiet hours at the slot is held
until their next working moment and sent once then, with its chart, across a restart too; channel
summaries are not held; an owner outside quiet hours, or a policy without them, gets it at the slot.

The bot runs over signed HTTP against the simulated Slack and Fireworks with a real database on
the test's clock. The slot is Monday 09:00 UTC: 10:00 in Berlin (U_DEV), 04:00 in New York
(U_OTHER), whose quiet hours 19:00-08:00 end at 13:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import FakeClock
from bot.jobs import costs as cost_jobs
from tests.harness import ALERTS, CHANNEL, message_text, start_stack
from tests.jobs.test_costs import SLOT, T0, bot_posts, week_of_history

NEW_YORK_8AM = datetime(2026, 11, 9, 13, 0, tzinfo=UTC)  # Monday 08:00 in New York
HELD_KEY = "digest:U_OTHER:2026-W46"


def policy_env(tmp_path, body: str) -> dict:
    path = tmp_path / "team-policy.toml"
    path.write_text(f"[policy]\n{body}\n", encoding="utf-8")
    return {"FWBOT_POLICY_FILE": str(path)}


@pytest.fixture
def clock():
    return FakeClock(T0)


def stack_with(tmp_path, clock, body: str):
    return start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 0.0}, env=policy_env(tmp_path, body))


@pytest.fixture
def quiet_stack(tmp_path, clock):
    s = stack_with(tmp_path, clock, 'quiet_hours = "19:00-08:00"')
    yield s
    s.stop()


def digests(stack, user: str) -> list:
    return [m for m in stack.ws.messages(stack.ws.dm_channel(user)) if m.is_bot and not m.is_reply]


def charts_under(stack, message) -> list:
    return [m for m in stack.ws.messages(message.channel) if m.files and m.thread_ts == message.ts]


def counts(stack) -> tuple[int, int]:
    return (len(stack.ws.calls_to("chat.postMessage")), len(stack.ws.calls_to("files.completeUploadExternal")))


def deliver_due(stack) -> None:
    """One pass of the outbox's delivery thread, as it makes every second."""
    stack.services.outbox.run_due(wait=True)


def test_a_digest_in_quiet_hours_is_held_across_a_restart_and_sent_once_with_its_chart(quiet_stack, clock,
                                                                                        tmp_path):
    stack = quiet_stack
    week_of_history(stack, clock)

    first = cost_jobs.post_summaries(stack.services)
    assert first.slot == SLOT
    # U_DEV (10:00 in Berlin) gets hers at the slot, with its chart; the channel summaries go out too.
    assert "digest:U_DEV:2026-W46" in first.posted and "chart:digest:U_DEV:2026-W46" in first.posted
    [dev_digest] = digests(stack, "U_DEV")
    assert len(charts_under(stack, dev_digest)) == 1
    assert [m for m in bot_posts(stack, CHANNEL) if "GPU cost" in message_text(m)]
    assert [m for m in bot_posts(stack, ALERTS) if "GPU cost" in message_text(m)]  # short-b's, U_OTHER's
    # U_OTHER (04:00 in New York) is in quiet hours: nothing in the DM, held until 08:00 there.
    assert first.held == {HELD_KEY: NEW_YORK_8AM}
    assert HELD_KEY not in first.posted and f"chart:{HELD_KEY}" not in first.posted
    assert digests(stack, "U_OTHER") == []
    assert stack.services.store.scheduled_post(HELD_KEY)["status"] == "claimed"
    [held] = stack.services.store.effects.open(cost_jobs.SCHEDULED_POST)
    assert held.next_at == NEW_YORK_8AM

    # The same slot again, then a restart: the held digest is neither posted early nor held twice.
    before = counts(stack)
    again = cost_jobs.post_summaries(stack.services)
    assert again.posted == [] and again.held == {}
    stack.bot.stop()
    stack.bot = start_stack(tmp_path, clock=clock, sim=stack.sim, ws=stack.ws, db_path=stack.db_path,
                            env=stack.settings_env).bot
    clock.advance(minutes=5)
    stack.services.store.db.execute("DELETE FROM scheduled_posts WHERE key LIKE 'slot:%'")  # recompute the slot
    reruns = [job.run() for job in cost_jobs.jobs(stack.services, stack.bot.metrics)
              if job.name.startswith("cost_summaries")]
    assert all(r.posted == [] and r.held == {} for r in reruns)
    assert HELD_KEY in reruns[0].already
    clock.set(NEW_YORK_8AM - timedelta(seconds=1))
    deliver_due(stack)
    assert digests(stack, "U_OTHER") == [] and counts(stack) == before

    # 08:00 in New York: the digest, then its chart under it.
    clock.set(NEW_YORK_8AM)
    deliver_due(stack)
    [other] = stack.ws.wait_for(lambda: digests(stack, "U_OTHER") or None)
    text = message_text(other)
    assert "$384.00" in text and "in the week Mon 2 Nov – Sun 8 Nov" in text
    [chart] = stack.ws.wait_for(lambda: charts_under(stack, other) or None)
    assert stack.ws.file(chart.files[0]["id"]).content.startswith(b"\x89PNG\r\n\x1a\n")
    posted = stack.services.store.scheduled_post(HELD_KEY)
    assert (posted["status"], posted["ts"]) == ("posted", other.ts)
    assert stack.services.store.scheduled_post(f"chart:{HELD_KEY}")["status"] == "posted"

    # Once: later passes and later runs of the slot post nothing more.
    after = counts(stack)
    assert after == (before[0] + 1, before[1] + 1)
    clock.advance(minutes=15)
    deliver_due(stack)
    stack.services.store.db.execute("DELETE FROM scheduled_posts WHERE key LIKE 'slot:%'")
    last = cost_jobs.post_summaries(stack.services)
    assert last.posted == [] and last.held == {} and f"chart:{HELD_KEY}" in last.already
    assert counts(stack) == after and len(digests(stack, "U_OTHER")) == 1


def test_a_held_digest_posted_by_an_attempt_that_never_heard_back_gets_its_chart_once(quiet_stack, clock,
                                                                                       tmp_path):
    """The bot died while Slack took the held digest: the next process finds it in Slack, records
    it and uploads the chart, and does not post the digest again."""
    stack = quiet_stack
    week_of_history(stack, clock)
    cost_jobs.post_summaries(stack.services)
    [held] = stack.services.store.effects.open(cost_jobs.SCHEDULED_POST)

    # At 08:00 in New York Slack took the post, and the process died before hearing back: the
    # attempt is left "sending" (marked before the clock gets there, so the dying process's own
    # delivery thread does not send it meanwhile).
    outbox, store, client = stack.services.outbox, stack.services.store, stack.services.poster.client
    with store.db.write():
        assert store.effects.start_attempt(held.id, clock.now(), by=outbox.replica)
    dm = client.conversations_open(users=["U_OTHER"])["channel"]["id"]
    client.chat_postMessage(channel=dm, **held.payload["message"],
                            metadata={"event_type": "fwbot_effect", "event_payload": {"key": held.key}})
    stack.bot.stop()
    before = counts(stack)
    stack.bot = start_stack(tmp_path, clock=clock, sim=stack.sim, ws=stack.ws, db_path=stack.db_path,
                            env=stack.settings_env).bot
    store = stack.services.store
    clock.set(NEW_YORK_8AM + timedelta(minutes=3))
    deliver_due(stack)
    stack.ws.wait_for(lambda: (store.scheduled_post(HELD_KEY) or {}).get("status") == "posted")
    [other] = digests(stack, "U_OTHER")
    [chart] = stack.ws.wait_for(lambda: charts_under(stack, other) or None)
    assert chart.thread_ts == other.ts
    deliver_due(stack)
    assert len(digests(stack, "U_OTHER")) == 1 and len(charts_under(stack, other)) == 1
    assert counts(stack) == (before[0], before[1] + 1)  # the chart; the digest was not posted again


def test_without_quiet_hours_every_digest_goes_out_at_the_slot(tmp_path, clock):
    stack = stack_with(tmp_path, clock, 'max_lifetime = "30d"')
    try:
        week_of_history(stack, clock)
        report = cost_jobs.post_summaries(stack.services)
        assert report.held == {}
        assert {"digest:U_DEV:2026-W46", "digest:U_OTHER:2026-W46"} <= set(report.posted)
        [other] = digests(stack, "U_OTHER")  # 04:00 in New York, and sent all the same
        assert len(charts_under(stack, other)) == 1
    finally:
        stack.stop()


def test_a_held_digest_says_what_is_true_when_it_is_sent(tmp_path, clock):
    """Held until 11:00 in Berlin; idle-a is deleted meanwhile: the digest still reports its week,
    but offers no button to scale or delete it any more."""
    stack = stack_with(tmp_path, clock, 'quiet_hours = "19:00-11:00"')
    try:
        week_of_history(stack, clock)
        report = cost_jobs.post_summaries(stack.services)
        berlin_11 = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)
        assert report.held["digest:U_DEV:2026-W46"] == berlin_11
        [held] = [e for e in stack.services.store.effects.open(cost_jobs.SCHEDULED_POST)
                  if e.payload["args"]["keys"] == ["digest:U_DEV:2026-W46"]]
        assert "cost_delete" in str(held.payload["message"])  # as it was at the slot: idle-a had buttons
        stack.sdk().deployments.delete("idle-a")
        clock.advance(minutes=20)
        stack.sync()
        assert digests(stack, "U_DEV") == []

        clock.set(berlin_11)
        deliver_due(stack)
        [dev] = stack.ws.wait_for(lambda: digests(stack, "U_DEV") or None)
        text = message_text(dev)
        assert "in the week Mon 2 Nov – Sun 8 Nov" in text and "$888.00" in text
        buttons = {(e["action_id"], e["value"]) for b in dev.blocks if b["type"] == "actions" for e in b["elements"]}
        assert ("cost_delete", "unpriced-c") in buttons
        assert not any(value == "idle-a" for _, value in buttons)
        stack.ws.wait_for(lambda: charts_under(stack, dev) or None)
    finally:
        stack.stop()
