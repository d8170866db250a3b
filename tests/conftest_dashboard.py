"""Shared pieces of the dashboard tests: `fer-edge dashboard` as a real process, and reading its event stream."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from conftest import REPO as ROOT
from tests.helpers.broker import free_port


class DashboardProcess:
    """`python -m edge.cli dashboard ARGS` on a free port; ``url`` once it serves."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.log = (log_dir or Path("/tmp")) / f"dashboard-{self.port}.log"
        self._log = open(self.log, "wb")
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "dashboard", "--port", str(self.port), *args],
                                     cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_ready(self, timeout: float = 20.0) -> "DashboardProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dashboard exited with {self.proc.returncode}: {self.output()}")
            try:
                if get(self.url + "healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"dashboard did not serve {self.url} within {timeout} s: {self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log.read_text(errors="replace")

    def fleet(self) -> dict[str, Any]:
        return json.loads(get(self.url + "api/fleet")[2])

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
        return self.proc.wait()


def get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


class Stream:
    """An open /events stream, parsed into messages."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", "/events")
        self.resp = self.conn.getresponse()
        self.messages: list[dict[str, Any]] = []

    def next(self) -> dict[str, Any]:
        """The next `data:` message (skips pings and retry lines)."""
        while True:
            line = self.resp.fp.readline()
            if not line:
                raise EOFError("the server closed the stream")
            if line.startswith(b"data: "):
                msg = json.loads(line[6:])
                self.messages.append(msg)
                return msg

    def until(self, test: Callable[[dict[str, Any]], bool], limit: int = 500) -> dict[str, Any]:
        for _ in range(limit):
            msg = self.next()
            if test(msg):
                return msg
        raise AssertionError(f"no matching message in {limit}: {self.messages[-5:]}")

    def close(self) -> None:
        self.conn.close()
