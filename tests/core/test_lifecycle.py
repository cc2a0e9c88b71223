"""The lifecycle core on plain values, with an explicit ``now`` for every edge."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.clock import iso
from bot.core.lifecycle import (
    DEFAULT_SCALE_TO_ZERO_S,
    LifecyclePolicy,
    Timer,
    TimerWarning,
    WarningKey,
    digest,
    due_actions,
    due_warnings,
    idle_since,
    quiet_until,
    stale_reason,
    timers,
    warning_key,
    warning_leads,
)
from storage.deployments import DeploymentRecord

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PRICES = {"NVIDIA_H100_80GB": 8.0}
POLICY = LifecyclePolicy()
H = 3600.0


def at(seconds: float = 0, **kw: float) -> datetime:
    return T0 + timedelta(seconds=seconds, **kw)


def dep(**kw) -> DeploymentRecord:
    base = dict(
        id="d1",
        name="accounts/a/deployments/d1",
        owner="U1",
        channel="C1",
        thread_ts="111.222",
        created_by_bot=True,
        unused_delete_s=None,
        state="READY",
        replicas=1,
        desired_replicas=1,
        min_replicas=0,
        max_replicas=2,
        accelerator_type="NVIDIA_H100_80GB",
        accelerator_count=2,
        base_model="accounts/fireworks/models/llama-v3p1-8b-instruct",
        display_name=None,
        scale_to_zero_s=None,
        delete_time=None,
        single_region=False,
        create_time=iso(T0),
        wire=None,
        first_seen_at=iso(T0),
        last_seen_at=iso(T0),
        ready_at=None,
        ready_announced=True,
        gone_at=None,
        adoption_offered_at=None,
        created_at=iso(T0),
        updated_at=iso(T0),
    )
    base.update(kw)
    return DeploymentRecord(**base)


def by_kind(ts: list[Timer]) -> dict[str, Timer]:
    return {t.kind: t for t in ts}


def tmap(d, last=None, now=None, **kw) -> dict[str, Timer]:
    return by_kind(timers(d, last, POLICY, now or at(), PRICES, **kw))


# -- timers -----------------------------------------------------------------------------------
def test_scale_to_zero_uses_api_default_window_of_one_hour():
    assert DEFAULT_SCALE_TO_ZERO_S == 3600
    t = tmap(dep())["scale_to_zero"]
    assert t.due == at(H)
    assert t.source == "platform_window"
    assert t.usd_per_hour == 16.0  # 1 replica × 2 GPUs × $8


def test_scale_to_zero_from_last_traffic_and_own_window():
    t = tmap(dep(scale_to_zero_s=600), last=at(1234.5678))["scale_to_zero"]
    assert t.due == at(1834)  # rounded down to whole seconds
    assert t.due.microsecond == 0


def test_window_change_moves_the_timer():
    a = tmap(dep(scale_to_zero_s=600), last=at(0))["scale_to_zero"]
    b = tmap(dep(scale_to_zero_s=1800), last=at(0))["scale_to_zero"]
    assert (a.due, b.due) == (at(600), at(1800))


def test_no_scale_to_zero_when_already_at_zero_or_min_raised():
    assert "scale_to_zero" not in tmap(dep(replicas=0))
    ts = tmap(dep(min_replicas=1), last=at(0))
    assert "scale_to_zero" not in ts
    assert ts["idle_paying"].due == at(2 * H)


def test_manual_scale_up_restarts_scale_to_zero_clock():
    t = tmap(dep(), last=at(0), scaled_up_at=at(5 * H))["scale_to_zero"]
    assert t.due == at(6 * H)


def test_anchor_is_latest_of_traffic_ready_created():
    d = dep(ready_at=iso(at(100)))
    assert idle_since(d, None) == at(100)
    assert idle_since(d, at(50)) == at(100)  # came up again after its last traffic
    assert idle_since(d, at(500)) == at(500)
    assert idle_since(dep(create_time=None), None) == T0  # first seen


def test_auto_delete_bot_policy_default_168h():
    t = tmap(dep(min_replicas=1), last=at(0))["auto_delete"]
    assert (t.due, t.source, t.bot_acts) == (at(168 * H), "bot_policy", True)


def test_auto_delete_custom_unused_duration():
    t = tmap(dep(min_replicas=1, unused_delete_s=24 * H), last=at(0))["auto_delete"]
    assert (t.due, t.source) == (at(24 * H), "bot_policy")


def test_auto_delete_takes_api_delete_time_when_it_comes_first():
    d = dep(delete_time="2026-11-05T10:00:00.250Z", unused_delete_s=7 * 86400)
    t = tmap(d, last=at(0))["auto_delete"]
    assert t.due == datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
    assert t.source == "api_delete_time"
    assert not t.bot_acts


def test_a_shorter_bot_policy_beats_the_api_delete_time():
    d = dep(delete_time="2026-11-05T10:00:00.250Z", unused_delete_s=3600)
    t = tmap(d, last=at(0))["auto_delete"]
    assert (t.due, t.source, t.bot_acts) == (at(3600), "bot_policy", True)


def test_unused_delete_zero_means_no_bot_timer():
    assert "auto_delete" not in tmap(dep(min_replicas=1, unused_delete_s=0), last=at(0))


def test_unused_delete_zero_still_shows_platform_rule_for_min_zero():
    t = tmap(dep(min_replicas=0, unused_delete_s=0), last=at(0))["auto_delete"]
    assert (t.due, t.source, t.bot_acts) == (at(7 * 86400), "platform_policy", False)


def test_bot_policy_longer_than_platform_rule_shows_platform_for_min_zero():
    t = tmap(dep(unused_delete_s=30 * 86400), last=at(0))["auto_delete"]
    assert t.source == "platform_policy"
    t = tmap(dep(min_replicas=1, unused_delete_s=30 * 86400), last=at(0))["auto_delete"]
    assert (t.due, t.source) == (at(30 * 86400), "bot_policy")


def test_tie_with_platform_rule_goes_to_bot_policy():
    t = tmap(dep(), last=at(0))["auto_delete"]
    assert (t.due, t.source) == (at(168 * H), "bot_policy")


def test_snooze_postpones_bot_deletion_only():
    d = dep(min_replicas=1)
    t = tmap(d, last=at(0), snoozed_until=at(200 * H))["auto_delete"]
    assert (t.due, t.snoozed) == (at(200 * H), True)
    # a snooze that ends before the timer changes nothing
    assert not tmap(d, last=at(0), snoozed_until=at(H))["auto_delete"].snoozed
    # platform deleteTime does not move
    d2 = dep(delete_time=iso(at(168 * H)))
    assert tmap(d2, last=at(0), snoozed_until=at(300 * H))["auto_delete"].due == at(168 * H)
    # a min-0 deployment keeps the platform's 7-day rule whatever the snooze
    t3 = tmap(dep(), last=at(0), snoozed_until=at(300 * H))["auto_delete"]
    assert (t3.due, t3.source) == (at(168 * H), "platform_policy")


def test_snooze_and_keep_warm_postpone_idle_report():
    d = dep(min_replicas=1)
    assert tmap(d, last=at(0), snoozed_until=at(10 * H))["idle_paying"].due == at(10 * H)
    assert tmap(d, last=at(0), keep_warm_until=at(4 * H))["idle_paying"].due == at(4 * H)
    assert tmap(d, last=at(0), keep_warm_until=at(H))["idle_paying"].due == at(2 * H)


def test_idle_paying_dollars_exact():
    d = dep(min_replicas=2, replicas=3, accelerator_count=4)
    t = tmap(d, last=at(0), now=at(5 * H))["idle_paying"]
    assert t.due == at(2 * H)
    assert t.usd_per_hour == 96.0  # 3 × 4 × $8
    assert t.usd_idle == pytest.approx(480.0)  # 5 idle hours
    assert t.usd_per_day == 2304.0


def test_idle_paying_single_region_and_unknown_price():
    d = dep(min_replicas=1, single_region=True)
    assert tmap(d, last=at(0), now=at(H))["idle_paying"].usd_idle == pytest.approx(24.0)
    u = tmap(dep(min_replicas=1, accelerator_type="NVIDIA_A100_80GB"), last=at(0))["idle_paying"]
    assert (u.usd_per_hour, u.usd_idle, u.usd_per_day) == (None, None, None)


def test_traffic_just_before_due_moves_timer_and_no_warning():
    d = dep(scale_to_zero_s=3600)
    before = timers(d, at(0), POLICY, at(3599), PRICES)
    assert [w.kind for w in due_warnings(before, POLICY, at(3599), set())] == ["scale_to_zero"]
    after = timers(d, at(3598), POLICY, at(3599), PRICES)
    assert by_kind(after)["scale_to_zero"].due == at(3598 + 3600)
    assert due_warnings(after, POLICY, at(3599), set()) == []


@pytest.mark.parametrize("state", ["CREATING", "DELETING", "DELETED", "STATE_UNSPECIFIED", None])
def test_no_timers_in_inactive_states(state):
    assert timers(dep(state=state, min_replicas=1), at(0), POLICY, at(9 * H), PRICES) == []


def test_failed_deployment_gets_only_auto_delete():
    assert set(tmap(dep(state="FAILED"), last=at(0))) == {"auto_delete"}
    assert set(tmap(dep(state="FAILED", min_replicas=1), last=at(0))) == {"auto_delete"}


def test_updating_keeps_timers_and_gone_has_none():
    assert set(tmap(dep(state="UPDATING"))) == {"scale_to_zero", "auto_delete"}
    assert tmap(dep(gone_at=iso(at(1)))) == {}


# -- warnings ---------------------------------------------------------------------------------
def test_scale_to_zero_warning_window_edges():
    ts = timers(dep(), at(0), POLICY, at(0), PRICES)  # due at +1h, lead 10m
    assert due_warnings(ts, POLICY, at(H - 601), set()) == []
    [w] = due_warnings(ts, POLICY, at(H - 600), set())
    assert w.key == WarningKey("d1", "scale_to_zero", iso(at(H)), 600.0)
    assert w.channel == "C1"
    assert due_warnings(ts, POLICY, at(H - 1), {w.key}) == []
    assert due_warnings(ts, POLICY, at(H), set()) == []  # platform already acted


def test_most_urgent_lead_only():
    d = dep(min_replicas=1, unused_delete_s=48 * H)
    ts = [t for t in timers(d, at(0), POLICY, at(0), PRICES) if t.kind == "auto_delete"]
    # 24h window opens
    [w24] = due_warnings(ts, POLICY, at(24 * H), set())
    assert w24.lead_s == 86400
    assert due_warnings(ts, POLICY, at(30 * H), {w24.key}) == []
    # bot was down through both openings: only the 1h warning, once
    [w1] = due_warnings(ts, POLICY, at(47.5 * H), set())
    assert w1.lead_s == 3600
    assert due_warnings(ts, POLICY, at(47.6 * H), {w1.key}) == []


def test_bigger_lead_never_follows_a_smaller_one():
    d = dep(min_replicas=1, unused_delete_s=48 * H)
    ts = [t for t in timers(d, at(0), POLICY, at(0), PRICES) if t.kind == "auto_delete"]
    small = warning_key("d1", "auto_delete", ts[0].due, 3600)
    assert due_warnings(ts, POLICY, at(30 * H), {small}) == []


def test_overdue_bot_deletion_gets_final_notice_platform_does_not():
    d = dep(min_replicas=1, unused_delete_s=10 * H)
    ts = timers(d, at(0), POLICY, at(0), PRICES)
    ws = [w for w in due_warnings(ts, POLICY, at(12 * H), set()) if w.kind == "auto_delete"]
    assert [w.lead_s for w in ws] == [3600]
    d2 = dep(min_replicas=1, delete_time=iso(at(10 * H)))
    ts2 = timers(d2, at(0), POLICY, at(0), PRICES)
    assert [w for w in due_warnings(ts2, POLICY, at(12 * H), set()) if w.kind == "auto_delete"] == []


def test_idle_paying_once_per_stretch():
    d = dep(min_replicas=1)
    ts = timers(d, at(0), POLICY, at(3 * H), PRICES)
    [w] = [w for w in due_warnings(ts, POLICY, at(3 * H), set()) if w.kind == "idle_paying"]
    assert w.lead_s == 0
    later = timers(d, at(0), POLICY, at(30 * H), PRICES)
    assert [w for w in due_warnings(later, POLICY, at(30 * H), {w.key}) if w.kind == "idle_paying"] == []
    # traffic resumed and stopped again: a new stretch, a new report
    again = timers(d, at(40 * H), POLICY, at(43 * H), PRICES)
    [w2] = [w for w in due_warnings(again, POLICY, at(43 * H), {w.key}) if w.kind == "idle_paying"]
    assert w2.key != w.key


def test_keys_stable_across_calls_and_restarts():
    d = dep(min_replicas=1)
    last = at(17.123456)
    k1 = [w.key for w in due_warnings(timers(d, last, POLICY, at(3 * H), PRICES), POLICY, at(3 * H), set())]
    # a "restart": new objects, a later now, same stored data
    d2 = replace(d)
    k2 = [w.key for w in due_warnings(timers(d2, last, POLICY, at(5 * H), PRICES), POLICY, at(5 * H), set())]
    assert k1 == k2 and k1
    assert k1[0].due.endswith(":17.000000Z")


def test_leads_longer_than_half_the_stretch_are_not_used():
    # 5m window, 10m lead: warn 2m30s before instead of on every burst of traffic
    ts = timers(dep(scale_to_zero_s=300), at(0), POLICY, at(0), PRICES)
    stz = by_kind(ts)["scale_to_zero"]
    assert warning_leads(stz, POLICY) == (150.0,)
    assert due_warnings([stz], POLICY, at(149), set()) == []
    [w] = due_warnings([stz], POLICY, at(150), set())
    assert w.lead_s == 150
    # 1h unused limit with 24h,1h leads: a single warning 30m before
    d = dep(min_replicas=1, unused_delete_s=H)
    ad = by_kind(timers(d, at(0), POLICY, at(0), PRICES))["auto_delete"]
    assert warning_leads(ad, POLICY) == (1800.0,)
    # 48h limit: both leads fit
    d48 = dep(min_replicas=1, unused_delete_s=48 * H)
    assert warning_leads(by_kind(timers(d48, at(0), POLICY, at(0), PRICES))["auto_delete"], POLICY) == (86400.0, 3600.0)
    # the bot then deletes after that notice, not the configured smallest lead
    k = warning_key("d1", "auto_delete", ad.due, 1800)
    assert len(due_actions(d, [ad], POLICY, at(H), warnings_sent={k: at(H - 1800)})) == 1


def test_no_channel_falls_back_to_alert_channel():
    p = LifecyclePolicy(alert_channel="CALERT")
    ts = timers(dep(channel=None), at(0), p, at(0), PRICES)
    [w] = due_warnings(ts, p, at(H - 60), set())
    assert w.channel == "CALERT"


def test_policy_from_settings_sorts_leads():
    class S:
        warn_before_scale_to_zero = 300
        warn_before_delete = [3600, 86400, 3600]
        idle_paying_after = 60
        alert_channel = None

    p = LifecyclePolicy.from_settings(S())
    assert p.warn_before_delete_s == (86400.0, 3600.0)


def test_digest_groups_by_channel():
    a = dep(id="a", channel="C1", thread_ts="1.1")
    b = dep(id="b", channel="C1", thread_ts="2.2")
    c = dep(id="c", channel="C2", thread_ts="3.3")
    ws = []
    for d in (a, b, c):
        ws += due_warnings(timers(d, at(0), POLICY, at(0), PRICES), POLICY, at(H - 60), set())
    groups = digest(ws)
    assert [(g.channel, len(g.warnings), g.thread_ts) for g in groups] == [("C1", 2, None), ("C2", 1, "3.3")]


# -- actions ----------------------------------------------------------------------------------
def _auto_delete_setup(unused=10 * H):
    d = dep(min_replicas=1, unused_delete_s=unused)
    ts = timers(d, at(0), POLICY, at(0), PRICES)
    return d, ts, warning_key("d1", "auto_delete", at(unused), 3600)


def test_auto_delete_action_after_notice():
    d, ts, k = _auto_delete_setup()
    sent = {k: at(9 * H)}
    assert due_actions(d, ts, POLICY, at(10 * H - 1), warnings_sent=sent) == []
    [a] = due_actions(d, ts, POLICY, at(10 * H), warnings_sent=sent)
    assert a.kind == "auto_delete"
    assert a.key == f"auto_delete:d1:{iso(at(10 * H))}"
    assert due_actions(d, ts, POLICY, at(11 * H), warnings_sent=sent, done={a.key}) == []


def test_auto_delete_waits_for_full_notice_when_warned_late():
    d, ts, k = _auto_delete_setup()
    sent = {k: at(10 * H - 600)}
    assert due_actions(d, ts, POLICY, at(10 * H), warnings_sent=sent) == []
    assert len(due_actions(d, ts, POLICY, at(10 * H + 3000), warnings_sent=sent)) == 1
    assert due_actions(d, ts, POLICY, at(20 * H)) == []  # never warned: never deleted


def test_auto_delete_recheck_traffic_moves_timer():
    d, _, k = _auto_delete_setup()
    ts = timers(d, at(9.5 * H), POLICY, at(10 * H), PRICES)  # traffic after the warning
    assert due_actions(d, ts, POLICY, at(10 * H), warnings_sent={k: at(9 * H)}) == []


def test_no_bot_action_for_platform_timers_or_gone_deployments():
    d = dep(min_replicas=1, delete_time=iso(at(10 * H)))
    ts = timers(d, at(0), POLICY, at(0), PRICES)
    k = warning_key("d1", "auto_delete", at(10 * H), 3600)
    assert due_actions(d, ts, POLICY, at(11 * H), warnings_sent={k: at(9 * H)}) == []
    d2, ts2, k2 = _auto_delete_setup()
    gone = replace(d2, state="DELETED")
    assert due_actions(gone, ts2, POLICY, at(11 * H), warnings_sent={k2: at(9 * H)}) == []


def test_keep_warm_revert():
    d = dep(min_replicas=1)
    assert due_actions(d, [], POLICY, at(H), keep_warm_until=at(H + 1)) == []
    [a] = due_actions(d, [], POLICY, at(H + 1), keep_warm_until=at(H + 1))
    assert (a.kind, a.key) == ("keep_warm_revert", f"keep_warm_revert:d1:{iso(at(H + 1))}")
    assert due_actions(d, [], POLICY, at(2 * H), keep_warm_until=at(H + 1), done={a.key}) == []


# -- stale clicks -----------------------------------------------------------------------------
def test_stale_reasons():
    d = dep(scale_to_zero_s=3600)
    key = warning_key("d1", "scale_to_zero", at(H), 600)
    now = at(H - 300)
    assert stale_reason(key, timers(d, at(0), POLICY, now, PRICES), d, at(0), now) is None
    moved = timers(d, at(H - 400), POLICY, now, PRICES)
    assert stale_reason(key, moved, d, at(H - 400), now).startswith("traffic resumed at 2026-11-02 09:53 UTC")
    assert stale_reason(key, [], None, None, now) == "the deployment is gone"
    assert stale_reason(key, [], replace(d, state="DELETED"), None, now) == "the deployment is gone"
    assert "already handled" in stale_reason(key, [], replace(d, replicas=0), at(0), now)
    raised = replace(d, min_replicas=1)
    assert "no longer running" in stale_reason(key, timers(raised, at(0), POLICY, now, PRICES), raised, at(0), now)
    wider = replace(d, scale_to_zero_s=7200)
    assert stale_reason(key, timers(wider, at(0), POLICY, now, PRICES), wider, at(0), now) == (
        "the due time moved to 2026-11-02 11:00 UTC"
    )
    assert stale_reason(key, [], d, at(0), now, handled="kept warm by <@U2>") == "already handled — kept warm by <@U2>"


def test_idle_paying_click_stays_valid_after_due():
    d = dep(min_replicas=1)
    key = warning_key("d1", "idle_paying", at(2 * H), 0)
    now = at(5 * H)
    assert stale_reason(key, timers(d, at(0), POLICY, now, PRICES), d, at(0), now) is None


# -- property: never repeat a key -------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    last=st.one_of(st.none(), st.integers(0, 20 * 86400)),
    now_s=st.integers(0, 30 * 86400),
    min_replicas=st.integers(0, 2),
    replicas=st.integers(0, 3),
    unused=st.one_of(st.none(), st.sampled_from([0, 3600, 86400, 30 * 86400])),
    window=st.one_of(st.none(), st.integers(300, 7200)),
    delete_time=st.one_of(st.none(), st.integers(0, 30 * 86400)),
    leads=st.lists(st.integers(0, 3 * 86400), max_size=4),
    sweeps=st.integers(1, 5),
    step=st.integers(1, 20000),
)
def test_due_warnings_never_repeats_a_key(
    last, now_s, min_replicas, replicas, unused, window, delete_time, leads, sweeps, step
):
    policy = LifecyclePolicy(warn_before_delete_s=tuple(leads))
    d = dep(
        min_replicas=min_replicas,
        replicas=replicas,
        unused_delete_s=unused,
        scale_to_zero_s=window,
        delete_time=iso(at(delete_time)) if delete_time is not None else None,
    )
    last_dt = at(last) if last is not None else None
    already: set[tuple] = set()
    for i in range(sweeps):
        now = at(now_s + i * step)
        ws = due_warnings(timers(d, last_dt, policy, now, PRICES), policy, now, already)
        keys = [w.key for w in ws]
        assert not set(keys) & already
        assert len(keys) == len(set(keys))
        assert len({(k.deployment_id, k.timer) for k in keys}) == len(keys)  # one per timer per sweep
        already |= set(keys)
    assert all(isinstance(w, TimerWarning) for w in ws)


def test_stale_idle_report_after_traffic_and_warned_at():
    d = dep(min_replicas=1)
    key = warning_key("d1", "idle_paying", at(2 * H), 0)
    now = at(6 * H)
    ts = timers(d, at(5 * H), POLICY, now, PRICES)
    assert stale_reason(key, ts, d, at(5 * H), now).startswith("traffic resumed at 2026-11-02 14:00 UTC")
    # traffic before the warning was posted is the stretch it was about, not a resumption
    ts2 = timers(d, at(2.5 * H), POLICY, now, PRICES)
    assert stale_reason(key, ts2, d, at(2.5 * H), now, warned_at=at(3 * H)).startswith("the due time moved")


# -- property: a quiet deployment has nothing due ---------------------------------------------
@settings(max_examples=600, deadline=None)
@given(
    state=st.sampled_from(["READY", "UPDATING", "FAILED", "CREATING", "DELETED"]),
    last=st.one_of(st.none(), st.integers(-3 * 86400, 20 * 86400)),
    before_us=st.one_of(st.integers(1, 2_000_000), st.integers(1, 3 * 86400 * 10**6)),
    min_replicas=st.integers(0, 2),
    replicas=st.one_of(st.none(), st.integers(0, 3)),
    unused=st.one_of(st.none(), st.sampled_from([0, 60, 3600, 86400, 30 * 86400])),
    window=st.one_of(st.none(), st.integers(0, 7200)),
    delete_time=st.one_of(st.none(), st.integers(-86400, 30 * 86400)),
    ready=st.one_of(st.none(), st.integers(0, 86400)),
    delete_leads=st.lists(st.integers(0, 3 * 86400), max_size=3),
    stz_lead=st.integers(0, 7200),
    idle_after=st.integers(0, 4 * 86400),
    snoozed=st.one_of(st.none(), st.integers(0, 40 * 86400)),
    kept_warm=st.one_of(st.none(), st.integers(0, 40 * 86400)),
    scaled_up=st.one_of(st.none(), st.integers(0, 20 * 86400)),
    micros=st.integers(0, 999_999),
)
def test_before_quiet_until_nothing_is_due(state, last, before_us, min_replicas, replicas, unused, window, delete_time,
                                           ready, delete_leads, stz_lead, idle_after, snoozed, kept_warm, scaled_up,
                                           micros):
    policy = LifecyclePolicy(warn_before_delete_s=tuple(delete_leads), warn_before_scale_to_zero_s=stz_lead,
                             idle_paying_after_s=idle_after)
    d = dep(state=state, min_replicas=min_replicas, replicas=replicas, unused_delete_s=unused,
            scale_to_zero_s=window, delete_time=iso(at(delete_time)) if delete_time is not None else None,
            ready_at=iso(at(ready, microseconds=micros)) if ready is not None else None)
    last_dt = at(last, microseconds=micros) if last is not None else None
    opt = {k: (at(v) if v is not None else None) for k, v in
           {"snoozed_until": snoozed, "keep_warm_until": kept_warm, "scaled_up_at": scaled_up}.items()}
    quiet = quiet_until(d, last_dt, policy)
    if quiet is None:
        assert timers(d, last_dt, policy, at(0), PRICES, **opt) == []
        return
    now = quiet - timedelta(microseconds=before_us)  # the hardest cases are just before it
    ts = timers(d, last_dt, policy, now, PRICES, **opt)
    assert due_warnings(ts, policy, now, []) == []
    assert due_actions(d, ts, policy, now) == []
    assert all(t.due - timedelta(seconds=max(warning_leads(t, policy), default=0.0)) > now for t in ts)


def test_a_fresh_deployment_is_quiet_until_its_first_warning_window_with_the_default_policy():
    d = dep(min_replicas=0, replicas=1)
    # scale to zero after 1 h, warned 10 min before: nothing can be due for 50 min
    assert quiet_until(d, at(0), POLICY) == at(3000 - 1)
    assert quiet_until(dep(state="DELETED"), at(0), POLICY) is None
