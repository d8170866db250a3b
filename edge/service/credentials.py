"""Secrets handed over by systemd's ``LoadCredential=`` (``$CREDENTIALS_DIRECTORY``), read like environment variables.

The unit loads each secret as a credential named like the variable it stands for
(``LoadCredential=FER_EDGE_MQTT_PASSWORD:/etc/fer-edge/credentials/FER_EDGE_MQTT_PASSWORD``);
:func:`import_credentials` makes each one visible under that name to the code that reads the
environment (``${VAR}`` in config.yaml, ``mqtt.password``, ``service.remote_config.secret_env``), so
no secret sits in a unit file or an environment file. A variable already set wins; an empty file
means "not set". Only names are logged, never values.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import MutableMapping

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
_MAX_BYTES = 64 * 1024


def import_credentials(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set ``environ[NAME]`` from each credential file NAME not already set; return the names set."""
    environ = os.environ if environ is None else environ
    folder = environ.get("CREDENTIALS_DIRECTORY", "")
    if not folder:
        return []
    names: list[str] = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError as exc:
        log.error("credentials: cannot read $CREDENTIALS_DIRECTORY (%s)", exc.strerror)
        return []
    for path in entries:
        if not _NAME.fullmatch(path.name) or environ.get(path.name):
            continue
        try:
            raw = path.read_bytes()[:_MAX_BYTES + 1]
            value = raw.decode("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            log.error("credentials: %s cannot be read as UTF-8 text; ignored", path.name)
            continue
        if len(raw) > _MAX_BYTES or "\0" in value:
            log.error("credentials: %s is not a short text secret; ignored", path.name)
            continue
        if value:
            environ[path.name] = value
            names.append(path.name)
    if names:
        log.info("credentials from systemd: %s", ", ".join(names))
    return names
