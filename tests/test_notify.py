"""sd_notify over a real AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET is."""
from __future__ import annotations

import os
import socket
import uuid

import pytest

from edge.service.notify import Notifier, watchdog_interval


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
    sock.settimeout(2)
    return sock


def test_messages_arrive_on_a_path_socket(tmp_path):
    address = str(tmp_path / "notify.sock")
    rx = _receiver(address)
    n = Notifier(address)
    assert n.enabled
    assert n.ready("loading done")
    assert rx.recv(4096) == b"READY=1\nSTATUS=loading done"
    assert n.watchdog()
    assert rx.recv(4096) == b"WATCHDOG=1"
    assert n.status("12.5 fps\n2 faces")        # a newline would start a bogus key: kept on one line
    assert rx.recv(4096) == b"STATUS=12.5 fps 2 faces"
    assert n.stopping()
    assert rx.recv(4096) == b"STOPPING=1"
    n.close()
    rx.close()


def test_abstract_namespace_address():
    address = f"@fer-edge-test-{uuid.uuid4().hex}"
    rx = _receiver(address)
    n = Notifier(address)
    assert n.reloading()
    assert rx.recv(4096) == b"RELOADING=1"
    rx.close()


def test_without_notify_socket_everything_is_a_quiet_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path, caplog):
    n = Notifier(str(tmp_path / "gone.sock"))
    assert n.watchdog() is False
    assert n.watchdog() is False
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1   # warned once


@pytest.mark.parametrize("usec,pid,expected", [
    ("30000000", None, 15.0),          # ping at half of WatchdogSec
    ("30000000", "self", 15.0),
    ("30000000", "1", None),           # meant for another process (we inherited the env)
    ("0", None, None),
    ("", None, None),
    ("junk", None, None),
])
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert watchdog_interval() == expected
