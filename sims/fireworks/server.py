"""The simulator over real HTTP: routing, auth, fault injection and the admin endpoints."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sims.clock import Clock, SystemClock

from . import catalog
from .config import SimConfig
from .faults import Faults
from .records import HttpRequest
from .state import SimState
from .wire import CODE_FOR_HTTP, TRUE_WORDS, ApiError, bool_param, invalid, not_found, paginate, ts

SEG = r"([^/:]+)"


@dataclass
class Call:
    """One parsed request as a route handler sees it."""

    account: str
    args: tuple[str, ...]
    query: dict[str, list[str]]
    body: dict[str, Any]
    now: float


Handler = Callable[["FireworksSimulator", Call], Any]


def _get_shape(s: FireworksSimulator, c: Call) -> Any:
    # skipShapeValidation changes nothing on a read, but it is parsed (and refused when garbage).
    bool_param(c.query, "skipShapeValidation")
    return s.state.get_shape(c.account, c.args[0])


def _routes() -> list[tuple[str, re.Pattern[str], Handler, bool]]:
    """(method, path pattern, handler, readable under accounts/fireworks) in match order."""
    acct = rf"^/v1/accounts/{SEG}"
    table: list[tuple[str, str, Handler, bool]] = [
        ("GET", acct + "$", lambda s, c: s.account_wire(), False),
        ("GET", acct + "/deployments$", lambda s, c: s.state.list_deployments(c.query), False),
        ("POST", acct + "/deployments$", lambda s, c: s.state.create_deployment(c.body, c.query, c.now), False),
        ("POST", acct + rf"/deployments/{SEG}:undelete$",
         lambda s, c: s.state.undelete_deployment(c.args[0], c.now), False),
        ("PATCH", acct + rf"/deployments/{SEG}:scale$",
         lambda s, c: s.state.scale_deployment(c.args[0], c.body, c.now), False),
        ("GET", acct + rf"/deployments/{SEG}$", lambda s, c: s.state.get_deployment_wire(c.args[0]), False),
        ("PATCH", acct + rf"/deployments/{SEG}$",
         lambda s, c: s.state.update_deployment(c.args[0], c.body, c.query, c.now), False),
        ("DELETE", acct + rf"/deployments/{SEG}$",
         lambda s, c: s.state.delete_deployment(c.args[0], c.query, c.now), False),
        ("GET", acct + "/models$", lambda s, c: s.state.list_models(c.account, c.query), True),
        ("POST", acct + "/models$", lambda s, c: s.state.create_model(c.body, c.now), False),
        ("GET", acct + rf"/models/{SEG}$", lambda s, c: s.state.get_model(c.account, c.args[0]), True),
        ("DELETE", acct + rf"/models/{SEG}$", lambda s, c: s.state.delete_model(c.args[0]), False),
        ("GET", acct + "/deployedModels$", lambda s, c: s.state.list_deployed_models(c.query), False),
        ("POST", acct + "/deployedModels$", lambda s, c: s.state.load_model(c.body, c.now, c.query), False),
        ("GET", acct + rf"/deployedModels/{SEG}$", lambda s, c: s.state.get_deployed_model(c.args[0]), False),
        ("PATCH", acct + rf"/deployedModels/{SEG}$",
         lambda s, c: s.state.update_deployed_model(c.args[0], c.body, c.now), False),
        ("DELETE", acct + rf"/deployedModels/{SEG}$", lambda s, c: s.state.unload_model(c.args[0]), False),
        ("POST", acct + "/deploymentShapeVersions:match$", lambda s, c: s.state.match_shapes(c.body), False),
        ("GET", acct + "/deploymentShapes$", lambda s, c: s.state.list_shapes(c.account, c.query), True),
        ("GET", acct + rf"/deploymentShapes/{SEG}$", _get_shape, True),
        ("GET", acct + rf"/deploymentShapes/{SEG}/versions$",
         lambda s, c: s.state.list_shape_versions(c.account, c.args[0], c.query), True),
        ("GET", acct + rf"/deploymentShapes/{SEG}/versions/{SEG}$",
         lambda s, c: s.state.get_shape(c.account, c.args[0], c.args[1]), True),
        ("GET", acct + "/metrics$", lambda s, c: s.state.metrics_text(c.now), False),
        ("GET", acct + "/billingUsage$", lambda s, c: s.state.billing_usage(c.query, c.now), False),
    ]
    return [(m, re.compile(p), h, public) for m, p, h, public in table]


ROUTES = _routes()
INFERENCE = {"/inference/v1/completions": False, "/inference/v1/chat/completions": True,
             # The SDK drops the /inference prefix when base_url is overridden, so serve both.
             "/v1/completions": False, "/v1/chat/completions": True}


class _Server(ThreadingHTTPServer):
    # Many clients at once (a bot under load): the default listen backlog of 5 resets connections.
    request_queue_size = 128


class FireworksSimulator:
    """A Fireworks control plane (plus a canned data plane) served over HTTP on 127.0.0.1."""

    def __init__(self, config: SimConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.state = SimState(config)
        self.state.now_fn = self.now
        self.faults = Faults(config.fail_rate, config.latency_ms, config.seed)
        if config.state_file:
            self.state.load(config.state_file)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns the base URL (``http://HOST:PORT``)."""
        sim = self

        class _Handler(RequestHandler):
            simulator = sim

        server = _Server((host, port), _Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fireworks-sim", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FireworksSimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator is not running")
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"

    def now(self) -> float:
        """The simulator's clock as POSIX seconds."""
        return self.clock.now().timestamp()

    # --- pieces the routes use -----------------------------------------------------------------

    def account_wire(self) -> dict[str, Any]:
        """The Account message for the simulated account."""
        return {
            "name": f"accounts/{self.config.account_id}",
            "displayName": self.config.account_id,
            "createTime": ts(catalog.CATALOG_CREATE_TIME),
            "accountType": "ACCOUNT_TYPE_UNSPECIFIED",
            "email": f"{self.config.account_id}@example.com",
            "state": "READY",
            "status": {"code": "OK", "message": ""},
            "suspendState": "UNSUSPENDED",
            "updateTime": ts(catalog.CATALOG_CREATE_TIME),
        }

    def persist(self) -> None:
        """Write the state file if one is configured and something changed."""
        if self.config.state_file and self.state.dirty:
            self.state.save(self.config.state_file)

    def admin(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The ``/_sim/*`` endpoints used by out-of-process tests."""
        if path == "/_sim/faults" and method == "POST":
            if "failRate" in body:
                self.faults.fail_rate = float(body["failRate"])
            if "latencyMs" in body:
                self.faults.latency_ms = int(body["latencyMs"])
            if body.get("failNext"):
                spec = body["failNext"]
                self.faults.fail_next(int(spec.get("count", 1)), int(spec.get("status", 503)),
                                      spec.get("retryAfter"))
            if body.get("loseNextCreateResponse"):
                mode = body["loseNextCreateResponse"]
                self.faults.lose_next_create_response(mode if isinstance(mode, str) else "close")
            if body.get("failDeployment"):
                spec = body["failDeployment"]
                self.state.fail_deployment(str(spec.get("id", "")), str(spec.get("message", "injected failure")))
            if body.get("reset"):
                self.faults.reset()
            return {"failRate": self.faults.fail_rate, "latencyMs": self.faults.latency_ms}
        if path == "/_sim/clock" and method == "POST":
            if not callable(getattr(self.clock, "advance", None)):
                raise ApiError("FAILED_PRECONDITION", "the simulator runs on the system clock")
            self.clock.advance(float(body.get("advanceSeconds", 0)))
            with self.state.lock:
                self.state.advance(self.now())
                self.persist()
            return {"now": ts(self.now())}
        if path == "/_sim/state" and method == "GET":
            with self.state.lock:
                self.state.advance(self.now())
                return self.state.dump()
        raise not_found(f"no simulator admin route {method} {path}")


class RequestHandler(BaseHTTPRequestHandler):
    """One HTTP exchange; everything stateful lives on ``simulator``."""

    simulator: FireworksSimulator
    protocol_version = "HTTP/1.1"
    server_version = "fireworks-sim/1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus delayed
        # ACKs add ~40 ms to every keep-alive exchange.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature is inherited
        pass  # quiet: tests and `fwbot sim` print their own summary

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # Every other method gets a JSON answer in the gateway's error shape (405 on a known path,
    # 404 elsewhere), never http.server's HTML 501 page.
    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def do_TRACE(self) -> None:
        self._handle("TRACE")

    def do_CONNECT(self) -> None:
        self._handle("CONNECT")

    def __getattr__(self, name: str) -> Any:
        # http.server looks up ``do_<METHOD>`` for whatever token the request line carries.
        if name.startswith("do_") and name[3:].isupper():
            return lambda: self._handle(name[3:])
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level failures (bad request line, headers too long, …) as JSON errors too."""
        grpc = CODE_FOR_HTTP.get(code, "INVALID_ARGUMENT" if 400 <= code < 500 else "INTERNAL")
        err = ApiError(grpc, message or self.responses.get(code, ("error",))[0], status=code)
        data = json.dumps(err.body()).encode()
        self.close_connection = True
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(data)
        except OSError:
            pass

    # --- plumbing ------------------------------------------------------------------------------

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self._record(status)  # before the answer leaves, so a client never outruns the count
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._status = status

    def _send_error(self, err: ApiError, openai: bool = False) -> None:
        headers = dict(err.headers)
        if err.retry_after is not None:
            headers["Retry-After"] = str(int(err.retry_after) if float(err.retry_after).is_integer()
                                         else err.retry_after)
        body = ({"error": {"object": "error", "type": "error", "code": err.code, "message": err.message}}
                if openai else err.body())
        self._send(err.http_status, body, headers)

    def _read_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise invalid("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        return body

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, key = header.partition(" ")
        return scheme.lower() == "bearer" and key.strip() == self.simulator.config.api_key

    def _handle(self, method: str) -> None:
        sim = self.simulator
        self._status = 0
        self._recorded = False
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        openai = path in INFERENCE
        try:
            try:
                body = self._read_body()
            except ApiError:
                if method in ("POST", "PATCH"):
                    raise
                body = {}
            if not self._authorized():
                msg = ("missing API key: send Authorization: Bearer <key>"
                       if not self.headers.get("Authorization") else "invalid API key")
                raise ApiError("UNAUTHENTICATED", msg)
            if path.startswith("/_sim/"):
                self._send(200, sim.admin(method, path, body))
                return
            if sim.faults.latency_ms > 0:
                time.sleep(sim.faults.latency_ms / 1000.0)
            if openai:
                if method != "POST":
                    raise _method_not_allowed(method, path, ["POST"])
                self._inference(path, body)
                return
            self._control_plane(method, path, query, body)
        except ApiError as err:
            self._send_error(err, openai)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped reading (it had what it wanted): nobody to answer, and the
            # request was counted when its answer started.
            self.close_connection = True
        except Exception as exc:  # a simulator bug must still answer like a server would
            self._send_error(ApiError("INTERNAL", f"simulator error: {exc!r}"), openai)
            raise
        finally:
            if not self._recorded:
                self._record(self._status)

    def _record(self, status: int) -> None:
        sim = self.simulator
        path = urlsplit(self.path).path.rstrip("/") or "/"
        with sim.state.lock:
            sim.state.requests.append(HttpRequest(self.command, path, status, sim.now()))
        self._recorded = True

    def _control_plane(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        sim = self.simulator
        list_accounts = path == "/v1/accounts" and method == "GET"
        route = None
        for m, pattern, handler, public in ROUTES:
            match = pattern.match(path)
            if match and m == method:
                route = (match, handler, public)
                break
        if route is None and not list_accounts:
            allowed = sorted({m for m, pattern, _, _ in ROUTES if pattern.match(path)}
                             | ({"GET"} if path == "/v1/accounts" else set()))
            if allowed:
                raise _method_not_allowed(method, path, allowed)
            raise not_found(f"no route for {method} {path}")
        if route is not None:
            match, handler, public = route
            account = match.group(1)
            readable = public and method == "GET" and account == catalog.PUBLIC_ACCOUNT
            if account != sim.config.account_id and not readable:
                raise ApiError("PERMISSION_DENIED", f"the API key has no access to accounts/{account}")
        failure = sim.faults.take_failure() or sim.faults.take_matching(method, path, after_commit=False)
        if failure is not None:
            code = CODE_FOR_HTTP.get(failure.status, "UNAVAILABLE")
            raise ApiError(code, f"injected fault: HTTP {failure.status}", retry_after=failure.retry_after)
        is_create = route is not None and method == "POST" and path.endswith("/deployments")
        with sim.state.lock:
            sim.state.advance(sim.now())
            if list_accounts:
                result: Any = paginate([sim.account_wire()], "accounts", query, {"collection": "accounts"})
            else:
                assert route is not None
                match, handler, _ = route
                call = Call(match.group(1), match.groups()[1:], query, body, sim.now())
                result = handler(sim, call)
            sim.persist()
        late = sim.faults.take_matching(method, path, after_commit=True)
        if late is not None:
            raise ApiError(CODE_FOR_HTTP.get(late.status, "UNAVAILABLE"), "injected fault: response lost after commit")
        if is_create and not _truthy(query.get("validateOnly")):
            lost = sim.faults.take_lost_create()
            if lost == "close":
                # Committed, but the client never hears back: drop the connection.
                self.close_connection = True
                self._status = -1
                return
            if lost == "503":
                raise ApiError("UNAVAILABLE", "injected fault: response lost after commit")
        if isinstance(result, str):
            self._send(200, result, content_type="text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(200, result)

    def _inference(self, path: str, body: dict[str, Any]) -> None:
        sim = self.simulator
        with sim.state.lock:
            sim.state.advance(sim.now())
            status, result = sim.state.infer(body, sim.now(), chat=INFERENCE[path])
            sim.persist()
        if status == 200 and body.get("stream"):
            self._stream(result)
            return
        self._send(status, result)

    def _stream(self, result: dict[str, Any]) -> None:
        """A whole answer as one server-sent-events chunk, then ``[DONE]``."""
        choice = result["choices"][0]
        if result["object"] == "chat.completion":
            chunk = {**result, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": choice["message"], "finish_reason": "stop"}]}
        else:
            chunk = result
        data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._status = 200


def _method_not_allowed(method: str, path: str, allowed: list[str]) -> ApiError:
    """grpc-gateway's routing error for a known path: HTTP 405 carrying UNIMPLEMENTED (12)."""
    return ApiError("UNIMPLEMENTED", f"method {method} is not allowed on {path}", status=405,
                    headers={"Allow": ", ".join(allowed)})


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[0] in TRUE_WORDS
