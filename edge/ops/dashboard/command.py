"""`fer-edge dashboard`: the live kiosk / security-desk page for every device under a prefix.

    fer-edge dashboard --broker broker.lan            # then open http://127.0.0.1:8088/
    fer-edge dashboard --config /etc/fer-edge/config.yaml --bind 0.0.0.0

The broker connection comes from the `mqtt` section of a fer-edge config file (host, port,
prefix, credentials, TLS, client certificates; a file holding only `mqtt:` is enough), and the
flags override it. The password is never a flag: it comes from the file or from
$FER_EDGE_MQTT_PASSWORD. Exit codes: 0 stopped (SIGTERM/SIGINT), 2 configuration error
(one line says which setting), 3 the HTTP port could not be opened.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config import ConfigError, default_path, load_file
from edge.config.mqtt import MqttConfig
from edge.ops.dashboard.access import TOKEN_ENV, Access, read_token
from edge.ops.dashboard.app import Dashboard
from edge.ops.dashboard.model import Limits
from edge.ops.dashboard.store import Store, is_postgres, shown
from edge.state_dir import state_dir
from edge.exitcodes import EXIT_MODEL, EXIT_OK, EXIT_USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dashboard's options: where the broker is, how to log in, where to serve the page."""
    parser.add_argument("--config", "-c", type=Path, default=None,
                        help="fer-edge YAML whose `mqtt` section says how to reach the broker "
                             "(default: /etc/fer-edge/config.yaml or ./config.yaml when present and no --broker)")
    parser.add_argument("--broker", metavar="HOST[:PORT]", help="broker address (overrides mqtt.host/port)")
    parser.add_argument("--prefix", help="topic prefix of the devices (overrides mqtt.prefix; default fer-edge)")
    parser.add_argument("--username", help="broker user (overrides mqtt.username; the password comes from "
                                           "the file or $FER_EDGE_MQTT_PASSWORD)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS (mqtt.tls.enabled)")
    parser.add_argument("--ca-file", help="PEM CA of the broker's certificate (mqtt.tls.ca_file)")
    parser.add_argument("--cert-file", help="PEM client certificate (mqtt.tls.cert_file)")
    parser.add_argument("--key-file", help="PEM key of the client certificate (mqtt.tls.key_file)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to serve the page on (default 127.0.0.1: this machine only; "
                             "0.0.0.0: every host on the network - the page shows emotion data)")
    parser.add_argument("--port", type=int, default=8088, help="HTTP port (default 8088; 0: any free port)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a Host name the page is served under besides localhost, loopback addresses and (when "
                             "bound beyond loopback) IP addresses and this machine's name; repeatable")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help=f"login token (first line of FILE; else ${TOKEN_ENV}): asked for as the password "
                             "of a browser login; required when --bind is beyond loopback, unless --no-auth")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve beyond loopback without a login (anyone who can reach the port sees the page)")
    parser.add_argument("--max-devices", type=int, default=1000, help="devices kept at most (default 1000)")
    parser.add_argument("--store", metavar="FILE|URL",
                        help="history store: an SQLite file (default: dashboard-history.sqlite in the state folder, "
                             "$STATE_DIRECTORY or ~/.local/state/fer-edge) or postgresql://USER@HOST/DB (the password "
                             "from $PGPASSWORD or ~/.pgpass, never a flag)")
    parser.add_argument("--no-history", action="store_true", help="keep no history (the live page only)")
    parser.add_argument("--hourly-days", type=float, default=35.0,
                        help="days of hourly history before it is rolled up into days (default 35)")
    parser.add_argument("--retention-days", type=float, default=730.0,
                        help="days of daily history kept (default 730)")


def mqtt_settings(args: argparse.Namespace) -> MqttConfig:
    """The MqttConfig from --config (if any) with the flags applied; ValueError with one line if unusable."""
    data: dict[str, Any] = {}
    path = args.config
    if path is None and not args.broker and default_path().is_file():
        path = default_path()
    if path is not None:
        try:
            data = load_file(path).config.mqtt.model_dump()
        except ConfigError as exc:
            raise ValueError(str(exc).splitlines()[0] if str(exc) else f"{path}: invalid config") from None
        if data.get("password") is not None:
            data["password"] = data["password"].get_secret_value()
    if args.broker:
        host, _, port = args.broker.rpartition(":") if args.broker.count(":") == 1 else (args.broker, "", "")
        if port and not port.isdigit():
            raise ValueError(f"--broker {args.broker}: the port must be a number, e.g. broker.lan:1883")
        data["host"], data["port"] = (host, int(port)) if port else (args.broker, data.get("port"))
    if args.prefix:
        data["prefix"] = args.prefix
    if args.username:
        data["username"] = args.username
    tls = dict(data.get("tls") or {})
    for key in ("ca_file", "cert_file", "key_file"):
        if getattr(args, key):
            tls[key] = getattr(args, key)
    if args.tls or args.ca_file:
        tls["enabled"] = True
    data["tls"] = tls
    if not data.get("host"):
        raise ValueError("no broker: give --broker HOST[:PORT], or --config FILE with mqtt.host set")
    try:
        return MqttConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"mqtt.{where}: {first['msg']}") from None


def access_settings(args: argparse.Namespace) -> Access:
    """Host names served and the login token; ValueError with one line when bound beyond loopback without one."""
    token = read_token(args.token_file)
    access = Access(args.bind, set(args.allow_host), token)
    if not access.loopback_only and token is None and not args.no_auth:
        raise ValueError(f"--bind {args.bind} serves the page beyond this machine: give a login token "
                         f"(--token-file FILE or ${TOKEN_ENV}), or --no-auth to serve it to anyone who can reach it")
    if args.no_auth and token is not None:
        raise ValueError("--no-auth and a token (--token-file or $" + TOKEN_ENV + ") contradict each other: choose one")
    return access


def open_store(args: argparse.Namespace) -> Store | None:
    """The history store the flags ask for (None with --no-history); ValueError with one line if unusable."""
    if args.no_history:
        return None
    if args.hourly_days <= 0 or args.retention_days < args.hourly_days:
        raise ValueError("--hourly-days must be > 0 and --retention-days at least --hourly-days")
    url = args.store
    if not url:
        path = state_dir() / "dashboard-history.sqlite"    # the same state folder as the queue
        path.parent.mkdir(parents=True, exist_ok=True)
        url = str(path)
    if ":" in url.split("/")[0] and not is_postgres(url) and not url.startswith("sqlite://"):
        raise ValueError(f"--store {shown(url)}: give an SQLite file path or a postgresql:// URL")
    return Store(url, args.hourly_days, args.retention_days)


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until SIGTERM/SIGINT; returns the exit code."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("edge.dashboard")
    try:
        cfg = mqtt_settings(args)
        if args.max_devices < 1:
            raise ValueError("--max-devices must be at least 1")
        access = access_settings(args)
        store = open_store(args)
        dashboard = Dashboard(cfg, args.bind, args.port, Limits(max_devices=args.max_devices), store=store,
                              access=access)
    except ValueError as exc:
        print(f"fer-edge dashboard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"fer-edge dashboard: {exc} (choose another --port)", file=sys.stderr)
        return EXIT_MODEL
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with dashboard:
        if not access.loopback_only and access.token is None:
            log.warning("dashboard reachable from the network on %s:%d WITHOUT a login (--no-auth): anyone who "
                        "can reach it sees the emotion data", args.bind, dashboard.server.httpd.server_address[1])
        elif not access.loopback_only:
            log.info("dashboard reachable from the network on %s:%d with a login (plain HTTP: use it on a trusted "
                     "network or behind a TLS proxy)", args.bind, dashboard.server.httpd.server_address[1])
        log.info("dashboard at %s (devices under %s/ on %s; history in %s)", dashboard.url, cfg.prefix,
                 dashboard.feed.address, shown(store.url) if store is not None else "nothing (--no-history)")
        print(f"dashboard: {dashboard.url}", flush=True)
        stop.wait()
    return EXIT_OK
