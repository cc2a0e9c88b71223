"""The per-channel pacing of the bot's own posts (≤ 1 message per second per channel)."""

from __future__ import annotations

from bot.slack import ChannelPacer


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


def test_right_after_start_a_channel_waits_a_whole_interval():
    # The previous process may have posted just before it died.
    ft = FakeTime()
    pacer = ChannelPacer(1.0, sleep=ft.sleep, monotonic=ft.monotonic)
    ft.t += 0.25
    pacer.wait("C1")
    assert ft.slept == [0.75]
