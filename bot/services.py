"""What the listeners and scheduled jobs share: settings, store, gateway, clock, Slack poster."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import Settings
from bot.fireworks import FireworksGateway
from bot.slack import Poster
from storage.store import Store

CATALOG_TTL_S = 600.0


@dataclass
class Services:
    settings: Settings
    store: Store
    gateway: FireworksGateway
    clock: Clock
    poster: Poster
    simulated: bool
    _catalog: list[dict] = field(default_factory=list)
    _catalog_at: float = 0.0
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def prices(self) -> dict[str, float]:
        return self.settings.price_table

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.settings.admins

    def catalog(self) -> list[dict]:
        """Deployable base models (cached; the catalog changes rarely)."""
        with self._catalog_lock:
            if not self._catalog or time.monotonic() - self._catalog_at > CATALOG_TTL_S:
                self._catalog = self.gateway.list_models("fireworks")
                self._catalog_at = time.monotonic()
            return list(self._catalog)

    def find_model(self, name: str) -> dict | None:
        for m in self.catalog():
            if m.get("name") == name:
                return m
        if not name.startswith("accounts/fireworks/"):
            try:
                return self.gateway.get_model(name)
            except Exception:  # noqa: BLE001 - unknown model answers None
                return None
        return None
