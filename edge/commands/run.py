"""`fer-edge run`: the continuous service (what systemd starts): source -> pipeline -> MQTT.

    fer-edge run --config /etc/fer-edge/config.yaml
    fer-edge run --demo          # the built-in demo clip instead of the configured source; ends after 12 s

SIGTERM/SIGINT stop it cleanly (capture stopped, event queue flushed); SIGHUP reloads the config
file. Exit codes: 0 stopped or the source ended, 1 the pipeline failed, 2 no usable config,
3 the models or the sink could not be opened.
"""
from __future__ import annotations

import argparse
import logging
import sys

from edge.config import default_path
from edge.service.credentials import import_credentials
from edge.service.supervisor import Service


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--config PATH (default: /etc/fer-edge/config.yaml if present, else ./config.yaml), --demo."""
    parser.add_argument("--config", "-c", default=None,
                        help="YAML config file (default: /etc/fer-edge/config.yaml if it exists, else ./config.yaml)")
    parser.add_argument("--demo", action="store_true",
                        help="play the built-in demo clip (two faces come and go, 12 s) instead of the configured "
                        "source, then stop; no camera or file needed. Events go where the config sends them")


def run(args: argparse.Namespace) -> int:
    """Run the service until stopped; returns its exit code."""
    # stderr goes to the journal under systemd, which adds its own timestamps
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    import_credentials()            # systemd's LoadCredential= secrets, before the config reads ${VAR}
    return Service(args.config or default_path(), demo=args.demo).run()
