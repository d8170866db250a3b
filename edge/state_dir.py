"""The service's state directory: the event queue, the fleet layers, the serial record and model updates live there."""
from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` (its first entry), else ``$XDG_STATE_HOME/fer-edge`` or ~/.local/state/fer-edge."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state)
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "fer-edge"
