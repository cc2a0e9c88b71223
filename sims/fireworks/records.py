"""The records one simulated account keeps, and ``Account``: the data every part of ``SimState`` shares."""

from __future__ import annotations

import random
import re
import string
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import billing, metrics
from .config import SimConfig
from .wire import parse_duration

# assumption: ids breaking the documented rule (uppercase, underscores, ...) are 400 INVALID_ARGUMENT.
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")

CREATING, READY, UPDATING, DELETING, DELETED, FAILED = (
    "CREATING", "READY", "UPDATING", "DELETING", "DELETED", "FAILED")


@dataclass
class Deployment:
    """One deployment and the autoscaler's bookkeeping for it."""

    id: str
    seq: int
    spec: dict[str, Any]
    create_time: float
    update_time: float
    state: str = CREATING
    status_code: str = "OK"
    status_message: str = ""
    ready_at: float | None = None
    replicas: int = 0
    desired: int = 0
    pending_at: float | None = None  # when ``replicas`` reaches ``desired`` (start-up)
    upscale_at: float | None = None  # an autoscaler decision waiting out the scale-up window
    upscale_to: int = 0
    high_load_until: float = 0.0  # last time the load needed the current replica count
    idle_since: float = 0.0  # start of the current no-traffic period, for scale-to-zero
    anchor: float = 0.0  # start of the unused period, for auto-delete
    last_traffic: float | None = None
    deleted_at: float | None = None
    deleting_until: float | None = None
    purge_time: float | None = None
    billed_type: str = ""
    billed_count: int = 0

    @property
    def name(self) -> str:
        return self.spec["_name"]

    @property
    def min(self) -> int:
        return int(self.spec["minReplicaCount"])

    @property
    def max(self) -> int:
        return int(self.spec["maxReplicaCount"])

    def window(self, key: str) -> float:
        return parse_duration(self.spec["autoscalingPolicy"][key], key)


@dataclass
class OwnModel:
    """A model uploaded to the account (LoRA addons)."""

    id: str
    spec: dict[str, Any]
    create_time: float
    ready_at: float


@dataclass
class DeployedModel:
    """A model loaded onto a deployment."""

    id: str
    model: str
    deployment: str
    create_time: float
    update_time: float
    loaded_at: float
    display_name: str = ""
    description: str = ""
    default: bool = False
    public: bool = False
    serverless: bool = False


@dataclass
class HttpRequest:
    """One request the simulator answered, for tests that count calls."""

    method: str
    path: str
    status: int
    t: float


def random_id(rng: random.Random) -> str:
    # assumption: observed generated ids are 8 lowercase alphanumerics starting with a letter (contract §1).
    return rng.choice(string.ascii_lowercase) + "".join(
        rng.choice(string.ascii_lowercase + string.digits) for _ in range(7))


class Account:
    """One account's data, read and written by every part of ``SimState`` (sims.fireworks.state).

    All times are POSIX seconds (float). Callers hold ``lock`` around ``advance`` plus the operation.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.account = config.account_id
        self.lock = threading.RLock()
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self.deployments: dict[str, Deployment] = {}
        self.models: dict[str, OwnModel] = {}
        self.deployed_models: dict[str, DeployedModel] = {}
        self.ledgers: dict[str, billing.Ledger] = {}
        self.traffic: dict[str, deque[metrics.RequestRecord]] = {}
        self.requests: list[HttpRequest] = []
        self.metrics_calls: deque[float] = deque()
        self.seq = 0
        self.dirty = False
        # Set by the simulator so that test helpers read the model as of the clock's now.
        self.now_fn: Callable[[], float] | None = None
