"""What a running service does for the fleet: listen on its group topics and take model updates.

The service (edge/service/supervisor.py) calls :func:`subscribe_fleet` each time it (re)opens its
sink, and :meth:`FleetAgent.tick` from its main loop. Config messages from every topic, the
device's own and its groups', go to the service's one inbox (``on_config_message(payload, layer)``)
and are applied one at a time there (edge/service/changes.py); model updates are checked by their
own thread (edge.fleet.ota) and switched in by ``tick`` in the main thread.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from edge.config import AppConfig, LoadedConfig
from edge.fleet.device import FleetConfig
from edge.fleet.layers import DEVICE_LAYER, default_layer_path
from edge.fleet.ota import ModelUpdater
from edge.publish.mqtt import MqttSink

log = logging.getLogger("edge.fleet")
__all__ = ["DEVICE_LAYER", "FleetAgent", "subscribe_fleet"]


class Host(Protocol):
    """What the agent needs of the service."""

    base: LoadedConfig | None           # the local file
    loaded: LoadedConfig | None         # what runs
    sink: Any                           # EventSink; MqttSink when MQTT is configured
    changes: Any                        # edge.service.changes.RemoteChanges: .fleet, .guard

    def on_config_message(self, payload: bytes, layer: str = DEVICE_LAYER) -> None: ...

    def apply_config(self, new: LoadedConfig, origin: str, save: Callable[[], None] | None = None) -> list[str]: ...

    def publish_config_state(self, error: str | None, **fields: Any) -> None: ...


class FleetAgent:
    """The model updater of one service, kept across sink reopens."""

    def __init__(self, host: Host, cfg: AppConfig, state_dir: Path) -> None:
        self.host = host
        self.updater = ModelUpdater(cfg.device.id, cfg.mqtt, state_dir, cfg.service.remote_config,
                                    lambda: self._cfg().model, self._apply_model, self._publish_model_state,
                                    host.changes.guard)

    def _cfg(self) -> AppConfig:
        assert self.host.loaded is not None
        return self.host.loaded.config

    def subscribe(self, sink: MqttSink, cfg: AppConfig) -> None:
        """The group config topics and the model update topics on a newly opened sink."""
        fleet: FleetConfig = self.host.changes.fleet
        for topic, layer in fleet.topics(cfg.mqtt.prefix, cfg.device.id, cfg.device.groups).items():
            sink.subscribe_topic(topic, partial(self.host.on_config_message, layer=layer))
        self.updater.device, self.updater.mqtt, self.updater.settings = (cfg.device.id, cfg.mqtt,
                                                                          cfg.service.remote_config)
        for topic, target in self.updater.topics(cfg.device.groups).items():
            sink.subscribe_topic(topic, partial(self.updater.on_message, target))
        self.updater.publish_running()

    def tick(self) -> None:
        """Main loop: switch to a model update that passed its checks."""
        self.updater.tick()

    def _apply_model(self, patch: dict[str, Any], origin: str) -> None:
        # The switch is a change of the device's own layer (model.path, model.card), applied and saved
        # like any other: if the analyzer cannot be rebuilt with it, ApplyError and the old model runs.
        host = self.host
        assert host.base is not None
        prepared = host.changes.fleet.prepare_local(DEVICE_LAYER, patch, host.base)
        host.apply_config(prepared.loaded, origin, save=partial(host.changes.fleet.commit, prepared))
        host.publish_config_state(None, status="applied", origin="model update")

    def _publish_model_state(self, payload: dict[str, Any]) -> None:
        sink = self.host.sink
        if isinstance(sink, MqttSink):
            sink.publish_retained("model/state", payload)


def subscribe_fleet(host: Host, sink: Any, cfg: AppConfig) -> None:
    """Subscribe the device's own config topic, its groups' and its model update topics (MQTT sinks only)."""
    if not isinstance(sink, MqttSink):
        return
    agent = getattr(host, "fleet_agent", None)
    if agent is None:
        agent = FleetAgent(host, cfg, default_layer_path().parent)
        host.fleet_agent = agent
    agent.subscribe(sink, cfg)


def tick(host: Host) -> None:
    """The main loop's part: see :meth:`FleetAgent.tick` (nothing before the first subscription)."""
    agent = getattr(host, "fleet_agent", None)
    if agent is not None:
        agent.tick()

