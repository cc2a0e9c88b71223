"""Socket Mode for the local workspace: the WebSocket link Slack opens to apps.

``apps.connections.open`` (called with the app-level ``xapp-`` token) hands out a one-time
``ws://…/link/<ticket>`` URL. The app connects; the workspace sends ``hello``, then delivers
slash commands, interactions and events as envelopes, and waits up to the ack timeout for the
app to answer with the same ``envelope_id`` (and, for commands and views, a response payload),
exactly as Slack does. Minimal RFC 6455: text, ping/pong and close frames; client frames masked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A server frame (unmasked, final)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("socket closed")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One (possibly masked) frame: (opcode, payload). Fragmented messages are joined."""
    payload = b""
    while True:
        b1, b2 = _read_exact(sock, 2)
        opcode, fin = b1 & 0x0F, b1 & 0x80
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", _read_exact(sock, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", _read_exact(sock, 8))[0]
        mask = _read_exact(sock, 4) if b2 & 0x80 else None
        data = _read_exact(sock, n)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        if opcode in (OP_CLOSE, OP_PING, OP_PONG):
            return opcode, data
        payload += data
        if fin:
            return OP_TEXT if opcode in (0, OP_TEXT) else opcode, payload


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None


class SocketLink:
    """One connected app. ``deliver`` sends an envelope and waits for its ack."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self.closed = threading.Event()

    def send_json(self, data: dict[str, Any]) -> None:
        self._send(OP_TEXT, json.dumps(data).encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(encode_frame(opcode, payload))

    def deliver(self, envelope_type: str, payload: dict[str, Any], timeout: float,
                accepts_response_payload: bool) -> dict[str, Any] | None:
        """Send one envelope; the app's ack (``{"envelope_id", "payload"?}``) or None on timeout."""
        envelope_id = str(uuid.uuid4())
        pending = _Pending()
        with self._pending_lock:
            self._pending[envelope_id] = pending
        try:
            self.send_json({"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                            "accepts_response_payload": accepts_response_payload, "retry_attempt": 0,
                            "retry_reason": ""})
            pending.done.wait(timeout)
            return pending.answer
        finally:
            with self._pending_lock:
                self._pending.pop(envelope_id, None)

    def serve(self) -> None:
        """Read the app's frames until it goes away: acks, pings, close."""
        self.send_json({"type": "hello", "num_connections": 1,
                        "debug_info": {"host": "local", "approximate_connection_time": 3600},
                        "connection_info": {"app_id": "A0FWBOT"}})
        try:
            while True:
                opcode, data = read_frame(self.sock)
                if opcode == OP_PING:
                    self._send(OP_PONG, data)
                elif opcode == OP_CLOSE:
                    self._send(OP_CLOSE, data[:2])
                    break
                elif opcode == OP_TEXT:
                    try:
                        message = json.loads(data.decode("utf-8"))
                    except ValueError:
                        continue
                    with self._pending_lock:
                        pending = self._pending.get(str(message.get("envelope_id")))
                    if pending is not None:
                        pending.answer = message
                        pending.done.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()


def new_ticket() -> str:
    return base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip("=")
