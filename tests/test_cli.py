"""The `fer-edge` dispatcher: only the command being run is imported, and its import errors show."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge import cli

REPO = Path(__file__).resolve().parents[1]


def _modules_after(*argv: str) -> tuple[str, list[str]]:
    code = ("import sys\nfrom edge import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('edge.commands.')), file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    *_, loaded = res.stderr.strip().splitlines()
    return res.stdout, eval(loaded)


def test_top_level_help_lists_every_command_and_loads_none():
    out, loaded = _modules_after("--help")
    assert loaded == []
    for name in cli.COMMANDS:
        assert name in out
    assert "edge/commands" not in out           # users get commands, not the source layout


def test_a_command_loads_only_its_own_module():
    _, loaded = _modules_after("config", "schema")
    assert loaded == ["edge.commands.config"]
    _, loaded = _modules_after("detect", "--help")
    assert loaded == ["edge.commands.detect"]


def test_an_import_error_in_a_command_module_is_not_hidden(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "config", ("edge.commands.no_such_module", "a broken command"))
    with pytest.raises(ModuleNotFoundError, match="edge.commands.no_such_module"):
        cli.main(["config", "validate", "x.yaml"])


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_every_command_parses_with_the_full_parser():
    parser = cli.build_parser()          # every command's options (e.g. for generated docs)
    assert parser.parse_args(["run", "-c", "x.yaml"]).config == "x.yaml"
    assert parser.parse_args(["config", "validate", "x.yaml"]).file == "x.yaml"
