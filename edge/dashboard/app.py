"""The dashboard assembled: Fleet model + MQTT feed + HTTP/SSE server, sharing one lock."""
from __future__ import annotations

import threading
from typing import Any

from edge.dashboard.feed import Feed
from edge.dashboard.model import Fleet, Limits
from edge.dashboard.server import DashboardServer, Hub
from edge.config.mqtt import MqttConfig


class Dashboard:
    """Subscribe to every device under ``cfg.prefix`` and serve the live page on ``host:port``.

    Raises ValueError (a TLS file that cannot be used) or OSError (the port is taken) with one
    line saying which setting to change.
    """

    def __init__(self, cfg: MqttConfig, host: str = "127.0.0.1", port: int = 8088,
                 limits: Limits | None = None, max_pages: int = 32) -> None:
        self.lock = threading.Lock()
        self.fleet = Fleet(cfg.prefix, limits)
        self.hub = Hub(max_pages=max_pages)
        self.feed = Feed(cfg, self.fleet, self.hub.broadcast, self.lock)
        self.server = DashboardServer(host, port, self.hub, self.snapshot, self.lock)

    def snapshot(self) -> dict[str, Any]:
        """The whole picture for a (re)connecting page; call with ``self.lock`` held."""
        snap = self.fleet.snapshot()
        snap["broker"] = self.feed.broker_view()
        return snap

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> "Dashboard":
        self.server.start()
        self.feed.start()
        return self

    def close(self) -> None:
        self.feed.close()
        self.server.close()

    def __enter__(self) -> "Dashboard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
