"""This process's instance id: what tells apart two fer-edge processes that publish under one device id.

``device.id`` defaults to the host name, so two boards cloned from one image share it. Each
process therefore draws a random instance id when it starts; it travels in every event and
status message, so that (device, instance, seq) names one event even when two processes use the
same device id (each has its own queue and seq counter), and a process can recognise the status
messages of another (edge/publish/duplicate.py).
"""
from __future__ import annotations

import secrets
import time

#: Random per process start (12 hex digits), the same for every sink this process opens.
INSTANCE_ID: str = secrets.token_hex(6)
#: When this process started (epoch seconds): status messages of another instance dated before
#: it are from an earlier run of this device, not from a second device.
STARTED_EPOCH: float = time.time()
#: The same moment on the monotonic clock: the stats message's uptime_s counts from it (a remote config
#: change reopens the sink and restarts the pipeline, not the process).
STARTED_MONOTONIC: float = time.monotonic()
