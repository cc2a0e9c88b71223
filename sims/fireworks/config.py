"""Settings of one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimConfig:
    """How the simulated Fireworks account behaves.

    ``relaxed`` allows autoscaling windows down to 1 s (tests and demos). ``create_seconds`` is how
    long CREATING, UPDATING roll-outs and cold starts take. ``auto_delete_after`` is the idle time
    after which a deployment with min replicas 0 is soft-deleted, ``purge_after`` how long a
    soft-deleted deployment stays before it is gone for good.
    """

    account_id: str = "demo"
    api_key: str = "sim-key"
    relaxed: bool = False
    create_seconds: float = 5.0
    fail_rate: float = 0.0
    latency_ms: int = 0
    auto_delete_after: float = 7 * 86400.0
    # assumption: the soft-delete retention period is undocumented; 7 days by default.
    purge_after: float = 7 * 86400.0
    state_file: str | None = None
    seed: int | None = None
    # Contract §2.1: a strict mode in which PATCH without updateMask is rejected with 400.
    require_update_mask: bool = False
    # Contract §2.8: 6 scrapes per minute per account.
    metrics_per_minute: int = 6
