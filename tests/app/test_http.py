"""A signature is accepted once within Slack's 5-minute window; what expired is forgotten."""

from __future__ import annotations

from bot.app.wiring import ReplayGuard


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_replay_within_the_window_is_refused_and_accepted_once_it_expired():
    clock = Ticks()
    guard = ReplayGuard(window_s=300, clock=clock)
    assert guard.first_time("v0=a")
    clock.now = 300
    assert not guard.first_time("v0=a")
    clock.now = 300.5
    assert guard.first_time("v0=a")  # the old one expired; Slack would refuse the timestamp anyway


def test_only_the_last_windows_signatures_are_kept():
    clock = Ticks()
    guard = ReplayGuard(window_s=300, clock=clock)
    for i in range(10_000):
        clock.now = i * 0.1  # 10 requests a second for 1000 s
        assert guard.first_time(f"v0={i}")
    assert len(guard._seen) == len(guard._order) <= 3001
    assert not guard.first_time("v0=9999") and guard.first_time("v0=0")
