"""The in-memory model of one simulated Fireworks account, driven by a clock.

``SimState`` is put together from one part per resource, each a mixin over ``records.Account`` (the
data they share): ``lifecycle`` moves deployments on with time, ``deployments``, ``models``, ``lora``
(deployed models) and ``shapes`` serve their resources, ``validation`` and ``quota`` check changes,
``inference`` and ``usage`` serve the data plane, metrics and billing, ``persistence`` the state file.

All times inside are POSIX seconds (float); the wire format is produced by the ``*_wire`` methods.
Callers hold ``lock`` around ``advance`` plus the operation (the HTTP layer does this).
"""

from __future__ import annotations

import re

from .deployments import DeploymentsMixin
from .inference import InferenceMixin
from .lifecycle import LifecycleMixin
from .lora import DeployedModelsMixin
from .models import ModelsMixin
from .persistence import PersistenceMixin
from .quota import QuotaMixin
from .shapes import ShapesMixin
from .usage import UsageMixin
from .validation import ValidationMixin


class SimState(LifecycleMixin, DeploymentsMixin, ModelsMixin, DeployedModelsMixin, ShapesMixin, ValidationMixin,
               QuotaMixin, InferenceMixin, UsageMixin, PersistenceMixin):
    """Deployments, models, deployed models, traffic and the billing ledger of one account."""

    def count_requests(self, method: str | None = None, path: str | None = None,
                       status: int | None = None) -> int:
        """How many HTTP requests matched; ``path`` is a regular expression for the whole path."""
        with self.lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method.upper())
                       and (path is None or re.fullmatch(path, r.path))
                       and (status is None or r.status == status))
