"""Settings of one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # Contract §3: a GPU quota per accelerator type per account; a create, update or scale that
    # would hold more GPUs of a type than its quota is 429 RESOURCE_EXHAUSTED. ``gpu_quota`` names
    # types explicitly (``--quota TYPE=N,...``); every other type gets ``default_gpu_quota``, where
    # ``None`` is no limit. ``fwbot sim`` starts with DEFAULT_GPU_QUOTA per type and ``fwbot dev``
    # with its own (bot.app.dev.DEV_QUOTA); a SimConfig built in code (tests, benchmarks) has no limit
    # unless it asks for one.
    default_gpu_quota: int | None = None
    gpu_quota: dict[str, int] = field(default_factory=dict)

    def quota_for(self, accelerator_type: str) -> int | None:
        """The account's GPU quota for one accelerator type (``None``: unlimited)."""
        if accelerator_type in self.gpu_quota:
            return int(self.gpu_quota[accelerator_type])
        return self.default_gpu_quota


# assumption: 32 GPUs of each type (the contract's "about 8" is too tight for demos of big models).
DEFAULT_GPU_QUOTA = 32
