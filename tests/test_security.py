"""Security defaults (edge/security.py) and the probation verdict (edge/control/probation.py), without a service.

The service-level checks (over a real broker) are in tests/test_remote_hardening.py.
"""
from __future__ import annotations

import pytest

from edge.config import load_text
from edge.control.probation import PASSED, WAITING, Needs, Probation, failure_text, needs_for
from edge.security import image_keys_turned_on, is_loopback, max_packet_bytes, security_warnings


def cfg(text: str = ""):
    return load_text(text, env={}).config


REMOTE = "service: {remote_config: {enabled: true}}\n"


def test_a_plain_anonymous_unsigned_remote_device_gets_a_warning_for_each():
    warnings = security_warnings(cfg("mqtt: {host: broker.lan}\n" + REMOTE), env={})
    text = "\n".join(warnings)
    assert "MQTT to broker.lan is plain text" in text
    assert "MQTT without credentials" in text
    assert "remote config accepts unsigned messages" in text
    assert "MQTT 3.1.1 cannot tell the broker the largest message" in text
    assert len(warnings) == 4


def test_tls_credentials_signatures_and_mqtt5_silence_the_warnings():
    text = ("mqtt: {host: broker.lan, protocol: '5', username: edge, tls: {enabled: true}}\n"
            "service: {remote_config: {enabled: true, require_signature: true}}\n")
    assert security_warnings(cfg(text), env={}) == []
    # a local broker is not "plain text on the network"; credentials may come from the environment
    local = cfg("mqtt: {host: 127.0.0.1}\n")
    assert security_warnings(local, env={"FER_EDGE_MQTT_USERNAME": "edge"}) == []


def test_images_leaving_the_device_are_warned_about():
    text = "\n".join(security_warnings(cfg("preview: {mjpeg: {enabled: true, host: 0.0.0.0}}\n"
                                           "events: {snapshots: {enabled: true}}\nmqtt: {host: 127.0.0.1}\n"),
                                       env={"FER_EDGE_MQTT_USERNAME": "u"}))
    assert "MJPEG preview listens on 0.0.0.0" in text and "face crops are sent" in text


@pytest.mark.parametrize("old,new,keys", [
    ("", "events: {snapshots: {enabled: true}}", ["events.snapshots.enabled"]),
    ("", "preview: {mjpeg: {enabled: true, host: 0.0.0.0}}", ["preview.mjpeg.host"]),
    ("preview: {mjpeg: {host: 0.0.0.0}}", "preview: {mjpeg: {enabled: true, host: 0.0.0.0}}",
     ["preview.mjpeg.enabled"]),
    ("preview: {mjpeg: {enabled: true}}", "preview: {mjpeg: {enabled: true, host: 10.0.0.5}}",
     ["preview.mjpeg.host"]),
    ("events: {snapshots: {enabled: true}}\nmqtt: {host: a}", "events: {snapshots: {enabled: true}}\nmqtt: {host: b}",
     ["mqtt.host"]),
    # nothing new leaves the device:
    ("", "preview: {mjpeg: {enabled: true}}", []),                       # loopback only
    ("events: {snapshots: {enabled: true}}", "", []),                    # turning off
    ("", "mqtt: {host: b}\nschedule: {detect_every: 2}", []),
])
def test_image_keys_turned_on(old, new, keys):
    assert image_keys_turned_on(cfg(old), cfg(new)) == keys


def test_loopback_and_packet_size():
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("broker.lan") and not is_loopback("192.168.1.2")
    assert 65536 < max_packet_bytes(65536) < 5 * 1024 * 1024


def test_probation_needs_and_verdict():
    assert not needs_for({"tracking", "schedule"})
    assert needs_for({"mqtt"}) == Needs(broker=True) and needs_for({"source"}) == Needs(frames=True)
    p = Probation(needs_for({"mqtt", "source"}), started=100.0, timeout_s=10, frames_at_start=50,
                  previous=None, version="ab" * 32)
    assert p.verdict(101.0, connected=False, frames=50) == WAITING
    assert p.verdict(101.0, connected=True, frames=51) == PASSED
    reason = p.verdict(111.0, connected=False, frames=50)
    assert reason == "the broker was not connected; no frame arrived from the source"
    line = failure_text(p, reason, "cannot reach broker 127.0.0.1:1 (ConnectionRefusedError)", None)
    assert line.startswith("rolled back: version abababababab did not prove itself within 10 s")
    assert "ConnectionRefusedError" in line and "\n" not in line
