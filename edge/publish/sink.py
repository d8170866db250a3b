"""Where events go: ``make_sink(cfg)`` picks the durable MQTT publisher or, without a broker, stdout JSON lines.

The code that produces events only sees :class:`EventSink`; whether a broker is connected, or
configured at all, is the sink's business.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any, Callable, Iterable, Protocol, TextIO

from edge.config import AppConfig
from edge.config.events import EventsConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.mqtt import MqttConfig
from edge.config.queue import QueueConfig
from edge.events import Event, publishable
from edge.formatting import compact_json
from edge.classify import ModelCard, ModelError
from edge.publish.discovery import Announced
from edge.publish.instance import INSTANCE_ID
from edge.publish.mqtt import MqttSink
from edge.publish.mqtt_client import check_tls_files
from edge.publish.queue import EventQueue
from edge.publish.topics import check_topic_level

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """What the service and its control plane publish through, and receive messages from.

    ``remote``: messages can arrive (a broker is configured); ``connected`` and ``last_error``: the
    link to it. Nothing outside edge/publish/ looks at which sink it is.
    """

    remote: bool
    last_error: str | None

    @property
    def connected(self) -> bool: ...
    def publish(self, event: Event) -> None: ...
    def publish_all(self, events: Iterable[Event]) -> None: ...
    def publish_stats(self, stats: dict[str, Any]) -> dict[str, Any]: ...
    def publish_retained(self, subtopic: str, payload: dict[str, Any] | str | bytes) -> None: ...
    def subscribe(self, subtopic: str, callback: Callable[[bytes], None]) -> None: ...
    def subscribe_topic(self, topic: str, callback: Callable[[bytes], None]) -> None: ...
    def problem(self) -> str | None: ...
    def set_cameras(self, current: list[str], removed: list[str]) -> None: ...
    def close(self, timeout: float = 5.0, status: str | None = "stopped") -> None: ...


class StdoutSink:
    """Events as JSON lines on stdout (the same payloads as the MQTT `events` topic); stats to the log.

    Sequence numbers start at 1 per run: without a queue file there is nothing durable to continue.
    """

    remote = False                    # nothing arrives without a broker
    connected = False
    last_error: str | None = None

    def __init__(self, device: str, events: EventsConfig | None = None, stream: TextIO | None = None) -> None:
        self.device = device
        self.events_cfg = events or EventsConfig()
        self.stream = stream or sys.stdout
        self.seq = 0
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        """Write one event as a JSON line."""
        self.publish_all((event,))

    def publish_all(self, events: Iterable[Event]) -> None:
        """Write events as JSON lines, in order."""
        with self._lock:
            for ev in publishable(list(events), self.events_cfg):
                self.seq += 1
                self.stream.write(ev.stamped(self.device, self.seq, instance=INSTANCE_ID).to_json() + "\n")
            self.stream.flush()

    def publish_stats(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Log the health report as one JSON line (logger ``edge.publish.sink``)."""
        payload = {"device": self.device, **stats}
        log.info("stats %s", compact_json(payload))
        return payload

    def publish_retained(self, subtopic: str, payload: dict[str, Any] | str | bytes) -> None:
        """Log what would be retained on ``subtopic`` (the whole config document only at debug level:
        it is for fleet tools over MQTT, and repeats the file a stdout run was started with)."""
        level = logging.DEBUG if subtopic == "config/layers" else logging.INFO
        log.log(level, "%s %s", subtopic, payload if not isinstance(payload, dict) else json.dumps(payload))

    def subscribe(self, subtopic: str, callback: Callable[[bytes], None]) -> None:
        """Nothing arrives without a broker."""

    def subscribe_topic(self, topic: str, callback: Callable[[bytes], None]) -> None:
        """Nothing arrives without a broker."""

    def problem(self) -> str | None:
        """Writing to stdout has no delivery state to report."""
        return None

    def set_cameras(self, current: list[str], removed: list[str]) -> None:
        """Stdout keeps no per-camera state."""

    def close(self, timeout: float = 5.0, status: str | None = "stopped") -> None:
        """Flush the stream (there is no status topic)."""
        self.stream.flush()


def build_sink(device: str, events: EventsConfig | None = None, mqtt: MqttConfig | None = None,
               queue: QueueConfig | None = None, homeassistant: HomeAssistantConfig | None = None,
               cameras: Iterable[str] = (), who: Announced | None = None) -> EventSink:
    """A sink from the publishing sections: MQTT when ``mqtt`` is enabled with a host, else stdout.

    Raises QueueError (queue file unusable) or ValueError (bad device id, TLS files) with one clear line.
    """
    check_topic_level(device, "device id")
    if mqtt is None or not mqtt.enabled or not mqtt.host:
        return StdoutSink(device, events)
    check_tls_files(mqtt)           # before the queue is opened (and locked): nothing to undo on a bad file
    q = EventQueue.from_config(queue or QueueConfig())
    try:
        return MqttSink(device, mqtt, q, events, homeassistant, cameras, who=who)
    except BaseException:
        # The queue is ours until the sink owns it: release its lock now, or the rollback's
        # reopen of the previous config finds it "in use by another fer-edge process".
        q.close()
        raise


def make_sink(cfg: AppConfig) -> EventSink:
    """The sink for a config: its device, events, mqtt, queue and homeassistant sections; every camera's id."""
    return build_sink(cfg.device.id, cfg.events, cfg.mqtt, cfg.queue, cfg.homeassistant,
                      [c.source.name for c in cfg.camera_configs()], announced(cfg))


def announced(cfg: AppConfig) -> Announced:
    """Name, location and the model's emotions, for Home Assistant (the card's classes; none if unreadable:
    the model itself is checked, with a clear error, when the pipeline loads it)."""
    emotions: tuple[str, ...] = ()
    if cfg.homeassistant.enabled:
        try:
            emotions = ModelCard.load(cfg.model.card or cfg.model.path.with_suffix(".json")).classes
        except ModelError:
            pass
    return Announced(name=cfg.device.name, location=cfg.device.location, emotions=emotions)
