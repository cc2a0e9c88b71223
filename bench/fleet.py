"""The account the sweep benchmark runs against: who owns what, where it is tracked, what changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
USERS = ("U0ALICE", "U0BOB", "U0CAROL", "U0DAVE")
CHANNELS = tuple(f"C0BENCH{i:02d}" for i in range(20))
# Deployments that change between the setup sweep and the measured one: two in each of five
# channels, so the Slack floor (one call per channel with news) is 5 and the news is 10.
NEWS_CHANNELS = (1, 2, 3, 5, 6)
NEWS = 10


@dataclass(frozen=True)
class FleetDeployment:
    id: str
    owner: str
    channel: str
    min_replicas: int
    news: bool


def fleet(n: int) -> list[FleetDeployment]:
    """``n`` deployments: a quarter scale to zero (min 0), the rest keep one replica."""
    out, news = [], 0
    for i in range(n):
        min_replicas = 0 if i % 4 == 0 else 1
        is_news = news < NEWS and min_replicas == 1 and i % len(CHANNELS) in NEWS_CHANNELS
        news += is_news
        out.append(FleetDeployment(f"dep-{i:05d}", USERS[i % len(USERS)], CHANNELS[i % len(CHANNELS)],
                                   min_replicas, is_news))
    return out
