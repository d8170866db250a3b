"""The configured paho-mqtt client: id, protocol, TLS, credentials, last will, reconnect backoff."""
from __future__ import annotations

import os
import ssl
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config.mqtt import ENV_PASSWORD, ENV_USERNAME, MqttConfig
from edge.publish.payloads import status_payload
from edge.publish.topics import Topics


WILL_QOS = 1


def check_tls_files(cfg: MqttConfig) -> None:
    """Raise ValueError naming the setting when a TLS file that ``cfg`` names does not exist.

    build_sink calls it before it opens (and locks) the queue file, so a bad file costs nothing to undo.
    """
    if cfg.tls.enabled:
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(cfg.tls, key)
            if path and not os.path.isfile(path):
                raise ValueError(f"mqtt.tls.{key}: {path} not found")


def default_client_id(cfg: MqttConfig, device: str) -> str:
    """The client id a device connects with: ``mqtt.client_id``, else ``fer-edge-<device>``."""
    return cfg.client_id or f"fer-edge-{device}"


def make_client(cfg: MqttConfig, device: str, topics: Topics, instance: str | None = None,
                client_id: str | None = None) -> paho.Client:
    """A configured paho client: id, protocol, TLS, credentials, last will, backoff. Not yet connected.

    ``client_id`` replaces :func:`default_client_id` (paho has no public way to change the id of a
    client once made: a new id means a new client).

    Raises ValueError naming the setting when a TLS file cannot be used.
    """
    v5 = cfg.protocol == "5"
    kwargs: dict[str, Any] = {"protocol": paho.MQTTv5 if v5 else paho.MQTTv311}
    if not v5:
        kwargs["clean_session"] = True      # the queue, not the broker session, is what makes delivery durable
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or default_client_id(cfg, device),
                         **kwargs)
    if cfg.tls.enabled:
        check_tls_files(cfg)
        try:
            client.tls_set(ca_certs=cfg.tls.ca_file or None, certfile=cfg.tls.cert_file or None,
                           keyfile=cfg.tls.key_file or None, cert_reqs=ssl.CERT_REQUIRED)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"mqtt.tls: cannot use the certificate files ({exc}); check ca_file, cert_file "
                             f"and key_file are PEM and the key matches the certificate") from None
        client.tls_insecure_set(cfg.tls.insecure)
    username = cfg.username or os.environ.get(ENV_USERNAME)
    password = cfg.password.get_secret_value() if cfg.password else os.environ.get(ENV_PASSWORD)
    if username:
        client.username_pw_set(username, password)
    client.will_set(topics.status, status_payload("offline", device, instance), qos=WILL_QOS, retain=True)
    client.reconnect_delay_set(cfg.reconnect_min_s, max(cfg.reconnect_min_s, cfg.reconnect_max_s))
    client.max_inflight_messages_set(0)     # unlimited in paho: the sender thread bounds what is in flight
    return client



def connect_properties(cfg: MqttConfig) -> Properties | None:
    """MQTT 5 CONNECT properties: the Maximum Packet Size, so the broker drops a too-large config message
    instead of sending it (paho would read it whole); None for 3.1.1, which has no such field."""
    if cfg.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)
    props.MaximumPacketSize = cfg.max_packet_bytes
    return props
