"""One service per state directory: the second one on a host refuses to start, saying which holds it.

The state directory (systemd's ``StateDirectory=``, else ``$XDG_STATE_HOME/fer-edge``) holds the event
queue, the remote config layers, the replay record and downloaded models; two services writing
there would mix them. The first service holds an exclusive lock on ``service.lock`` in it (released
when the process ends, however it ends) and writes its device id and pid there for the message.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from edge.control.runtime import ApplyError
from edge.state_dir import state_dir

LOCK_NAME = "service.lock"


class StateDirectoryBusy(ApplyError):
    """Another running service holds the state directory (the service stops with exit code 3)."""


def hold_state_directory(device_id: str, directory: Path | None = None) -> IO[str]:
    """Lock ``directory`` (default: :func:`edge.state_dir.state_dir`) for this process; keep the returned file open.

    StateDirectoryBusy (one line: who holds it, what to do) when another service has it; ApplyError when
    the directory cannot be written.
    """
    directory = state_dir() if directory is None else directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fh = open(directory / LOCK_NAME, "a+")
    except OSError as exc:
        raise ApplyError(f"state directory {directory}: cannot write there ({exc.strerror}); give the service a "
                         "writable one (systemd: StateDirectory=, else STATE_DIRECTORY=)") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise StateDirectoryBusy(
            f"state directory {directory} is in use by another fer-edge service ({holder}): two services would "
            f"mix their event queues and remote config. Give this one its own: under systemd a second unit "
            f"with StateDirectory=fer-edge-{device_id} (docs/deploy.md), else STATE_DIRECTORY=/path/of/its/own"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"device {device_id}, pid {os.getpid()}\n")
    fh.flush()
    return fh
