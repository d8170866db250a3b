"""The `fer-edge` command line: dispatches to one module per subcommand (edge/commands/).

Exit codes (all commands): 0 success; 1 ran, but some inputs failed (each said on stderr);
2 usage or configuration error; 3 a required model or device could not be opened.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from edge import __version__

# subcommand -> (module, one-line help); modules are imported only when their command runs,
# so that `fer-edge config validate` never loads OpenCV or the interpreter.
COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("edge.commands.detect", "find faces and emotions in images or folders; one JSON line per face"),
    "run": ("edge.commands.run", "run the continuous loop from the configured source and publish events"),
    "recognize": ("edge.commands.recognize", "live annotated preview window (needs a display)"),
    "eval": ("edge.commands.eval", "measure an emotion model on the FER+ test split"),
    "eval-faces": ("edge.commands.eval_faces", "measure the whole pipeline on labelled full photographs"),
    "config": ("edge.commands.config", "validate a config file or print its JSON Schema"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fer-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError as exc:  # a command whose module is not installed
            p.set_defaults(_missing=str(exc))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fer-edge` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", None):
        print(f"fer-edge {args.command}: not available ({args._missing})", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
