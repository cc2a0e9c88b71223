"""Requests to the app: signed HTTP POSTs to ``events_url``, or its Socket Mode connection once it has
one; each answer (the app's ack) is kept as a ``Delivery``."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from . import socket_mode
from .model import Delivery
from .signing import signed_headers
from .socket_mode import SocketLink
from .store import Store

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# Deliveries go straight to the app, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DeliveryMixin(Store):
    """Getting requests to the app and its answers back (part of SlackWorkspace)."""

    @property
    def deliveries(self) -> list[tuple[str, Delivery]]:
        """(kind, delivery) for every request sent to the app, in order."""
        with self._lock:
            return list(self._deliveries)

    def send_raw(self, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST exactly these bytes and headers to the app (for request-verification tests)."""
        return self._post(body, headers, None)

    def signed_headers(self, body: bytes, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        content_type = JSON if body.lstrip().startswith(b"{") else FORM
        return signed_headers(secret if secret is not None else self.signing_secret, body, content_type, timestamp)

    def _deliver(self, body: bytes, content_type: str, payload: dict[str, Any]) -> Delivery:
        link = self._socket
        if link is not None and not link.closed.is_set():
            return self._deliver_over_socket(link, payload)
        if not self.events_url:
            raise RuntimeError("events_url is not set: nowhere to deliver to")
        headers = signed_headers(self.signing_secret, body, content_type)
        return self._post(body, headers, payload)

    def _post(self, body: bytes, headers: dict[str, str], payload: dict[str, Any] | None) -> Delivery:
        if not self.events_url:
            raise RuntimeError("events_url is not set: nowhere to deliver to")
        request = urllib.request.Request(self.events_url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with _DIRECT.open(request, timeout=self.ack_timeout) as response:
                delivery = Delivery(response.status, response.read().decode("utf-8", "replace"),
                                    time.monotonic() - started, dict(response.headers.items()), payload=payload)
        except urllib.error.HTTPError as exc:
            delivery = Delivery(exc.code, exc.read().decode("utf-8", "replace"), time.monotonic() - started,
                                dict(exc.headers.items()), payload=payload)
        except TimeoutError:
            delivery = Delivery(0, "", time.monotonic() - started, error="operation_timeout", payload=payload)
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            timed_out = isinstance(getattr(exc, "reason", None), TimeoutError)
            delivery = Delivery(0, "", time.monotonic() - started, payload=payload,
                                error="operation_timeout" if timed_out else "dispatch_failed")
        kind = str((payload or {}).get("type") or (payload or {}).get("command") or "raw")
        with self._lock:
            self._deliveries.append((kind, delivery))
        return delivery

    def open_socket_ticket(self) -> str:
        """A one-time ``ws://`` URL for apps.connections.open."""
        ticket = socket_mode.new_ticket()
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.url.replace('http://', 'ws://', 1)}/link/{ticket}"

    def take_socket_ticket(self, ticket: str) -> bool:
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return True
            return False

    def serve_socket(self, sock: Any) -> None:
        """Run one app connection until it closes (called on the server's connection thread)."""
        link = SocketLink(sock)
        with self._lock:
            self._socket = link
        try:
            link.serve()
        finally:
            with self._lock:
                if self._socket is link:
                    self._socket = None

    @property
    def socket_connected(self) -> bool:
        link = self._socket
        return link is not None and not link.closed.is_set()

    def _deliver_over_socket(self, link: SocketLink, payload: dict[str, Any]) -> Delivery:
        if "command" in payload:
            kind, accepts = "slash_commands", True
        elif payload.get("type") == "event_callback":
            kind, accepts = "events_api", False
        else:
            kind, accepts = "interactive", True
        started = time.monotonic()
        answer = link.deliver(kind, payload, self.ack_timeout, accepts)
        elapsed = time.monotonic() - started
        if answer is None:
            delivery = Delivery(0, "", elapsed, error="operation_timeout", payload=payload)
        else:
            body = json.dumps(answer["payload"]) if answer.get("payload") else ""
            delivery = Delivery(200, body, elapsed, {"content-type": "application/json"}, payload=payload)
        with self._lock:
            self._deliveries.append((str(payload.get("type") or payload.get("command") or kind), delivery))
        return delivery
