"""`fer-edge fleet`: the operator's view of every device under one MQTT prefix, and changes to them.

    fer-edge fleet list [--json]                         # names, online, versions, groups, last seen
    fer-edge fleet show cam-12                           # the effective config, layer by layer, vs the file
    fer-edge fleet push patch.yaml --group shop          # sign, publish, show each device's answer
    fer-edge fleet push patch.yaml --device cam-12
    fer-edge fleet rollback --group shop                 # back to the previous config
    fer-edge fleet push-model new.tflite --group shop    # model update over the air (card beside it)
    fer-edge fleet events [--device ID] [--readable]     # follow events, de-duplicated by id

It speaks MQTT only (the broker is the only thing it needs). Exit codes: 0 every device took it,
1 some device rejected it, rolled it back or did not answer, 2 usage/broker/credential problems.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from edge.config import ConfigError, parse_yaml
from edge.exitcodes import EXIT_OK, EXIT_USAGE
from edge.ops.fleet.model_push import push_model
from edge.ops.fleet.operator import Broker, Connection, Fleet, FleetError
from edge.ops.fleet.push import check_signing, report, send_and_wait, sign_body, target_of, targets, topic_of
from edge.ops.fleet.show import rollback_notes, show
from edge.ops.fleet.watch import follow_events



def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Broker options shared by every action, then list / push / rollback / push-model / events."""
    parser.add_argument("--host", default=os.environ.get("FER_EDGE_MQTT_HOST", "127.0.0.1"), help="broker host")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FER_EDGE_MQTT_PORT", "1883")))
    parser.add_argument("--prefix", default="fer-edge", help="topic prefix of the fleet (mqtt.prefix)")
    parser.add_argument("--username", default=os.environ.get("FER_EDGE_MQTT_USERNAME"))
    parser.add_argument("--password-env", default="FER_EDGE_MQTT_PASSWORD",
                        help="environment variable holding the broker password (default: %(default)s)")
    parser.add_argument("--ca-file", help="CA certificate: connect with TLS")
    parser.add_argument("--secret-env", default="FER_EDGE_CONFIG_SECRET",
                        help="environment variable holding the signing secret (default: %(default)s)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="every device seen under the prefix")
    ls.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    for name, text in (("push", "sign and publish a config change, then show each device's answer"),
                       ("rollback", "put the previous config back"),
                       ("push-model", "send a model and its card; devices test it and keep it or roll back")):
        p = sub.add_parser(name, help=text)
        if name != "rollback":
            p.add_argument("file", help="YAML config change" if name == "push" else ".tflite model (card: .json beside it)")
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--device", help="one device id")
        target.add_argument("--group", help="every device in this group (device.groups)")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for answers (default: %(default)s)")
        p.add_argument("--json", action="store_true", help="answers as JSON")
        if name == "push-model":
            p.add_argument("--card", help="model card (default: the model path with .json)")
            p.add_argument("--selftest", help="self-test faces (.npz: images, labels) sent with the model")
            p.add_argument("--keep-blobs", action="store_true",
                           help="leave the retained chunks on the broker (for devices that are offline now)")
    sh = sub.add_parser("show", help="one device: its effective config, each layer (file, groups, device) and "
                                     "how it differs from the file")
    sh.add_argument("device", help="device id")
    sh.add_argument("--json", action="store_true", help="the device's config/layers message as JSON")
    ev = sub.add_parser("events", help="follow events, de-duplicated by id (one JSON line each, or --readable)")
    ev.add_argument("--device", default="+", help="one device id (default: all)")
    ev.add_argument("--group", help="only the devices of this group (device.groups)")
    ev.add_argument("--type", help="only these event types, comma-separated (face_appeared, emotion_changed, "
                                   "face_left, summary)")
    ev.add_argument("--readable", action="store_true",
                    help="one line per event for people: time, device name, camera, what happened")
    ev.add_argument("--count", type=int, default=0, help="exit after this many distinct events (0: never)")
    ev.add_argument("--timeout", type=float, default=0.0, help="exit after this many seconds (0: never)")
    ev.add_argument("--session", help="persistent session name: events sent while this command was not "
                                      "running are delivered when it starts again")


def run(args: argparse.Namespace) -> int:
    """Run one action; every failure is one line on stderr and exit code 2."""
    broker = Broker(args.host, args.port, args.prefix, args.username, os.environ.get(args.password_env),
                    args.ca_file, bool(args.ca_file))
    try:
        if args.action == "events":
            return follow_events(broker, args.device, args.count, args.timeout, args.session, group=args.group,
                                 types=_types(args.type), readable=args.readable)
        with Connection(broker) as conn:
            fleet = Fleet(conn)
            fleet.settle()
            if args.action == "list":
                return _list(fleet, args.json)
            if args.action == "show":
                return show(fleet, args.device, args.json)
            if args.action == "push-model":
                return push_model(fleet, args, _secret(args))
            body = _read_change(args.file) if args.action == "push" else b"# action: rollback\n"
            return _push(fleet, args, body)
    except FleetError as exc:
        print(f"fer-edge fleet {args.action}: {exc}", file=sys.stderr)
        return EXIT_USAGE


# ---- list ----

def _list(fleet: Fleet, as_json: bool) -> int:
    rows = [v.row() for _, v in sorted(fleet.devices.items())]
    if as_json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print(f"no device has published under {fleet.prefix}/ on this broker")
        return EXIT_OK
    head = ("device", "location", "state", "version", "model", "config", "groups", "last seen")
    table = [head] + [(f"{r['name']} ({r['device']})" if r["name"] else r["device"], r["location"] or "-",
                       r["state"] or "?", r["version"] or "?", str(r["model"] or "?"),
                       (r["config_version"] or "?")[:12] + ("" if r["config_ok"] in (None, True) else " REJECTED"),
                       ",".join(r["groups"]) or "-", _ago(r["last_seen"])) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    for r in rows:       # the reason of a refused change, in full, under the table
        if r["config_error"]:
            print(f"{r['name'] or r['device']} ({r['device']}): last change REJECTED: {r['config_error']}")
    return EXIT_OK


def _types(text: str | None) -> set[str] | None:
    known = {"face_appeared", "emotion_changed", "face_left", "summary"}
    if not text:
        return None
    types = {t.strip() for t in text.split(",") if t.strip()}
    if types - known:
        raise FleetError(f"--type {','.join(sorted(types - known))}: unknown event type (use {', '.join(sorted(known))})")
    return types


def _ago(epoch: float | None) -> str:
    if not epoch:
        return "?"
    s = max(0.0, time.time() - epoch)
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.1f} h ago"


# ---- push / rollback ----

def _read_change(path: str) -> bytes:
    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        raise FleetError(f"cannot read {path}: {exc.strerror}") from None
    try:
        parse_yaml(body, path)      # a typo is caught here, not by every device separately
    except ConfigError as exc:
        raise FleetError(str(exc).splitlines()[0]) from None
    return body


def _secret(args: argparse.Namespace) -> str:
    return os.environ.get(args.secret_env, "")


def _push(fleet: Fleet, args: argparse.Namespace, body: bytes) -> int:
    devices = targets(fleet, args.device, args.group)
    secret = _secret(args)
    check_signing(fleet, devices, secret, args.secret_env)
    payload, serial = sign_body(body, secret, target_of(args.device, args.group))
    before = {d: dict(fleet.devices[d].layers) for d in devices}
    answers = send_and_wait(fleet, topic_of(fleet, args.device, args.group, "config/set"), payload, devices,
                            serial, args.timeout)
    if args.action != "rollback":
        return report(answers, args.json, "push")
    fleet.wait(lambda: all(fleet.devices[a.device].layers.get("version") == a.version
                           for a in answers if a.took_it and a.version), 3.0)     # their config/layers follow
    notes = rollback_notes(fleet, answers, before, args.group)
    code = report(answers, args.json, "rollback", notes)
    return code


def main(argv: list[str] | None = None) -> int:
    """``python -m edge.ops.fleet.command`` (the same as ``fer-edge fleet``)."""
    parser = argparse.ArgumentParser(prog="fer-edge fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
