"""The account as data: the state file (``save``, ``load``) and the ``GET /_sim/state`` dump."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from typing import Any

from . import billing
from .records import Account, DeployedModel, Deployment, OwnModel
from .wire import ts


class PersistenceMixin(Account):
    """Saving, loading and dumping the account (part of SimState)."""

    def dump(self) -> dict[str, Any]:
        """Everything, for ``GET /_sim/state``."""
        with self.lock:
            return self._dump()

    def _dump(self) -> dict[str, Any]:
        return {
            "now": ts(self.now),
            "deployments": [self.deployment_wire(d) for d in self.deployments.values()],
            "models": [self.model_wire(m) for m in self.models.values()],
            "deployedModels": [self.deployed_model_wire(dm) for dm in self.deployed_models.values()],
            "ledgers": [asdict(x) for x in self.ledgers.values()],
            "requests": len(self.requests),
        }

    def save(self, path: str) -> None:
        """Write the durable state atomically (temp file + rename)."""
        data = {
            "version": 1,
            "now": self.now,
            "seq": self.seq,
            "deployments": [asdict(d) for d in self.deployments.values()],
            "models": [asdict(m) for m in self.models.values()],
            "deployedModels": [asdict(dm) for dm in self.deployed_models.values()],
            "ledgers": [asdict(x) for x in self.ledgers.values()],
        }
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".fwsim-", dir=directory)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
        self.dirty = False

    def load(self, path: str) -> None:
        """Read a file written by ``save`` (missing file: start empty)."""
        if not os.path.exists(path):
            return
        with open(path) as fh:
            data = json.load(fh)
        self.now = float(data.get("now", 0.0))
        self.seq = int(data.get("seq", 0))
        self.deployments = {d["id"]: Deployment(**d) for d in data.get("deployments", [])}
        self.models = {m["id"]: OwnModel(**m) for m in data.get("models", [])}
        self.deployed_models = {x["id"]: DeployedModel(**x) for x in data.get("deployedModels", [])}
        self.ledgers = {x["name"]: billing.Ledger(**x) for x in data.get("ledgers", [])}
