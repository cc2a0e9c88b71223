"""The pure approval core: policy, who may decide, reminder/expiry/recovery timing, click outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.approvals import (
    ClickOutcome,
    approval_reason,
    button_binding_problem,
    click_outcome,
    decision_refusal,
    expand_approvers,
    expires_at,
    expiry_due,
    recovery_due,
    reminder_at,
    reminder_due,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


# -- policy ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("new, before, needed", [
    (16.0, None, False),       # below the threshold: runs at once
    (20.0, None, False),       # at it: not above it
    (20.01, None, True),
    (64.0, None, True),
    (64.0, 16.0, True),        # raises an existing deployment above it
    (64.0, 64.0, False),       # already above and not raised (e.g. a display-name change)
    (32.0, 64.0, False),       # lowers it
    (96.0, 64.0, True),        # raises one that was above already
    (None, None, True),        # unknown price: cannot be bounded
])
def test_threshold(new, before, needed):
    reason = approval_reason(approvers=["U_A"], threshold=20.0, new_usd=new, before_usd=before)
    assert (reason is not None) == needed


def test_reasons_say_why():
    assert "$64.00/h" in approval_reason(approvers=["U_A"], threshold=20, new_usd=64.0)
    assert "from $32.00/h to $64.00/h" in approval_reason(approvers=["U_A"], threshold=20, new_usd=64.0,
                                                          before_usd=32.0)
    assert "someone else's" in approval_reason(approvers=["U_A"], threshold=20, new_usd=0.0, foreign_delete=True)


@given(new=st.one_of(st.none(), st.floats(0, 1e6)), before=st.one_of(st.none(), st.floats(0, 1e6)),
       foreign=st.booleans())
def test_no_approvers_means_everything_runs(new, before, foreign):
    assert approval_reason(approvers=[], threshold=20, new_usd=new, before_usd=before, foreign_delete=foreign) is None


# -- who may decide --------------------------------------------------------------------------------
def test_expand_approvers_users_and_groups():
    assert expand_approvers(["U_A", "S_G"], {"S_G": ["U_B", "U_C"]}) == {"U_A", "U_B", "U_C"}


def test_a_group_that_could_not_be_read_adds_nobody():
    assert expand_approvers(["S_G"], {}) == frozenset()


def test_decision_refusal():
    assert decision_refusal("U_A", requester="U_DEV", approvers={"U_A"}) is None
    assert "someone else" in decision_refusal("U_DEV", requester="U_DEV", approvers={"U_DEV", "U_A"})
    assert "only approvers" in decision_refusal("U_X", requester="U_DEV", approvers={"U_A"})
    assert "only approvers" in decision_refusal("U_X", requester="U_DEV", approvers=set())


def test_binding():
    assert "does not belong to any" in button_binding_problem(record_exists=False, record_message_ts=None,
                                                              clicked_message_ts="1.1")
    assert "this message" in button_binding_problem(record_exists=True, record_message_ts="1.1",
                                                    clicked_message_ts="2.2")
    assert button_binding_problem(record_exists=True, record_message_ts="1.1", clicked_message_ts="1.1") is None


# -- time ------------------------------------------------------------------------------------------
def test_one_reminder_half_way_then_expiry():
    exp = expires_at(T0, 24 * 3600)
    assert exp == T0 + 24 * H and reminder_at(T0, exp) == T0 + 12 * H
    due = lambda now, reminded=None, status="pending": reminder_due(  # noqa: E731
        status=status, created_at=T0, expires=exp, reminded_at=reminded, now=now)
    assert not due(T0 + 11 * H)
    assert due(T0 + 12 * H)
    assert not due(T0 + 13 * H, reminded=T0 + 12 * H)  # only one
    assert not due(T0 + 13 * H, status="approved")
    assert not due(T0 + 24 * H)  # expired: the expiry notice says it instead
    assert not expiry_due(status="pending", expires=exp, now=T0 + 24 * H - timedelta(seconds=1))
    assert expiry_due(status="pending", expires=exp, now=T0 + 24 * H)
    assert not expiry_due(status="rejected", expires=exp, now=T0 + 48 * H)


def test_recovery_picks_up_only_runs_that_died():
    boot = T0 + H
    rec = lambda **kw: recovery_due(**{"status": "approved", "executed_at": None, "result": None,  # noqa: E731
                                       "booted_at": boot, "now": boot, **kw})
    assert rec()                                   # approved, never started
    assert rec(executed_at=T0)                     # started by the process before this one
    assert not rec(executed_at=boot)               # started by this process: it is running
    assert rec(executed_at=boot, now=boot + timedelta(minutes=16))  # outlived the lease
    assert not rec(executed_at=T0, result={"ok": True})
    assert not rec(status="pending")
    # With replicas, whether its runner is gone decides, whenever it started.
    assert rec(executed_at=boot, runner_gone=True)             # another replica ran it and died
    before_boot = boot - timedelta(minutes=1)
    assert not rec(executed_at=before_boot, runner_gone=False)  # another replica is running it
    assert rec(executed_at=before_boot, now=boot + timedelta(minutes=15), runner_gone=False)  # outlived the lease


def test_click_outcomes():
    assert click_outcome(won=True, status="approved", decided_by="U_A", decided_at=T0, expires=T0 + H,
                         now=T0) is None
    assert click_outcome(won=False, status="approved", decided_by="U_A", decided_at=T0, expires=T0 + H,
                         now=T0) == ClickOutcome("decided", "approved", "U_A", T0)
    assert click_outcome(won=False, status="pending", decided_by=None, decided_at=None, expires=T0 + H,
                         now=T0 + H).kind == "expired"
    assert click_outcome(won=False, status=None, decided_by=None, decided_at=None, expires=None,
                         now=T0).kind == "unknown"
