"""The dashboard's HTTP side: the static page and a server-sent event stream, standard library only.

    GET /             the page (static/index.html; app.js, views.js, chart.js, style.css beside it)
    GET /events       text/event-stream: one `snapshot` of the whole fleet, then every change as it happens
    GET /api/fleet    the same snapshot as JSON (scripts, curl)
    GET /api/history  the history store's view of a camera, device, group, location or the fleet (JSON or
                      CSV with format=csv; edge/ops/dashboard/history.py, docs/dashboard.md)
    GET /healthz      "ok" while the server runs (the broker's state is in /api/fleet)

Each page gets its own bounded queue of changes; a page that cannot keep up (its queue is full)
is disconnected and its EventSource reconnects, starting again from a fresh snapshot, so a slow
kiosk never makes the server's memory grow. When every stream slot is taken, the oldest stream is
closed to make room: idle connections never lock the page out.

Every request is checked first against :class:`edge.ops.dashboard.access.Access`: an unexpected Host
name gets 421, a missing or wrong login 401 (only when a token is set). A client that goes away
mid-request is logged at debug level, never as a traceback.
"""
from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs

from edge.ops.dashboard import history
from edge.ops.dashboard.access import Access
from edge.ops.dashboard.store import Store
from edge.formatting import compact_json

log = logging.getLogger(__name__)

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
# no inline script, nothing from elsewhere: the page works offline and cannot be made to load code
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                               "frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PING_S = 15.0
REQUEST_TIMEOUT_S = 30.0      # a connection that sends no request (or reads nothing) for this long is closed


class Subscriber:
    """One connected page: a bounded queue of serialized changes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[str] = deque()
        self.cond = threading.Condition()
        self.overflowed = False
        self.closed = False

    def put(self, text: str) -> None:
        with self.cond:
            if len(self.items) >= self.size:
                self.overflowed = True        # the page falls behind: drop it, it reconnects to a snapshot
            else:
                self.items.append(text)
            self.cond.notify()

    def take(self, timeout: float) -> list[str] | None:
        """Everything queued (waiting up to ``timeout``); [] on timeout, None when the page must go."""
        with self.cond:
            if not self.items and not (self.overflowed or self.closed):
                self.cond.wait(timeout)
            if self.overflowed or self.closed:
                return None
            out = list(self.items)
            self.items.clear()
            return out


class Hub:
    """Fans each change out to every connected page."""

    def __init__(self, max_pages: int = 32, queue_size: int = 5000) -> None:
        self.max_pages, self.queue_size = max_pages, queue_size
        self._pages: dict[Subscriber, None] = {}      # in the order they connected
        self._lock = threading.Lock()

    def broadcast(self, change: dict[str, Any]) -> None:
        text = compact_json(change)
        with self._lock:
            pages = list(self._pages)
        for page in pages:
            page.put(text)

    def add(self) -> Subscriber:
        """A new page's queue; when max_pages are connected, the oldest stream is closed to make room."""
        with self._lock:
            oldest = None
            if len(self._pages) >= self.max_pages:
                oldest = next(iter(self._pages))
                del self._pages[oldest]
            page = Subscriber(self.queue_size)
            self._pages[page] = None
        if oldest is not None:
            with oldest.cond:
                oldest.closed = True         # its thread ends the response; a live page reconnects
                oldest.cond.notify()
            log.info("dashboard: %d streams open: closed the oldest to make room", self.max_pages)
        return page

    def remove(self, page: Subscriber) -> None:
        with self._lock:
            self._pages.pop(page, None)

    def close(self) -> None:
        with self._lock:
            pages, self._pages = list(self._pages), {}
        for page in pages:
            with page.cond:
                page.closed = True
                page.cond.notify()

    @property
    def pages(self) -> int:
        with self._lock:
            return len(self._pages)


def static_file(name: str) -> bytes | None:
    """A file of the packaged static/ folder, or None (no path outside it is ever read)."""
    if not name or "/" in name or name.startswith(".") or not any(name.endswith(e) for e in STATIC_TYPES):
        return None
    try:
        return (resources.files("edge.ops.dashboard") / "static" / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


class DashboardServer:
    """ThreadingHTTPServer serving the page and the stream; ``snapshot()`` must be taken under ``lock``."""

    def __init__(self, host: str, port: int, hub: Hub, snapshot: Callable[[], dict[str, Any]],
                 lock: threading.Lock, store: Store | None = None, access: Access | None = None) -> None:
        self.hub, self.snapshot, self.lock, self.store = hub, snapshot, lock, store
        self.access = access or Access(host)
        handler = type("Handler", (_Handler,), {"app": self})
        try:
            self.httpd = _QuietServer((host, port), handler)
        except OSError as exc:
            raise OSError(f"dashboard: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="dashboard-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{port}/"

    def start(self) -> "DashboardServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self.hub.close()
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    """A client that went away (reset, broken pipe, timeout) is a debug line, not a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("dashboard: %s went away (%s)", client_address[0], type(exc).__name__)
        else:
            log.error("dashboard: request from %s failed: %s", client_address[0],
                      f"{type(exc).__name__}: {exc}".splitlines()[0])


def _safe(text: str) -> str:
    """A file name part made of letters, digits, '-', '_' and '.' only (scope values come from the request)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


class _Handler(BaseHTTPRequestHandler):
    app: DashboardServer
    protocol_version = "HTTP/1.1"
    server_version = "fer-edge-dashboard"
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:     # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._allowed():
            return None
        path = self.path.split("?", 1)[0]
        if path == "/events":
            return self._stream()
        if path == "/api/fleet":
            with self.app.lock:
                body = compact_json(self.app.snapshot()).encode()
            return self._send(HTTPStatus.OK, body, "application/json")
        if path == "/api/history":
            return self._history(parse_qs(self.path.partition("?")[2]))
        if path == "/healthz":
            return self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        name = "index.html" if path == "/" else path.lstrip("/")
        body = static_file(name)
        if body is None:
            return self._send(HTTPStatus.NOT_FOUND, f"not found: {path}\n".encode(), "text/plain; charset=utf-8")
        self._send(HTTPStatus.OK, body, STATIC_TYPES["." + name.rsplit(".", 1)[1]])

    def _allowed(self) -> bool:
        """Host check, then login; answers the request itself when it is refused."""
        text = "text/plain; charset=utf-8"
        if not self.app.access.host_ok(self.headers.get("Host")):
            self.close_connection = True
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"this dashboard does not answer to that Host name; "
                       b"open it by the name it was started for, or start it with --allow-host NAME\n", text)
            return False
        if not self.app.access.authorized(self.headers.get("Authorization")):
            log.warning("dashboard: request from %s without a valid login", self.address_string())
            self._send(HTTPStatus.UNAUTHORIZED, b"log in: any user name, the dashboard token as password\n", text,
                       {"WWW-Authenticate": 'Basic realm="fer-edge dashboard", charset="UTF-8"'})
            return False
        return True

    def _send(self, status: HTTPStatus, body: bytes, kind: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _history(self, params: dict[str, list[str]]) -> None:
        """GET /api/history?device=D[&camera=C] | group=G | location=L, range=today|7d|30d, tz=MIN, format=csv."""
        text = "text/plain; charset=utf-8"
        if self.app.store is None:
            return self._send(HTTPStatus.NOT_FOUND, b"history is off (started with --no-history)\n", text)
        one = {k: v[-1] for k, v in params.items() if v}
        try:
            scope = history.Scope(one.get("device"), one.get("camera"), one.get("group"), one.get("location"))
            tz = int(one.get("tz", "0"))
            if not -1440 < tz < 1440:
                raise ValueError("tz: minutes east of UTC, between -1439 and 1439")
            data = history.view(self.app.store, scope, one.get("range", "7d"), tz)
            if one.get("device") and not one.get("camera"):
                data["status"] = history.status_changes(self.app.store, one["device"], data["from"], data["to"])
        except ValueError as exc:
            return self._send(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), text)
        except Exception as exc:                       # noqa: BLE001 - the store is unreachable: say so, keep serving
            log.warning("dashboard: history query failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"the history store cannot be read now; see the log\n",
                              text)
        if one.get("format") == "csv":
            name = "-".join(str(v) for v in (*data["scope"].values(), data["range"])) or data["range"]
            return self._send(HTTPStatus.OK, history.to_csv(data).encode(), "text/csv; charset=utf-8",
                              {"Content-Disposition": f'attachment; filename="fer-edge-history-{_safe(name)}.csv"'})
        self._send(HTTPStatus.OK, compact_json(data).encode(), "application/json")

    def _stream(self) -> None:
        with self.app.lock:           # no change can slip between the snapshot and the queue
            page = self.app.hub.add()
            first = compact_json(self.app.snapshot())
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Accel-Buffering", "no")      # a reverse proxy must not buffer the stream
            self.end_headers()
            self.wfile.write(f"retry: 2000\ndata: {first}\n\n".encode())
            self.wfile.flush()
            self.close_connection = True
            while True:
                items = page.take(PING_S)
                if items is None:
                    if page.overflowed:
                        log.warning("dashboard: a page fell %d changes behind (%s): disconnected; it reconnects "
                                    "to a fresh snapshot", page.size, self.address_string())
                    break
                text = "".join(f"data: {item}\n\n" for item in items) if items else ": ping\n\n"
                self.wfile.write(text.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass                      # the page went away
        finally:
            self.app.hub.remove(page)
