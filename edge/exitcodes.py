"""The exit codes of every `fer-edge` command (and of `python -m models.evaluate`)."""
from __future__ import annotations

EXIT_OK = 0          # success (the service: stopped, or its file source ended)
EXIT_FAILED = 1      # ran, but some inputs failed (each said on stderr); the service: the pipeline failed
EXIT_USAGE = 2       # usage or configuration error
EXIT_MODEL = 3       # a required model, device or sink could not be opened
EXIT_SIGPIPE = 141    # the output was closed early (`| head`): as a program ended by SIGPIPE (128 + 13)
