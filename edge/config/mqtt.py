"""Section `mqtt`: the broker, the topics and the delivery guarantees (edge/publish/)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from edge.config.base import StrictModel


ENV_USERNAME = "FER_EDGE_MQTT_USERNAME"


ENV_PASSWORD = "FER_EDGE_MQTT_PASSWORD"


class TlsConfig(StrictModel):
    """Section `mqtt.tls`: encrypt the connection and, optionally, authenticate with a client certificate."""

    enabled: bool = Field(False, description="Connect with TLS (port 8883 unless mqtt.port says otherwise).")
    ca_file: str | None = Field(None, description="PEM file of the certificate authority that signed the broker's "
                                                  "certificate; empty: the system's trusted CAs.")
    cert_file: str | None = Field(None, description="PEM client certificate, for brokers that require one.")
    key_file: str | None = Field(None, description="PEM private key of the client certificate.")
    insecure: bool = Field(False, description="Skip the check that the broker's certificate names mqtt.host. "
                                              "Only for testing; it allows a man in the middle.")


class MqttConfig(StrictModel):
    """Section `mqtt`: the broker, the topics and the delivery guarantees."""

    enabled: bool = Field(True, description="Publish over MQTT. With false, or an empty host, events are written "
                                            "to stdout as JSON lines instead.")
    host: str = Field("", description="Broker host name or address; empty: no MQTT (stdout JSON lines).")
    port: int | None = Field(None, ge=1, le=65535, description="Broker port; empty: 1883, or 8883 with TLS.")
    prefix: str = Field("fer-edge", description="First level of every topic: <prefix>/<device>/events, ...")
    client_id: str = Field("", description="MQTT client id; empty: fer-edge-<device>. Must be unique per broker: "
                                           "a second client with the same id disconnects the first.")
    username: str | None = Field(None, description=f"User name; empty: the {ENV_USERNAME} environment variable.")
    password: SecretStr | None = Field(None, description=f"Password; empty: the {ENV_PASSWORD} environment variable "
                                                         "(better than writing it into this file).")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of events. 1 (default): at least once. 2: exactly once per "
                                                 "connection. 0: no acknowledgement, events can be lost.")
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="Keep-alive; the broker declares the device offline "
                                                            "(last will) after about 1.5 times this without traffic.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")
    reconnect_min_s: float = Field(1.0, gt=0, description="First wait before reconnecting; doubles per failure.")
    reconnect_max_s: float = Field(60.0, gt=0, description="Longest wait between reconnection attempts.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Events sent but not yet acknowledged. Order is kept "
                                                             "at any value; 1 trades throughput for the least "
                                                             "re-sending after a lost connection. With QoS 2 keep it "
                                                             "at most the broker's limit (mosquitto: "
                                                             "max_inflight_messages, 20).")
    max_packet_bytes: int = Field(65536 + 4096, ge=1024, le=1 << 28,
                                  description="MQTT 5: the largest packet the broker may send this device (its "
                                              "config messages); the broker drops larger ones instead of "
                                              "sending them. Keep it above service.remote_config.max_payload_bytes "
                                              "plus 4 KiB. MQTT 3.1.1 cannot announce it.")
    log_interval_s: float = Field(60.0, ge=0.1, description="At most one log line per this many seconds about an "
                                                            "unreachable or refusing broker.")

    @field_validator("prefix")
    @classmethod
    def _topic_level(cls, v: str) -> str:
        if not v or any(c in v for c in "+#\0") or v.startswith("/") or v.endswith("/"):
            raise ValueError("must be a topic prefix without '+', '#', or a leading/trailing '/', e.g. 'fer-edge'")
        return v
