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
    per_camera = ("emotion", "faces", "people", "fps", "lag")
    expected = {"homeassistant/binary_sensor/dev1/online/config", "homeassistant/sensor/dev1/queue_depth/config"}
    for cam in ("door", "yard"):
        expected |= {f"homeassistant/sensor/dev1/{cam}_{kind}/config" for kind in per_camera}
        expected.add(f"homeassistant/event/dev1/{cam}_faces/config")
    assert sub.wait_for(lambda m: len({x.topic for x in m if x.topic.startswith("homeassistant/")}) >= len(expected), 5)
    late = broker.subscribe_collect("homeassistant/#", persistent=False)      # Home Assistant starting later
    assert late.wait_for(len(expected), 5)
    configs = {m.topic: m for m in late.messages}
    assert set(configs) == expected          # no model card given to this sink: no per-emotion sensors
    assert all(m.retain for m in configs.values())
    cfgs = {t: m.json() for t, m in configs.items()}
    assert len({c["unique_id"] for c in cfgs.values()}) == len(expected)
    assert all(c["device"]["name"] == "Hall" and c["device"]["identifiers"] == ["fer-edge-dev1"] for c in cfgs.values())

    def latest(topic: str) -> bytes:
        return [m for m in sub.messages if m.topic == topic][-1].payload

    emotion, faces = cfgs["homeassistant/sensor/dev1/door_emotion/config"], cfgs["homeassistant/sensor/dev1/door_faces/config"]
    # the face's state follows the empty one within the state's minimum interval (a bounded rate)
    assert sub.wait_for(lambda m: any(x.topic == emotion["state_topic"] and x.json()["faces"] == 1 for x in m), 5)
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


@pytest.mark.slow
def test_a_real_demo_run_announces_statistics_sensors_an_event_entity_and_its_name_and_area(broker, tmp_path):
    """`fer-edge run --demo` with discovery on: per camera a measurement sensor for every emotion of the model,
    people seen, an event entity, diagnostics; the device named by device.name in device.location's area; every
    template rendered against the real messages the run published."""
    import subprocess
    import sys

    import yaml

    from conftest import REPO
    from edge.classify import ModelCard
    from edge.config.model import SHIPPED_MODEL

    emotions = ModelCard.load(SHIPPED_MODEL.with_suffix(".json")).classes
    sub = broker.subscribe_collect("#")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "device": {"id": "ha-demo", "name": "Shop window", "location": "Front of house"},
        "homeassistant": {"enabled": True}, "events": {"summary_interval_s": 2},
        "mqtt": broker.mqtt_config(), "queue": {"path": str(tmp_path / "q.db")}, "stats": {"interval_s": 1.0},
        "preview": {"window": False}}))
    env = {k: v for k, v in __import__("os").environ.items()}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--demo", "--config", str(config)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    disc = {m.topic: m.json() for m in sub.messages if m.topic.startswith("homeassistant/") and m.payload}
    cams = {t.split("/")[3].rsplit("_", 1)[0] for t in disc if t.endswith("_faces/config") and "/sensor/" in t}
    assert cams, sorted(disc)
    for cam in cams:
        for label in emotions:
            sensor = disc[f"homeassistant/sensor/ha-demo/{cam}_{label}/config"]
            assert sensor["state_class"] == "measurement" and sensor["unit_of_measurement"] == "%"
        event = disc[f"homeassistant/event/ha-demo/{cam}_faces/config"]
        assert event["event_types"] == ["face_appeared", "emotion_changed"]
        assert disc[f"homeassistant/sensor/ha-demo/{cam}_emotion/config"]["options"] == [*emotions, "unknown", "none"]
        for kind in ("people", "fps", "lag"):
            assert f"homeassistant/sensor/ha-demo/{cam}_{kind}/config" in disc
    assert all(c["device"]["name"] == "Shop window" and c["device"]["suggested_area"] == "Front of house"
               for c in disc.values())

    # every template against the real payloads of its topic (the last one that gives a value, as HA keeps it)
    def payloads(topic: str) -> list[bytes]:
        return [m.payload for m in sub.messages if m.topic == topic and m.payload]

    shares, fired, rendered = {}, [], 0
    for topic, cfg in disc.items():
        if "/event/" in topic:
            for payload in payloads(cfg["state_topic"]):
                out = render(cfg["value_template"], payload)
                if out.strip():
                    fired.append(json.loads(out))
            continue
        values = [render(cfg["value_template"], p) for p in payloads(cfg["state_topic"])]
        assert values, f"{topic}: nothing published on {cfg['state_topic']}"
        rendered += len(values)
        last = [v for v in values if v != "None"]
        if cfg.get("unit_of_measurement") == "%":
            shares[topic.split("/")[3]] = float(last[-1]) if last else None
        elif cfg.get("state_class") == "measurement" or cfg.get("device_class") == "connectivity":
            assert last, f"{topic}: no value rendered"
            if cfg.get("state_class") == "measurement":
                float(last[-1])                         # numeric, as a statistics sensor must be
        elif cfg.get("options"):
            assert all(v in cfg["options"] for v in values), (topic, set(values))
    assert fired and {e["event_type"] for e in fired} <= {"face_appeared", "emotion_changed"}
    assert any(e["event_type"] == "face_appeared" for e in fired) and all(e["label"] is None or e["label"] in emotions
                                                                          or e["label"] == "unknown" for e in fired)
    for cam in cams:                                  # the shares of the last summary with faces add up to 100 %
        got = [shares[f"{cam}_{label}"] for label in emotions]
        if all(v is not None for v in got):
            assert sum(got) == pytest.approx(100.0, abs=0.5)
    assert any(v for v in shares.values()), shares
    print(f"\n{len(disc)} discovery configs, {rendered} sensor values rendered, {len(fired)} events fired; shares {shares}")


def test_a_retired_camera_is_emptied_on_every_connection_until_it_comes_back():
    from edge.publish.state import RetainedState
    from edge.publish.topics import Topics

    state = RetainedState("dev1", Topics("fer-edge", "dev1"), HomeAssistantConfig(enabled=True), ["hall", "desk"],
                          min_interval_s=0.0)
    assert {t for t, _ in state.due() if "desk" in t}           # announced at first
    state.set_cameras(["hall"], ["desk"])
    emptied = {t for t, p in state.due() if p == ""}
    assert "fer-edge/dev1/state/desk" in emptied and "homeassistant/sensor/dev1/desk_emotion/config" in emptied
    assert not any("hall" in t for t in emptied)
    assert not state.due()                                       # once per connection
    state.connected()
    assert {t for t, p in state.due() if p == ""} == emptied      # again after a reconnection
    state.set_cameras(["hall", "desk"], [])                      # back: announced, no longer emptied
    again = state.due()
    assert not any(p == "" for _, p in again) and "fer-edge/dev1/state/desk" in {t for t, _ in again}
