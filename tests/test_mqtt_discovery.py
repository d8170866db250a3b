"""Home Assistant discovery: retained configs for dominant emotion, faces in view and availability, whose
templates read the device's real state and status messages."""
from __future__ import annotations

import json

import pytest

from conftest_mqtt import broker, needs_mosquitto, open_sink, wait_until  # noqa: F401

from edge.events import Event
from edge.config.homeassistant import HomeAssistantConfig

pytestmark = needs_mosquitto


def render(template: str, payload: bytes) -> str:
    """Render a Home Assistant value template the way HA does (Jinja2 with value_json)."""
    jinja2 = pytest.importorskip("jinja2", reason="jinja2 renders HA templates in this test")
    env = jinja2.Environment()
    env.filters["tojson"] = lambda v: json.dumps(v)
    return env.from_string(template).render(value_json=json.loads(payload), value=payload.decode())


def test_discovery_configs_are_retained_and_their_templates_read_real_messages(broker, tmp_path):
    sub = broker.subscribe_collect("#")
    sink = open_sink(broker, tmp_path / "q.db", cameras=["door"],
                     homeassistant=HomeAssistantConfig(enabled=True, device_name="Hall"))
    sink.publish(Event("face_appeared", "door", track_id=1, label="happiness", score=0.9))
    sink.publish(Event("face_appeared", "yard", track_id=1, label="neutral", score=0.9))   # a camera seen later
    assert sub.wait_for(lambda m: len([x for x in m if x.topic.startswith("homeassistant/")]) >= 5, 5)
    late = broker.subscribe_collect("homeassistant/#", persistent=False)      # Home Assistant starting later
    assert late.wait_for(5, 5)
    configs = {m.topic: m for m in late.messages}
    assert set(configs) == {"homeassistant/binary_sensor/dev1/online/config",
                            "homeassistant/sensor/dev1/door_emotion/config", "homeassistant/sensor/dev1/door_faces/config",
                            "homeassistant/sensor/dev1/yard_emotion/config", "homeassistant/sensor/dev1/yard_faces/config"}
    assert all(m.retain for m in configs.values())
    cfgs = {t: m.json() for t, m in configs.items()}
    assert len({c["unique_id"] for c in cfgs.values()}) == 5
    assert all(c["device"]["name"] == "Hall" and c["device"]["identifiers"] == ["fer-edge-dev1"] for c in cfgs.values())

    def latest(topic: str) -> bytes:
        return [m for m in sub.messages if m.topic == topic][-1].payload

    emotion, faces = cfgs["homeassistant/sensor/dev1/door_emotion/config"], cfgs["homeassistant/sensor/dev1/door_faces/config"]
    state = latest(emotion["state_topic"])
    assert render(emotion["value_template"], state) == "happiness"
    assert render(faces["value_template"], state) == "1"
    assert json.loads(render(emotion["json_attributes_template"], state)) == {"happiness": 1.0}
    online = cfgs["homeassistant/binary_sensor/dev1/online/config"]
    status = latest(online["state_topic"])
    assert render(online["value_template"], status) == "ON"
    assert render(emotion["availability"][0]["value_template"], status) == "online"

    sink.close()
    assert sub.wait_for(lambda m: m[-1].topic == online["state_topic"] and b"stopped" in m[-1].payload, 5)
    stopped = latest(online["state_topic"])
    assert render(online["value_template"], stopped) == "OFF"
    assert render(emotion["availability"][0]["value_template"], stopped) == "offline"


def test_no_discovery_unless_enabled(broker, tmp_path):
    sink = open_sink(broker, tmp_path / "q.db", cameras=["door"])
    assert wait_until(lambda: sink.connected)
    sink.close()
    sub = broker.subscribe_collect("homeassistant/#", persistent=False)
    assert not sub.wait_for(1, 0.5)
