"""The workspace's HTTP face: Web API, response_url webhooks, file uploads, and the browser UI.

Routes:
  POST|GET /api/<method>          Slack Web API (form, JSON or multipart bodies; query too)
  POST     /webhook/<token>       response_url
  POST     /upload/v1/<file_id>   upload URL from files.getUploadURLExternal
  GET      /files/<id>/<name>     file bytes (url_private)
  GET      /  /static/<file>      the browser workspace
  GET|POST /_ui/...               the browser workspace's JSON endpoints and event stream
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from . import ui, web_api
from .socket_mode import accept_key

if TYPE_CHECKING:
    from .workspace import SlackWorkspace

log = logging.getLogger(__name__)

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields as text, file fields as bytes."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is None:
            fields[str(name)] = data.decode("utf-8", "replace")
        else:
            fields[str(name)] = data
    return fields


def read_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Query string, then the body, merged the way Slack accepts them."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" and body:
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            params.update(decoded)
    elif kind == "multipart/form-data":
        params.update(parse_multipart(content_type, body))
    elif body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def make_handler(ws: SlackWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SlackLocal/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        # ---- plumbing

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

        # ---- routing

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, verb: str) -> None:
            url = urlsplit(self.path)
            path = url.path
            body = self._body() if verb == "POST" else b""
            try:
                if path.startswith("/link/") and verb == "GET":
                    self._socket_mode(path[len("/link/"):])
                    return
                if path.startswith("/api/"):
                    self._api(path[len("/api/"):], body, url.query)
                elif path.startswith("/webhook/") and verb == "POST":
                    self._webhook(path[len("/webhook/"):], body)
                elif path.startswith("/upload/v1/") and verb == "POST":
                    self._upload(path[len("/upload/v1/"):], body)
                elif path.startswith("/files/"):
                    self._file(path[len("/files/"):])
                elif path == "/_ui/events":
                    self._events(url.query)
                elif path.startswith("/_ui/"):
                    status, data = ui.handle(ws, verb, path[len("/_ui/"):], url.query, body)
                    self._send_json(status, data)
                elif path in ("/", "/index.html") or path.startswith("/static/") or path.startswith("/archives/"):
                    self._static("index.html" if not path.startswith("/static/") else path[len("/static/"):])
                else:
                    self._send(404, b"not found", "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _socket_mode(self, ticket: str) -> None:
            """Upgrade to a WebSocket and hand the connection to the workspace (Socket Mode)."""
            key = self.headers.get("Sec-WebSocket-Key")
            if not key or "websocket" not in (self.headers.get("Upgrade") or "").lower():
                self._send(400, b"expected a WebSocket upgrade", "text/plain")
                return
            if not ws.take_socket_ticket(ticket):
                self._send(401, b"unknown or used ticket", "text/plain")
                return
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept_key(key))
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            ws.serve_socket(self.connection)

        def _api(self, name: str, body: bytes, query: str) -> None:
            try:
                params = read_params(self.headers.get("Content-Type") or "", body, query)
            except ValueError:
                self._send_json(200, {"ok": False, "error": "invalid_json"})
                return
            token = params.pop("token", None)
            auth = self.headers.get("Authorization") or ""
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
            status, headers, data = web_api.call(ws, name.strip("/"), params, token)
            self._send_json(status, data, headers)

        def _webhook(self, token: str, body: bytes) -> None:
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                self._send(400, b"invalid_payload", "text/plain")
                return
            status, text = ws.handle_response_url(token, data)
            content_type = "application/json" if text.startswith("{") else "text/plain"
            self._send(status, text.encode(), content_type)

        def _upload(self, file_id: str, body: bytes) -> None:
            content_type = self.headers.get("Content-Type") or ""
            if content_type.startswith("multipart/form-data"):
                files = [v for v in parse_multipart(content_type, body).values() if isinstance(v, bytes)]
                body = files[0] if files else b""
            with ws._lock:
                upload = ws._files.get(file_id.strip("/"))
                if upload is None:
                    self._send(404, b"file_not_found", "text/plain")
                    return
                upload.content = body
            self._send(200, f"OK - {len(body)}".encode(), "text/plain")

        def _file(self, rest: str) -> None:
            file_id = rest.split("/", 1)[0]
            with ws._lock:
                upload = ws._files.get(file_id)
            if upload is None or upload.content is None:
                self._send(404, b"file_not_found", "text/plain")
                return
            self._send(200, upload.content, upload.mimetype)

        def _static(self, name: str) -> None:
            suffix = name[name.rfind("."):] if "." in name else ""
            if "/" in name or suffix not in STATIC_TYPES:
                self._send(404, b"not found", "text/plain")
                return
            try:
                data = resources.files("sims.slack").joinpath("static", name).read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                self._send(404, b"not found", "text/plain")
                return
            self._send(200, data, STATIC_TYPES[suffix])

        def _events(self, query: str) -> None:
            """Server-Sent Events: one ``change`` event whenever the workspace changes."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            version = -1
            while not ws.stopping.is_set():
                current = ws.wait_for_change(version, timeout=15)
                if ws.stopping.is_set():
                    break
                chunk = f"event: change\ndata: {current}\n\n" if current != version else ": keep-alive\n\n"
                version = current
                self.wfile.write(chunk.encode())
                self.wfile.flush()

    return Handler
