"""A new user's first minutes (issue 17): clone, set up as the README says, run the README's main job.

The repository is cloned (its committed HEAD) into an empty folder with no ``../shared`` beside
it, installed into a fresh virtual environment by the README's own set-up command, and the
README's main-job command is run there: it must show faces appearing, a summary (or an emotion
change) and faces leaving, then exit 0 at the end of the clip. Both commands are read from
README.md, so the test breaks when the README's instructions do.

Slow (a minute or more: pip installs the runtime dependencies, from pip's cache where it has
them) and needs the package index, as the README's set-up does.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import venv
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO


def readme_block(text: str, after: str) -> str:
    """The commands of the first ```bash block after the first line starting with ``after``."""
    at = next((m.end() for m in re.finditer(rf"^{re.escape(after)}.*$", text, re.M)), None)
    assert at is not None, f"README.md has no line starting with {after!r}"
    m = re.compile(r"^```bash\n(.*?)^```", re.M | re.S).search(text, at)
    assert m, f"README.md: no ```bash block after {after!r}"
    return "\n".join(ln for ln in m.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#"))


def test_readme_blocks_are_found():
    text = (REPO / "README.md").read_text()
    assert "pip install" in readme_block(text, "Set up")
    assert readme_block(text, "Run the main job").startswith("fer-edge run")


@pytest.mark.slow
def test_fresh_clone_set_up_and_main_job_as_the_readme_says(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout to clone")
    home = tmp_path / "new-user"
    home.mkdir()
    clone = home / "fer-edge"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    assert not (clone.parent / "shared").exists()
    text = (clone / "README.md").read_text()
    setup_cmd, main_cmd = readme_block(text, "Set up"), readme_block(text, "Run the main job")

    env_dir = home / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "FER_EDGE_MODELS", "FER_EDGE_SOURCE", "NOTIFY_SOCKET", "PYTHONHOME")}
    env.update(PATH=f"{env_dir / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}", VIRTUAL_ENV=str(env_dir),
               XDG_CACHE_HOME=str(home / ".cache"),          # no fetched models from earlier runs...
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),  # ...but pip's cache
               PIP_DISABLE_PIP_VERSION_CHECK="1")

    # One shell, as a person types them: a set-up that activates a virtual environment keeps it
    # for the main job. The set-up's output goes to a file; a marker says it finished.
    log, done, where = home / "setup.log", home / "setup.done", home / "where"
    script = (f"set -e\n{{\n{setup_cmd}\n}} > {log} 2>&1\ntouch {done}\n"
              f"(cd {home} && python3 -c 'import edge; print(edge.__file__)') > {where}\n{main_cmd}\n")
    run = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=1500)
    assert done.exists(), f"set-up failed: {setup_cmd}\n{log.read_text()[-3000:]}"
    assert run.returncode == 0, f"{main_cmd}: exit {run.returncode}\n{run.stderr[-3000:]}"
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    types = Counter(e["type"] for e in events)
    assert types["face_appeared"] >= 1 and types["face_left"] >= 1, (types, run.stderr[-2000:])
    assert types["emotion_changed"] + types["summary"] >= 1, types
    # what ran is the package installed by the set-up, not this checkout's sources
    assert "site-packages" in where.read_text(), where.read_text()
