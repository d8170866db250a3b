"""`fer-edge config`: validate a config file, print its JSON Schema, or sign a remote-config message.

    fer-edge config validate /etc/fer-edge/config.yaml     # exit 0 and its version, or 2 and the problems
    fer-edge config schema > fer-edge.schema.json          # for editors (YAML language server)
    fer-edge config sign patch.yaml --device cam1 | mosquitto_pub -t fer-edge/cam1/config/set -s
    fer-edge config reference              # the Markdown key reference of docs/config.md
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from edge.config import AppConfig, ConfigError, json_schema, load_file, section_models
from edge.exitcodes import EXIT_OK, EXIT_USAGE
from edge.security import security_warnings
from edge.control.signing import DEFAULT_SIGNER, SignatureError, device_target, group_target, sign_message

PACKAGE_ROOT = Path(__file__).resolve().parents[2]    # the folder holding the edge package


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands: validate FILE, schema, sign FILE."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = sub.add_parser("validate", help="check a config file: unknown keys, types, ranges, ${VAR} references")
    v.add_argument("file", help="YAML config file")
    v.add_argument("--print", dest="show", action="store_true",
                   help="also print the effective config (defaults filled in) as JSON; values from the "
                        "environment are shown, so mind secrets")
    sub.add_parser("schema", help="print the JSON Schema of the config file")
    sub.add_parser("reference", help="print the Markdown table of every key (the reference in docs/config.md)")
    s = sub.add_parser("sign", help="print a config message signed with HMAC-SHA256 for <topic>/config/set")
    s.add_argument("file", help="YAML document (partial, merged into the device's config; or full with "
                                "a '# mode: replace' line)")
    s.add_argument("--secret-env", default="FER_EDGE_CONFIG_SECRET",
                   help="environment variable holding the shared secret (default: %(default)s)")
    target = s.add_mutually_exclusive_group()
    target.add_argument("--device", metavar="ID", help="the device it is for (topic <prefix>/ID/config/set)")
    target.add_argument("--group", metavar="G", help="the group it is for (topic <prefix>/group/G/config/set)")
    s.add_argument("--serial", type=int, default=None,
                   help="serial of the message; must grow per signer (default: the time in milliseconds)")
    s.add_argument("--signer", default=DEFAULT_SIGNER,
                   help="who signs; each signer has its own serial counter on the device (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; exit code 2 for an invalid config or missing secret."""
    if args.action == "reference":
        print(markdown_reference(), end="")
        return EXIT_OK
    if args.action == "schema":
        json.dump(json_schema(), sys.stdout, indent=2)
        print()
        return EXIT_OK
    if args.action == "sign":
        return _sign(args)
    try:
        loaded = load_file(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        n = len(exc.problems)
        print(f"{args.file}: invalid ({n} problem{'s' if n != 1 else ''})", file=sys.stderr)
        return EXIT_USAGE
    for warning in security_warnings(loaded.config):
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    print(f"{args.file}: OK (version {loaded.version})")
    if args.show:
        print(loaded.config.model_dump_json(indent=2))
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    """Print a replay-safe signed message (edge.control.signing) for one device or group."""
    if not (args.device or args.group):
        print("fer-edge config sign: say who it is for: --device ID or --group G (a device accepts a signed "
              "message only on the topic it names)", file=sys.stderr)
        return EXIT_USAGE
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"fer-edge config sign: environment variable {args.secret_env} is not set", file=sys.stderr)
        return EXIT_USAGE
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"fer-edge config sign: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        target = device_target(args.device) if args.device else group_target(args.group)
        sys.stdout.buffer.write(sign_message(body, secret.encode(), target, args.serial, args.signer))
    except SignatureError as exc:
        print(f"fer-edge config sign: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def markdown_reference() -> str:
    """Every key of the config as Markdown tables, one per section (key, default, meaning).

    Generated from the schema's descriptions, so the docs cannot drift from the code:
    tests/test_config.py checks that docs/config.md holds exactly this text.
    """
    out = []
    for name, info in AppConfig.model_fields.items():
        out += [f"#### `{name}`", "", f"{info.description}.", "", "| key | default | meaning |", "|---|---|---|"]
        seen: set[str] = set()
        for model in section_models(info.annotation):
            for path, default, text in _rows(model, name):
                if path not in seen:
                    seen.add(path)
                    out.append(f"| `{path}` | {default} | {text} |")
        out.append("")
    return "\n".join(out)


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    rows = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}"
        nested = section_models(info.annotation)
        if nested:
            for sub in nested:
                rows += _rows(sub, path)
            continue
        rows.append((path, _default_text(path, info), (info.description or "").replace("|", "\\|")))
    return rows


def _default_text(path: str, info: FieldInfo) -> str:
    if path == "device.id":
        return "the hostname"
    if info.default_factory is not None:
        return ""
    value = info.default
    if isinstance(value, Path):       # paths inside the package: shown from the package, not this machine's root
        try:
            return f"`{value.relative_to(PACKAGE_ROOT)}`"
        except ValueError:
            return f"`{value}`"
    try:
        return f"`{json.dumps(value)}`"
    except TypeError:
        return f"`{value}`"
