"""`.ci/run` is exactly the README's test set-up, and that set-up needs neither sudo nor anything installed by hand."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_commands() -> list[str]:
    """The command lines of the README's "Run the tests" bash block."""
    text = (ROOT / "README.md").read_text()
    start = text.index("Run the tests")
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block, "README.md: no ```bash block after 'Run the tests'"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    start, end = lines.index("# --- README test set-up ---"), lines.index("# --- end ---")
    return [line for line in lines[start + 1:end] if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_exactly_the_readme_commands():
    assert ci_commands() == readme_test_commands()


def test_readme_set_up_installs_what_ci_and_the_tests_need():
    commands = readme_test_commands()
    assert not any(re.search(r"\bsudo\b", c) for c in commands), "root has no sudo; the README says when to add it"
    apt = next(c for c in commands if "apt-get install" in c)
    for package in ("mosquitto", "mosquitto-clients", "openssl", "systemd"):
        assert re.search(rf"\s{re.escape(package)}(\s|$)", apt), f"{package} missing from the apt-get line"
    assert any("apt-get update" in c for c in commands), "a brand-new machine has no package lists"
    assert any(re.search(r"python3 -m venv ", c) for c in commands), "the set-up makes its own virtual environment"
    assert any('pip install -e ".[test,train]"' in c for c in commands)
    assert commands[-1] == "python3 -m pytest -q -n 2 --dist loadfile"     # -n: pytest-xdist, in the test extra
    assert "python3 -m ruff check ." in commands, "the linter runs before the tests (rules: pyproject.toml)"
