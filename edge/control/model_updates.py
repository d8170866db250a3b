"""Model updates of a running service: the topics they arrive on, and the switch in the main thread.

The control plane (edge/control/plane.py) calls :meth:`ModelUpdates.listen` each time the service
(re)opens its sink with remote config on, and :meth:`ModelUpdates.tick` from the main loop. The
updates are checked by their own thread (edge.control.ota) and switched in by ``tick``: the switch is
a change of the device's own config layer, applied and saved like any other.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from edge.config import AppConfig
from edge.config.model import ModelConfig
from edge.control.ota import ModelUpdater
from edge.control.signing import ReplayGuard
from edge.publish import EventSink


class ModelUpdates:
    """The model updater of one service, kept across sink reopens."""

    def __init__(self, cfg: AppConfig, state_dir: Path, guard: ReplayGuard, running: Callable[[], ModelConfig],
                 apply: Callable[[dict[str, Any], str], None], publish_state: Callable[[dict[str, Any]], None]) -> None:
        self.updater = ModelUpdater(cfg.device.id, cfg.mqtt, state_dir, cfg.service.remote_config,
                                    running, apply, publish_state, guard)

    def listen(self, sink: EventSink, cfg: AppConfig) -> None:
        """The model update topics of the device and its groups on a newly opened sink; the running model said."""
        self.updater.device, self.updater.mqtt, self.updater.settings = (cfg.device.id, cfg.mqtt,
                                                                          cfg.service.remote_config)
        for topic, target in self.updater.topics(cfg.device.groups).items():
            sink.subscribe_topic(topic, partial(self.updater.on_message, target))
        self.updater.publish_running()

    def tick(self) -> None:
        """Main loop: switch to a model update that passed its checks."""
        self.updater.tick()
