"""A Slack workspace with one installed app, run in-process for tests and ``fwbot dev``.

``SlackWorkspace`` holds the workspace state (users, channels, messages, views), serves Slack's
Web API, response_url webhooks, file uploads and a browser UI over one HTTP server, and drives
the app exactly as Slack does: signed HTTP POSTs to ``events_url``, whose answer (the app's
``ack()``) it then acts on. Text typed into the composer reaches the app as Slack sends it (the
app's ``should_escape`` commands get ``<#C…|name>`` and ``<@U…>``: ``mentions``). With a
``state_file`` the workspace outlives its process (``fwbot dev --db``).

``SlackWorkspace`` is put together from one part per concern, each a mixin over ``store.Store`` (the
data they share): ``people``, ``conversations``, ``views``, ``files``, ``hooks`` (trigger_ids and
response_urls), ``interactions`` (what people do), ``delivery`` (requests to the app),
``scripting`` (Web API calls recorded and scripted), ``waiting`` and ``persistence``.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

from .conversations import ConversationsMixin
from .delivery import DeliveryMixin
from .files import FilesMixin
from .hooks import HooksMixin
from .interactions import InteractionsMixin
from .people import PeopleMixin
from .persistence import PersistenceMixin
from .scripting import ScriptingMixin
from .server import make_handler
from .views import ViewsMixin
from .waiting import WaitingMixin


class _Server(ThreadingHTTPServer):
    # Slack takes bursts of calls; the default listen backlog of 5 resets connections under load.
    request_queue_size = 128


class SlackWorkspace(InteractionsMixin, DeliveryMixin, HooksMixin, ViewsMixin, ConversationsMixin,
                     PeopleMixin, FilesMixin, ScriptingMixin, WaitingMixin, PersistenceMixin):
    """One workspace, one app (the bot), any number of seeded humans. Thread-safe."""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the Web API, webhooks and the UI from a daemon thread; returns the base URL."""
        self._server = _Server((host, port), make_handler(self))
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.api_url = f"{self.url}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="slack-workspace", daemon=True)
        self._thread.start()
        if self.state_file and self._saver is None:
            self._saver = threading.Thread(target=self._keep_saved, name="slack-workspace-saver", daemon=True)
            self._saver.start()
        return self.url

    def stop(self) -> None:
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._saver is not None:
            self._saver.join(timeout=5)
            self._saver = None
        if self.state_file:
            self.save(self.state_file)

    def __enter__(self) -> SlackWorkspace:
        if not self.url:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
