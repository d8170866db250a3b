"""The base of every config section: strict (unknown keys rejected), documented, immutable."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are validated, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


#: An environment variable name (``${NAME}`` in a config, ``service.remote_config.secret_env``).
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"

#: An id that is one MQTT topic level and part of Home Assistant unique ids: ``device.id``, ``source.name``.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
