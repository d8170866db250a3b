"""The dashboard assembled: Fleet model + MQTT feed + HTTP/SSE server, sharing one lock, + the history store."""
from __future__ import annotations

import threading
from typing import Any

from edge.ops.dashboard.access import Access
from edge.ops.dashboard.feed import Feed
from edge.ops.dashboard.model import Fleet, Limits
from edge.ops.dashboard.recording import HistoryTap
from edge.ops.dashboard.server import DashboardServer, Hub
from edge.ops.dashboard.store import Recorder, Store
from edge.config.mqtt import MqttConfig


class Dashboard:
    """Subscribe to every device under ``cfg.prefix`` and serve the live page on ``host:port``.

    Raises ValueError (a TLS file that cannot be used) or OSError (the port is taken) with one
    line saying which setting to change.
    """

    def __init__(self, cfg: MqttConfig, host: str = "127.0.0.1", port: int = 8088,
                 limits: Limits | None = None, max_pages: int = 32, store: Store | None = None,
                 access: Access | None = None) -> None:
        self.lock = threading.Lock()
        self.fleet = Fleet(cfg.prefix, limits)
        self.hub = Hub(max_pages=max_pages)
        self.store = store
        self.recorder = Recorder(store) if store is not None else None
        self.tap = HistoryTap(self.recorder) if self.recorder is not None else None
        self.feed = Feed(cfg, self.fleet, self._changed, self.lock)
        self.server = DashboardServer(host, port, self.hub, self.snapshot, self.lock, store=store, access=access)

    def _changed(self, change: dict[str, Any]) -> None:
        """One change: to every page, and what the history keeps to its store."""
        self.hub.broadcast(change)
        if self.tap is not None:
            self.tap(change)

    def snapshot(self) -> dict[str, Any]:
        """The whole picture for a (re)connecting page; call with ``self.lock`` held."""
        snap = self.fleet.snapshot()
        snap["broker"] = self.feed.broker_view()
        snap["history"] = {"enabled": self.store is not None,
                           "error": self.recorder.error if self.recorder is not None else None}
        return snap

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> "Dashboard":
        if self.recorder is not None:
            self.recorder.start()
        self.server.start()
        self.feed.start()
        return self

    def close(self) -> None:
        self.feed.close()
        self.server.close()
        if self.recorder is not None:
            self.recorder.close()          # the last buffered summaries are written

    def __enter__(self) -> "Dashboard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
