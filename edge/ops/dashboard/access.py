"""Who the dashboard answers: the Host names it serves, and the login when it is reachable from the network.

- **Host check** (against DNS rebinding: a page on ``attacker.example`` whose name later resolves
  to this machine sends ``Host: attacker.example``): served are ``localhost`` and loopback
  addresses, any IP address literal when bound beyond loopback (a rebinding page always sends its
  own domain name, never an address), the bind address, this machine's host name when bound beyond
  loopback, and every ``--allow-host`` name. Anything else gets 421 Misdirected Request.
- **Login** when bound beyond loopback: HTTP Basic (any user name, the token as password; the
  browser asks once and sends it with the page's requests and its event stream) or
  ``Authorization: Bearer <token>``. The token comes from ``--token-file`` or
  ``$FER_EDGE_DASHBOARD_TOKEN``; ``--no-auth`` serves without one, by explicit choice only.
  Tokens are compared in constant time and never logged.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ENV = "FER_EDGE_DASHBOARD_TOKEN"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for loopback names and addresses (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name of a Host header without its port and brackets, lower case ('' when malformed)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else ""
    if header.count(":") > 1:           # a bare IPv6 address (not valid in Host, but harmless to read)
        return header
    return header.rsplit(":", 1)[0] if ":" in header else header


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass
class Access:
    """The Host names served and the token asked for (None: no login)."""

    bind: str = "127.0.0.1"
    allowed: set[str] = field(default_factory=set)
    token: str | None = None

    def __post_init__(self) -> None:
        self.allowed = {h.lower().rstrip(".") for h in self.allowed}
        if self.bind and self.bind not in ("0.0.0.0", "::", ""):
            self.allowed.add(self.bind.lower())
        if not self.loopback_only:
            for name in (socket.gethostname(), socket.getfqdn()):
                if name:
                    self.allowed.add(name.lower())

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.bind)

    def host_ok(self, header: str | None) -> bool:
        """Whether a request's Host header names this dashboard."""
        name = host_name(header or "").rstrip(".")
        if not name:
            return False
        if is_loopback(name) or name in self.allowed:
            return True
        return not self.loopback_only and _is_ip(name)

    def authorized(self, header: str | None) -> bool:
        """Whether a request's Authorization header carries the token (always True without a token)."""
        if self.token is None:
            return True
        scheme, _, value = (header or "").strip().partition(" ")
        given = ""
        if scheme.lower() == "bearer":
            given = value.strip()
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())


def read_token(token_file: Path | None) -> str | None:
    """The login token from ``token_file`` (first line) or $FER_EDGE_DASHBOARD_TOKEN; ValueError if unusable.

    The message names the file or the variable, never what it holds.
    """
    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").strip().splitlines()
        except OSError as exc:
            raise ValueError(f"--token-file {token_file}: cannot read it ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ValueError(f"--token-file {token_file}: not UTF-8 text") from None
        token = lines[0].strip() if lines else ""
        where = f"--token-file {token_file}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        where = f"${TOKEN_ENV}"
        if not token:
            return None
    if len(token) < 12:
        raise ValueError(f"{where}: the token must be at least 12 characters (e.g. `openssl rand -hex 16`)")
    return token
