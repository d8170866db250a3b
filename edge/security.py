"""Security defaults: what a config leaves open (warnings), and which changes an unsigned message may not make.

* :func:`security_warnings` lists, one line each, what makes a config weaker than it could be:
  plain-text MQTT to another machine, no credentials (the broker must allow anonymous clients),
  unsigned remote config, a 3.1.1 connection that cannot cap the size of incoming messages, the
  MJPEG preview or face snapshots sending images off the device. ``fer-edge run`` logs them at
  start, ``fer-edge config validate`` prints them.
* :func:`image_keys_turned_on` names the keys whose change from ``old`` to ``new`` makes images
  leave the device; :func:`protected_keys_changed` names every changed key of :data:`PROTECTED_KEYS`
  (remote config, MQTT destination and credentials, device identity and groups, snapshots, preview
  binding, model): an unsigned remote message that changes one is rejected.
* :func:`max_packet_bytes` is the MQTT 5 Maximum Packet Size the device announces, so that the
  broker drops a too-large config message instead of sending it whole.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:                      # typing only: the config package imports the runtime sections
    from edge.config import AppConfig

ENV_USERNAME = "FER_EDGE_MQTT_USERNAME"
#: Room for the fixed header, topic and properties of a PUBLISH around a payload of the allowed size.
PACKET_OVERHEAD = 4096


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1: traffic that never leaves the machine."""
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_warnings(cfg: "AppConfig", env: Mapping[str, str] | None = None) -> list[str]:
    """One line per weakness of ``cfg`` a person should know about (empty: nothing to say)."""
    env = os.environ if env is None else env
    out: list[str] = []
    mqtt = cfg.mqtt
    rc = cfg.service.remote_config
    if mqtt.enabled and mqtt.host:
        if not mqtt.tls.enabled and not is_loopback(mqtt.host):
            out.append(f"MQTT to {mqtt.host} is plain text (mqtt.tls.enabled: false): events and config "
                       "messages can be read and changed on the network; turn on mqtt.tls")
        elif mqtt.tls.enabled and mqtt.tls.insecure:
            out.append("mqtt.tls.insecure: true: the broker's certificate name is not checked, which allows "
                       "a man in the middle; use it for tests only")
        if not (mqtt.username or env.get(ENV_USERNAME)) and not (mqtt.tls.enabled and mqtt.tls.cert_file):
            out.append(f"MQTT without credentials (no mqtt.username, {ENV_USERNAME} or client certificate): "
                       "the broker must allow anonymous clients, so anyone who reaches it can read events "
                       "and publish to this device")
    if rc.enabled and mqtt.enabled and mqtt.host:
        if not rc.require_signature:
            out.append("remote config accepts unsigned messages (service.remote_config.require_signature: "
                       "false): anyone who can publish on config/set can change this device (changes that "
                       "send images off the device are refused unsigned); set a secret and require signatures")
        if mqtt.protocol != "5":
            out.append(f"MQTT {mqtt.protocol} cannot tell the broker the largest message this device accepts: "
                       "a huge config/set message is received whole before it is refused; use mqtt.protocol: "
                       "'5' or set message_size_limit on the broker")
    if cfg.preview.mjpeg.enabled and not is_loopback(cfg.preview.mjpeg.host):
        out.append(f"the MJPEG preview listens on {cfg.preview.mjpeg.host}: anyone on the network can watch "
                   "the camera with the faces in it")
    if cfg.events.snapshots.enabled and mqtt.enabled and mqtt.host:
        out.append("events.snapshots.enabled: face crops are sent to the broker with events")
    return out


def image_keys_turned_on(old: "AppConfig", new: "AppConfig") -> list[str]:
    """The keys whose change from ``old`` to ``new`` sends images off the device (empty: none)."""
    keys: list[str] = []
    if new.events.snapshots.enabled and not old.events.snapshots.enabled:
        keys.append("events.snapshots.enabled")
    new_mjpeg, old_mjpeg = new.preview.mjpeg, old.preview.mjpeg
    if new_mjpeg.enabled and not is_loopback(new_mjpeg.host) and \
            not (old_mjpeg.enabled and not is_loopback(old_mjpeg.host)):
        keys.append("preview.mjpeg.host" if old_mjpeg.enabled or new_mjpeg.host != old_mjpeg.host
                    else "preview.mjpeg.enabled")
    if new.events.snapshots.enabled and old.events.snapshots.enabled:
        # face crops already flow: a new broker or topic is a new destination for them
        moved = [f"mqtt.{k}" for k in ("host", "port", "prefix") if getattr(new.mqtt, k) != getattr(old.mqtt, k)]
        keys += moved
    return keys


#: What decides who may change the device or what leaves it: never changed by an unsigned message.
PROTECTED_KEYS = ("service.remote_config", "mqtt.enabled", "mqtt.host", "mqtt.port", "mqtt.prefix", "mqtt.client_id",
                  "mqtt.username", "mqtt.password", "mqtt.tls", "device.id", "device.groups", "events.snapshots",
                  "preview.mjpeg.enabled", "preview.mjpeg.host", "model")


def protected_keys_changed(old: "AppConfig", new: "AppConfig") -> list[str]:
    """The keys under :data:`PROTECTED_KEYS` whose value differs between ``old`` and ``new``, most precise first."""
    changed: list[str] = []
    for key in PROTECTED_KEYS:
        a, b = old, new
        for part in key.split("."):
            a, b = getattr(a, part), getattr(b, part)
        changed += _leaves_changed(key, _plain(a), _plain(b))
    return changed


def _plain(value: object) -> object:
    return value.model_dump() if hasattr(value, "model_dump") else value


def _leaves_changed(key: str, a: object, b: object) -> list[str]:
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for name in sorted(set(a) | set(b), key=str)
                for k in _leaves_changed(f"{key}.{name}", a.get(name), b.get(name))]
    return [key]


def max_packet_bytes(max_payload_bytes: int) -> int:
    """The MQTT 5 Maximum Packet Size to announce for config messages of at most ``max_payload_bytes``."""
    return max_payload_bytes + PACKET_OVERHEAD
