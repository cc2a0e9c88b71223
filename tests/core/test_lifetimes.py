"""Maximum lifetimes and quiet-hours holding in the lifecycle core, on plain values."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.core.clock import iso
from bot.core.lifecycle import (
    LifecyclePolicy,
    Lifetime,
    action_key,
    can_wait_until,
    due_actions,
    due_warnings,
    lifetime_due,
    quiet_until,
    stale_reason,
    timers,
    warning_key,
    warning_leads,
)
from tests.core.test_lifecycle import PRICES, at, by_kind, dep

H = 3600.0
D = 86400.0
POLICY = LifecyclePolicy(warn_before_delete_s=(86400.0, 3600.0))
THREE_DAYS = Lifetime(3 * D, "max_lifetime, from channel C1")


def lifetime_timer(d, lifetime=THREE_DAYS, last_traffic=None, now=None, **kw):
    return by_kind(timers(d, last_traffic, POLICY, now or at(0), PRICES, lifetime=lifetime, **kw))["max_lifetime"]


# -- due times ------------------------------------------------------------------------------------
def test_a_lifetime_is_due_its_limit_after_fireworks_create_time():
    t = lifetime_timer(dep(create_time=iso(at(0)), first_seen_at=iso(at(5))))
    assert t.due == at(3 * D) and t.anchor == at(0) and t.bot_acts
    assert t.limit_s == 3 * D and t.rule == "max_lifetime, from channel C1" and t.renewed_by is None


def test_without_create_time_fwbots_own_record_of_the_creation_counts():
    t = lifetime_timer(dep(create_time=None, first_seen_at=iso(at(42.7))))
    assert t.due == at(42 + 3 * D)  # whole seconds, rounded down


def test_a_renewal_restarts_the_lifetime_from_the_click():
    renewed = Lifetime(3 * D, "r", renewed_at=at(2 * D + 7), renewed_by="U2")
    t = lifetime_timer(dep(), renewed)
    assert t.due == at(5 * D + 7) and t.anchor == at(2 * D + 7) and t.renewed_by == "U2"


def test_a_renewal_older_than_the_deployment_counts_for_nothing():
    # An earlier deployment with the same id was renewed; this one was created since.
    old = Lifetime(3 * D, "r", renewed_at=at(-D), renewed_by="U2")
    t = lifetime_timer(dep(), old)
    assert t.due == at(3 * D) and t.renewed_by is None


def test_no_limit_no_timer():
    assert "max_lifetime" not in by_kind(timers(dep(), None, POLICY, at(0), PRICES))
    assert lifetime_due(dep(), None) is None
    assert lifetime_due(dep(), Lifetime(0)) is None


def test_traffic_keep_warm_and_snooze_do_not_move_a_lifetime():
    plain = lifetime_timer(dep())
    moved = lifetime_timer(dep(min_replicas=1), last_traffic=at(2.9 * D), snoozed_until=at(10 * D),
                           keep_warm_until=at(11 * D), scaled_up_at=at(2 * D))
    assert moved.due == plain.due == at(3 * D) and not moved.snoozed


def test_gone_and_creating_deployments_have_no_lifetime_timer():
    for d in (dep(state="DELETED"), dep(state="CREATING"), dep(gone_at=iso(at(1)))):
        assert timers(d, None, POLICY, at(0), PRICES, lifetime=THREE_DAYS) == []
    assert "max_lifetime" in by_kind(timers(dep(state="FAILED"), None, POLICY, at(0), PRICES, lifetime=THREE_DAYS))


@given(created=st.integers(0, 10 * int(D)), limit=st.integers(60, 30 * int(D)),
       renewals=st.lists(st.integers(0, 40 * int(D)), max_size=4))
def test_the_due_time_is_never_before_the_limit_after_creation_nor_after_the_latest_renewal(created, limit, renewals):
    d = dep(create_time=iso(at(created)), first_seen_at=iso(at(created)))
    latest = max(renewals) if renewals else None
    life = Lifetime(float(limit), renewed_at=at(latest) if latest is not None else None, renewed_by="U2")
    due, anchor = lifetime_due(d, life)
    assert due >= at(created + limit)
    if latest is not None:
        assert due >= at(latest + limit)
    assert due == at(max(created, latest if latest is not None else created) + limit)


# -- warnings and the deletion --------------------------------------------------------------------
def test_a_lifetime_is_warned_at_each_deletion_lead_then_deleted_once_warned():
    d = dep(min_replicas=1)
    t = lifetime_timer(d)
    assert warning_leads(t, POLICY) == (D, H)
    assert due_warnings([t], POLICY, at(2 * D - 1), []) == []
    [first] = due_warnings([t], POLICY, at(2 * D), [])
    assert first.lead_s == D
    [second] = due_warnings([t], POLICY, at(3 * D - H), [first.key])
    assert second.lead_s == H
    # Due, but deleted only once a warning has been out for the last lead.
    sent = {first.key: at(2 * D), second.key: at(3 * D - H)}
    [action] = due_actions(d, [t], POLICY, at(3 * D), warnings_sent=sent)
    assert action.kind == "lifetime_delete" and action.key == action_key(t)
    assert action.key == f"lifetime_delete:d1:{iso(at(3 * D))}"
    late = {second.key: at(3 * D - 60)}  # its only warning came a minute ago (e.g. after an outage)
    assert due_actions(d, [t], POLICY, at(3 * D), warnings_sent=late) == []
    assert due_actions(d, [t], POLICY, at(3 * D), warnings_sent=sent, done=[action.key]) == []


def test_a_short_lifetime_is_warned_at_half_its_length():
    t = lifetime_timer(dep(), Lifetime(2 * H))
    assert warning_leads(t, POLICY) == (H,)


def test_the_sweep_bound_includes_the_lifetime():
    d = dep(min_replicas=1)
    assert quiet_until(d, at(0), POLICY, lifetime_due_at=at(3 * D)) <= at(2 * D)


def test_a_click_on_a_lifetime_warning_is_stale_only_when_the_due_time_moved_not_for_traffic():
    d = dep(min_replicas=1)
    t = lifetime_timer(d)
    key = warning_key("d1", "max_lifetime", t.due, H)
    assert stale_reason(key, [t], d, at(3 * D - 10), at(3 * D - 5)) is None
    renewed = lifetime_timer(d, Lifetime(3 * D, renewed_at=at(3 * D - 5), renewed_by="U2"))
    assert "due time moved" in stale_reason(key, [renewed], d, at(3 * D - 10), at(3 * D - 4))


# -- quiet hours ----------------------------------------------------------------------------------
def test_an_idle_report_can_always_wait():
    idle = by_kind(timers(dep(min_replicas=1), None, POLICY, at(0), PRICES))["idle_paying"]
    assert can_wait_until(idle, POLICY, at(30 * D))


def test_a_deletion_waits_only_while_its_last_lead_still_fits_after_the_quiet_hours():
    t = lifetime_timer(dep())  # due at 3d, last lead 1h
    assert can_wait_until(t, POLICY, at(3 * D - H))
    assert not can_wait_until(t, POLICY, at(3 * D - H + 1))
    assert not can_wait_until(t, POLICY, at(3 * D + H))


def test_a_scale_to_zero_due_before_the_quiet_hours_end_cannot_wait():
    t = by_kind(timers(dep(scale_to_zero_s=2 * H), None, POLICY, at(0), PRICES))["scale_to_zero"]
    assert not can_wait_until(t, POLICY, t.due + timedelta(minutes=1))
    assert can_wait_until(t, POLICY, t.due - timedelta(seconds=POLICY.warn_before_scale_to_zero_s))
