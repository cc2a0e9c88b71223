"""Scheduled channel summaries, owner digests and budget alerts: content, charts, and once only.

A week of replica history is driven through the simulator on a FakeClock shared with the bot;
the jobs are then run as the scheduler would run them, again, and again after a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import FakeClock
from bot.jobs import costs as cost_jobs
from tests.harness import ALERTS, CHANNEL, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
T0 = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)  # Wednesday
SLOT = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)  # Monday 09:00, the default FWBOT_COST_SUMMARY_CRON


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 0.0})
    yield s
    s.stop()


def deploy(stack, text, *, user, channel, dep_id):
    stack.fw(f"deploy {MODEL} --deployment-id {dep_id} {text}", user=user, channel=channel)
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(dep_id)) is not None and r.state is not None)


def bot_posts(stack, channel):
    return [m for m in stack.ws.messages(channel) if m.is_bot and not m.ephemeral_to and not m.is_reply]


def week_of_history(stack, clock):
    """idle-a (U_DEV, #ml-platform, 1×H100, always on), unpriced-c (U_DEV, 1×A100) and
    short-b (U_OTHER, #fw-alerts, 1×H200, deleted after two days).

    fwbot offers no A100 (it has no price for one), so unpriced-c is made outside fwbot, as
    firectl would, and adopted: its GPU time is reported at an unknown price, never as $0."""
    deploy(stack, "--accelerator-type h100 --min-replica-count 1", user="U_DEV", channel=CHANNEL, dep_id="idle-a")
    stack.sdk().deployments.create(base_model=f"accounts/fireworks/models/{MODEL}", deployment_id="unpriced-c",
                                   accelerator_type="NVIDIA_A100_80GB", accelerator_count=1, min_replica_count=1)
    stack.fw("adopt unpriced-c", user="U_DEV", channel=CHANNEL)
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment("unpriced-c")) is not None and r.owner == "U_DEV")
    deploy(stack, "--accelerator-type h200 --min-replica-count 1", user="U_OTHER", channel=ALERTS, dep_id="short-b")
    stack.sync()  # READY at T0 (create_seconds 0): one replica each from T0
    clock.set(T0 + timedelta(days=2))
    stack.sdk().deployments.delete("short-b")
    stack.sync()
    clock.set(SLOT)
    stack.sync()


def test_weekly_summary_and_digests_post_once_also_across_a_restart(stack, clock, tmp_path):
    week_of_history(stack, clock)

    first = cost_jobs.post_summaries(stack.services)
    assert first.slot == SLOT
    summaries = bot_posts(stack, CHANNEL)
    summary = [m for m in summaries if "GPU cost Mon 2 Nov – Sun 8 Nov" in message_text(m)]
    assert len(summary) == 1
    text = message_text(summary[0])
    # idle-a: Wed 09:00 → Mon 00:00 = 111 h of H100 at $8, all of it idle.
    assert "$888.00" in text and "(+ unknown price — set FWBOT_PRICES)" in text
    assert "*Idle*\n$888.00 (100%)" in text
    assert "`idle-a`" in text and "`unpriced-c`" in text and "`short-b`" not in text
    assert "NVIDIA_A100_80GB at unknown price" in text
    alerts = [m for m in bot_posts(stack, ALERTS) if "GPU cost" in message_text(m)]
    assert len(alerts) == 1 and "$384.00" in message_text(alerts[0])  # 48 h of H200 at $8

    # A per-day chart in the summary's thread, as a PNG.
    uploads = stack.ws.calls_to("files.completeUploadExternal")
    assert len(uploads) >= 2
    charts = [m for m in stack.ws.messages(CHANNEL) if m.files and m.thread_ts == summary[0].ts]
    assert len(charts) == 1
    assert stack.ws.file(charts[0].files[0]["id"]).content.startswith(b"\x89PNG\r\n\x1a\n")

    dev_dm = stack.ws.dm_channel("U_DEV")
    digests = [m for m in stack.ws.messages(dev_dm) if m.is_bot and not m.is_reply]
    assert len(digests) == 1
    digest = message_text(digests[0])
    assert "You own 2 deployments" in digest and "$888.00 (+ unknown price" in digest
    assert "in the week Mon 2 Nov – Sun 8 Nov" in digest and "$888.00 of it idle" in digest
    buttons = [e for b in digests[0].blocks if b["type"] == "actions" for e in b["elements"]]
    assert {(e["action_id"], e["value"]) for e in buttons} >= {
        ("cost_scale_to_zero", "idle-a"), ("cost_delete", "idle-a"), ("cost_delete", "unpriced-c")}
    other = [m for m in stack.ws.messages(stack.ws.dm_channel("U_OTHER")) if m.is_bot and not m.is_reply]
    assert len(other) == 1 and "$384.00" in message_text(other[0])

    def counts():
        return (len(stack.ws.calls_to("chat.postMessage")), len(stack.ws.calls_to("files.completeUploadExternal")))

    before = counts()
    again = cost_jobs.post_summaries(stack.services)
    assert again.posted == [] and counts() == before

    # Restart: a new bot process on the same SQLite file; the catch-up job runs at start.
    stack.bot.stop()
    restarted = start_stack(tmp_path, clock=clock, sim=stack.sim, ws=stack.ws, db_path=stack.db_path)
    stack.bot = restarted.bot
    clock.advance(minutes=5)
    for job in cost_jobs.jobs(stack.services, stack.bot.metrics):
        if job.name.startswith("cost_summaries"):
            assert job.run().posted == []
    assert counts() == before

    # Even with the slot's "all done" marker gone, every single post is still claimed once.
    stack.services.store.db.execute("DELETE FROM scheduled_posts WHERE key LIKE 'slot:%'")
    rerun = cost_jobs.post_summaries(stack.services)
    assert rerun.posted == [] and len(rerun.already) >= 4 and counts() == before

    # The next week's slot posts again, once.
    clock.set(SLOT + timedelta(days=7, seconds=20))
    stack.sync()
    nxt = cost_jobs.post_summaries(stack.services)
    assert any(k.startswith(f"summary:{CHANNEL}:") for k in nxt.posted)
    assert "digest:U_DEV:2026-W47" in nxt.posted
    assert cost_jobs.post_summaries(stack.services).posted == []


def test_a_slot_missed_for_too_long_is_not_posted_late(stack, clock):
    week_of_history(stack, clock)
    clock.set(SLOT + cost_jobs.SUMMARY_CATCH_UP + timedelta(minutes=1))
    report = cost_jobs.post_summaries(stack.services)
    assert report.slot is None and report.posted == []
    assert not [m for m in bot_posts(stack, CHANNEL) if "GPU cost" in message_text(m)]


def test_digest_buttons_act_on_idle_deployments_for_the_owner_only(stack, clock):
    week_of_history(stack, clock)
    cost_jobs.post_summaries(stack.services)
    dm = stack.ws.dm_channel("U_DEV")
    digest = [m for m in stack.ws.messages(dm) if m.is_bot and not m.is_reply][0]

    # Only the owner or an admin may act: anyone else is told whose it is, and nothing changes.
    stack.ws.click("U_OTHER", dm, digest.ts, "cost_scale_to_zero", value="idle-a")
    refused = stack.ws.wait_for(lambda: next((message_text(m) for m in stack.ws.messages(dm)
                                              if m.ephemeral_to == "U_OTHER"), None))
    assert "owned by <@U_DEV>" in refused
    assert stack.sdk().deployments.get("idle-a").replica_count == 1

    # idle-a keeps a minimum of one replica: the button lowers it to 0 and scales to zero.
    stack.ws.click("U_DEV", dm, digest.ts, "cost_scale_to_zero", value="idle-a")
    text = stack.ws.wait_for(lambda: next((message_text(m) for m in stack.ws.messages(dm)
                                           if m.ephemeral_to == "U_DEV" and "scaled `idle-a` to zero" in
                                           message_text(m)), None))
    assert "/fw update idle-a --min-replica-count 1" in text
    dep = stack.sdk().deployments.get("idle-a")
    assert (dep.min_replica_count, dep.replica_count) == (0, 0)
    stack.sync()
    assert stack.services.store.replica_history("idle-a")[-1]["replicas"] == 0
    thread = stack.services.store.deployment("idle-a")
    assert any("from the cost digest" in message_text(m) for m in stack.ws.messages(CHANNEL)
               if m.thread_ts == thread.thread_ts and m.is_reply)

    stack.ws.click("U_DEV", dm, digest.ts, "cost_delete", value="unpriced-c")
    stack.ws.wait_for(lambda: next((m for m in stack.ws.messages(dm) if m.ephemeral_to == "U_DEV"
                                    and "deleted `unpriced-c` from the cost digest" in message_text(m)), None))
    assert stack.sdk().deployments.get("unpriced-c").state in ("DELETING", "DELETED")
    assert ("U_DEV", "delete", "ok") in [(r["actor"], r["action"], r["result"])
                                         for r in stack.services.store.audit_trail("unpriced-c")]


def test_budget_alerts_once_per_threshold_per_month_across_restart(stack, clock, tmp_path):
    week_of_history(stack, clock)
    stack.fw(f"budget <#{CHANNEL}> 1000", user="U_DEV")
    assert "only an fwbot admin" in stack.wait_ephemeral("admin")
    assert stack.services.store.budget(CHANNEL) is None

    stack.fw(f"budget <#{CHANNEL}|ml-platform> 1000", user="U_ADMIN")
    reply = stack.wait_ephemeral("set the GPU budget", user="U_ADMIN")
    # idle-a: Wed 09:00 → Mon 09:00 = 120 h = $960 of November's first 8 days 9 hours.
    assert "$1,000.00 per month" in reply and "$960.00" in reply
    projected = 960 * 30 / (8 + 9 / 24)
    assert f"projected this month ${projected:,.2f}" in reply
    # ALERTS: short-b spent $384 → projected ≈ $1,375, 86 % of $1,600.
    stack.fw(f"budget <#{ALERTS}> 1600", user="U_ADMIN")
    stack.wait_ephemeral(f"set the GPU budget of <#{ALERTS}>", user="U_ADMIN")

    first = cost_jobs.check_budgets(stack.services)
    assert sorted(first.posted) == sorted([f"budget:{CHANNEL}:2026-11:80", f"budget:{CHANNEL}:2026-11:100",
                                           f"budget:{ALERTS}:2026-11:80"])
    over = [m for m in bot_posts(stack, CHANNEL) if "Budget alert" in message_text(m)]
    assert len(over) == 1 and "exceed the November 2026 budget" in message_text(over[0])
    near = [m for m in bot_posts(stack, ALERTS) if "Budget alert" in message_text(m)]
    assert len(near) == 1 and "reach 80% of the November 2026 budget" in message_text(near[0])

    assert cost_jobs.check_budgets(stack.services).posted == []
    stack.bot.stop()
    restarted = start_stack(tmp_path, clock=clock, sim=stack.sim, ws=stack.ws, db_path=stack.db_path)
    stack.bot = restarted.bot
    clock.advance(hours=6)
    stack.sync()
    budget_job = next(j for j in cost_jobs.jobs(stack.services, stack.bot.metrics) if j.name == "budget_check")
    assert budget_job.run().posted == []
    assert len([m for m in bot_posts(stack, CHANNEL) if "Budget alert" in message_text(m)]) == 1

    # A new month starts over.
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    stack.sync()
    december = cost_jobs.check_budgets(stack.services)
    assert f"budget:{CHANNEL}:2026-12:100" in december.posted


def test_a_post_slack_refused_is_retried_by_the_next_run_and_then_posted_once(stack, clock, monkeypatch):
    from slack_sdk.errors import SlackApiError

    week_of_history(stack, clock)
    # short-b's channel does not exist (yet): Slack answers channel_not_found.
    stack.services.store.set_deployment_fields("short-b", clock.now(), channel="C0LATER")
    client = stack.services.poster.client
    real_upload = client.files_upload_v2
    refusals = []

    def refuse_once(**kwargs):
        if not refusals:
            refusals.append(kwargs["channel"])
            raise SlackApiError("refused", {"ok": False, "error": "ratelimited"})
        return real_upload(**kwargs)

    monkeypatch.setattr(client, "files_upload_v2", refuse_once)
    first = cost_jobs.post_summaries(stack.services)
    summary_later = next(k for k in first.failed if k.startswith("summary:C0LATER:"))
    assert any(k.startswith("chart:") for k in first.failed) and refusals
    assert stack.services.store.scheduled_post(summary_later) is None  # released, not stuck as claimed

    stack.ws.add_channel("C0LATER", "later", members=["U_OTHER"])
    clock.advance(minutes=15)
    second = cost_jobs.post_summaries(stack.services)
    assert summary_later in second.posted and f"chart:{summary_later}" in second.posted
    assert any(k.startswith("chart:") and k != f"chart:{summary_later}" for k in second.posted)  # the retried one
    assert not [k for k in second.posted if k.startswith(("summary:C0MLPLAT", "digest:"))]
    assert len([m for m in bot_posts(stack, "C0LATER") if "GPU cost" in message_text(m)]) == 1
    assert cost_jobs.post_summaries(stack.services).posted == []
