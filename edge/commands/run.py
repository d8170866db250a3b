"""`fer-edge run`: the continuous service (what systemd starts): source -> pipeline -> MQTT.

    fer-edge run --config /etc/fer-edge/config.yaml
    fer-edge run --demo          # the built-in demo clip instead of the configured source; ends after 12 s
                                 # (without a config file: with the built-in defaults, events on stdout)

SIGTERM/SIGINT stop it cleanly (capture stopped, event queue flushed); SIGHUP reloads the config
file. Exit codes: 0 stopped or the source ended, 1 the pipeline failed, 2 no usable config,
3 the models or the sink could not be opened.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

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
    path: Path | None = Path(args.config) if args.config else default_path()
    if args.demo and not args.config and not path.is_file():
        # the demo needs nothing: without a config file it runs with the defaults (events on stdout)
        logging.getLogger("edge.service").info("no config file (%s): the demo runs with the built-in defaults",
                                               path)
        path = None
    return Service(path, demo=args.demo).run()
