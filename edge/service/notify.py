"""systemd's notify protocol (sd_notify) by hand: one datagram per message to ``$NOTIFY_SOCKET``.

The protocol is tiny (``KEY=value`` lines in one AF_UNIX datagram), so there is no dependency on
libsystemd or python-systemd. ``$NOTIFY_SOCKET`` is a filesystem path or, when it starts with
``@``, a name in Linux's abstract socket namespace. Without ``$NOTIFY_SOCKET`` (run by hand, in
a container, in tests) every call is a cheap no-op.
"""
from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def _socket_address(address: str) -> str | bytes:
    # "@name" is the abstract namespace: the kernel wants a leading NUL byte instead of "@".
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address


class Notifier:
    """Sends READY / STATUS / WATCHDOG / STOPPING / RELOADING to systemd, if it is listening.

    ``address`` defaults to ``$NOTIFY_SOCKET``. Failures to send are logged once and never raised:
    the service must not die because its supervisor's socket went away.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        self._warned = False
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to."""
        return self._sock is not None

    def notify(self, **fields: object) -> bool:
        """Send one message made of ``KEY=value`` lines, e.g. ``notify(READY=1, STATUS="ok")``.

        Returns True when the datagram was sent.
        """
        if self._sock is None:
            return False
        # Newlines inside a value would start a new (bogus) key, so STATUS text is kept on one line.
        text = "\n".join(f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items())
        try:
            self._sock.sendto(text.encode(), _socket_address(self.address))
            return True
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete (Type=notify units stay 'activating' until this)."""
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        """Set the one-line status shown by ``systemctl status``."""
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """Keep-alive ping; systemd restarts the unit when none arrives within WatchdogSec."""
        return self.notify(WATCHDOG=1)

    def reloading(self) -> bool:
        """Announce a configuration reload (send :meth:`ready` when it is done)."""
        return self.notify(RELOADING=1)

    def stopping(self) -> bool:
        """Announce a clean shutdown has begun."""
        return self.notify(STOPPING=1)

    def close(self) -> None:
        """Close the socket; later calls are no-ops."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """The ping interval systemd asks for: half of ``$WATCHDOG_USEC``, in seconds; None when off.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; a child process that
    inherited the environment must not ping on its parent's behalf.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2e6
