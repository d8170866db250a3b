"""Shared pieces of the service tests: `fer-edge run` as a real process, and a NOTIFY_SOCKET listener.

Imported by tests/test_watchdog.py and tests/test_remote_config.py.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from conftest import REPO as ROOT


@dataclass
class Notice:
    """One sd_notify datagram as systemd would receive it."""

    fields: dict[str, str]
    at: float                     # time.monotonic() when received


class NotifyListener:
    """A bound AF_UNIX datagram socket playing systemd's part (abstract namespace, like systemd's own)."""

    def __init__(self) -> None:
        self.address = f"@fer-edge-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.address[1:].encode())
        self.sock.settimeout(0.2)
        self.notices: list[Notice] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._cond:
                self.notices.append(Notice(fields, time.monotonic()))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Notice], bool], timeout: float, after: float = 0.0) -> Notice | None:
        """The first notice received after ``after`` (monotonic) that matches, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for n in self.notices:
                    if n.at >= after and predicate(n):
                        return n
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))

    def times(self, key: str, value: str = "1") -> list[float]:
        """Arrival times of every notice that set ``key`` to ``value``."""
        with self._cond:
            return [n.at for n in self.notices if n.fields.get(key) == value]

    def statuses(self) -> list[str]:
        with self._cond:
            return [n.fields["STATUS"] for n in self.notices if "STATUS" in n.fields]

    def close(self) -> None:
        self._closed = True
        self.sock.close()


class ServiceProcess:
    """`python -m edge.cli run --config PATH` in its own process, under a NotifyListener."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, watchdog_s: float | None = None) -> None:
        self.config = config
        self.notify = NotifyListener()
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": self.notify.address, **(env or {})}
        full_env.pop("WATCHDOG_PID", None)
        if watchdog_s:
            full_env["WATCHDOG_USEC"] = str(int(watchdog_s * 1e6))
        self.stdout_path = config.with_suffix(".stdout")
        self.stderr_path = config.with_suffix(".stderr")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                                     env=full_env, stdout=self._out, stderr=self._err)

    def wait_ready(self, timeout: float = 30.0) -> Notice:
        notice = self.notify.wait_for(lambda n: n.fields.get("READY") == "1", timeout)
        assert notice is not None, f"no READY=1 within {timeout} s; stderr:\n{self.stderr()[-3000:]}"
        return notice

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()
        self.notify.close()


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
