"""The `fer-edge` command line.

Exit codes (all commands): 0 success; 1 ran, but some inputs failed (each said on stderr);
2 usage or configuration error; 3 a required model, device or sink could not be opened;
141 the output was closed early (a pipe into `head`), as for a program ended by SIGPIPE.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from edge import __version__
from edge.exitcodes import EXIT_SIGPIPE

# command -> (module, one-line help). Only the module of the command being run is imported (its
# options are added then), so `fer-edge config validate` never loads OpenCV or an interpreter
# and `fer-edge --help` loads nothing. An import error in that module is a real error: it shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("edge.commands.detect", "find faces and emotions in images or folders; one JSON line per face"),
    "run": ("edge.commands.run", "run the continuous loop from the configured source and publish events"),
    "recognize": ("edge.commands.recognize", "live annotated preview (window or MJPEG); --events prints events"),
    "eval": ("edge.commands.eval", "measure an emotion model on the FER+ test split (--data: the shared data folder)"),
    "eval-faces": ("edge.commands.eval_faces", "measure the whole pipeline on labelled full photographs"),
    "config": ("edge.commands.config", "validate a config file or print its JSON Schema"),
    "dashboard": ("edge.ops.dashboard.command", "serve the live web dashboard of every device under the MQTT prefix"),
    "fleet": ("edge.ops.fleet.command", "list devices, push config or models to a device or group, roll back, follow events"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the options of ``command`` (None: every command's) are loaded from its module."""
    parser = argparse.ArgumentParser(prog="fer-edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fer-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option), if it is one."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fer-edge` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    # Without a (known) command only the top-level help or usage error is printed: load nothing.
    args = build_parser(command or "").parse_args(argv)
    try:
        code = int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`fer-edge config schema | head`): stop quietly, as a program killed by
        # SIGPIPE does; stdout points at /dev/null so that Python's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
