"""The per-channel pacing of the bot's own posts (≤ 1 message per second per channel)."""

from __future__ import annotations

import pytest

from bot.adapters.slack import ChannelPacer


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.t += seconds


def test_posts_to_one_channel_are_spaced_and_channels_are_independent():
    ft = FakeTime()
    pacer = ChannelPacer(1.0, sleep=ft.sleep, monotonic=ft.monotonic)
    ft.t += 5  # long after start
    pacer.wait("C1")
    pacer.wait("C1")
    pacer.wait("C2")
    assert ft.slept == [1.0]


def test_a_slow_post_spaces_the_next_from_when_it_finished():
    ft = FakeTime()
    pacer = ChannelPacer(1.0, sleep=ft.sleep, monotonic=ft.monotonic)
    ft.t += 5
    pacer.wait("C1")
    ft.t += 0.8  # the post itself took 0.8 s
    pacer.sent("C1")
    pacer.wait("C1")
    assert ft.slept == [1.0]


def test_right_after_start_a_channel_the_previous_process_posted_to_waits_out_its_interval():
    # The outbox recorded a post to C1 0.25 s before this process started; C2 had none.
    ft = FakeTime()
    pacer = ChannelPacer(1.0, sleep=ft.sleep, monotonic=ft.monotonic)
    pacer.posted_recently({"C1": 0.25})
    pacer.wait("C2")
    pacer.wait("C1")
    assert ft.slept == [0.75]


def test_try_slot_never_sleeps_and_takes_a_free_slot_only():
    ft = FakeTime()
    pacer = ChannelPacer(1.0, sleep=ft.sleep, monotonic=ft.monotonic)
    assert pacer.try_slot("C1") == 0.0
    ft.t += 0.4
    assert pacer.try_slot("C1") == pytest.approx(0.6)
    assert pacer.try_slot("C2") == 0.0
    ft.t += 0.6
    assert pacer.try_slot("C1") == 0.0
    assert ft.slept == []
