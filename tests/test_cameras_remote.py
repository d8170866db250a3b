"""Remote config adds, changes and removes a camera, on probation; a camera that never delivers is rolled back.

A real mosquitto and `fer-edge run` as a process with `cameras:`; messages on config/set (a JSON Merge
Patch: the `cameras` list is replaced as a whole), outcomes on the retained config/state, each
camera's figures in the stats message (`cameras.<id>`).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import require_shared  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402
from tests.helpers.broker import Broker, free_port, mosquitto_available  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed: apt install mosquitto")]
DEVICE = "cams1"
STATE = f"fer-edge/{DEVICE}/config/state"
STATS = f"fer-edge/{DEVICE}/stats"


def cameras_doc(*cams: dict) -> str:
    """A config/set body that replaces the camera list (JSON is YAML)."""
    return f"cameras: {json.dumps(list(cams))}\n"


def camera(name: str, uri: str, **extra) -> dict:
    return {"name": name, "uri": uri, "loop": True, "pace": True, **extra}


def test_remote_config_adds_changes_and_removes_cameras_on_probation(tmp_path: Path) -> None:
    video = str(require_shared("video", "single_face.mp4"))
    broker = Broker().start()
    path = write_config(tmp_path / "config.yaml", {
        "device": {"id": DEVICE},
        "cameras": [camera("door", video)],
        "detector": {"type": "haar"},
        "mqtt": broker.mqtt_config(),
        "queue": {"path": str(tmp_path / "queue.db")},
        "service": {"remote_config": {"enabled": True, "probation_s": 6}},
        "stats": {"interval_s": 1.0},
    })
    service = ServiceProcess(path, env={"STATE_DIRECTORY": str(tmp_path / "state")})
    states = stats = pub = None
    try:
        service.wait_ready()
        states = broker.subscribe_collect(STATE)
        stats = broker.subscribe_collect(STATS)
        pub = broker.client()
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        assert states.wait_for(1, timeout=30), "no retained config/state after start"

        def send(body: str) -> list[dict]:
            """Publish on config/set; the config/state answers up to the final one (past 'probation')."""
            before = len(states.on(STATE))
            pub.publish(f"fer-edge/{DEVICE}/config/set", body.encode(), qos=1).wait_for_publish(5)
            final = lambda m: any(x.json().get("status") != "probation" for x in m[before:])  # noqa: E731
            assert states.wait_for(final, 40), "no config/state answer:\n" + service.stderr()[-3000:]
            return states.json(STATE)[before:]

        def cameras_in_stats() -> dict:
            """Each camera's figures in a stats message published after now."""
            seen = len(stats.on(STATS))
            assert stats.wait_for(lambda m: len(m) > seen + 1, 15), "no stats"
            return stats.json(STATS)[-1].get("cameras", {})

        door = camera("door", video)
        # add a camera: on probation until both cameras have delivered a frame, then applied and saved
        answers = send(cameras_doc(door, camera('desk', 'demo')))
        assert [a["status"] for a in answers] == ["probation", "applied"], answers
        cams = cameras_in_stats()
        assert set(cams) == {"door", "desk"} and all(c["frames"] > 0 for c in cams.values()), cams
        assert cams["desk"]["source"]["state"] == "open"

        # change a camera (its schedule) and add one that never delivers: rolled back, both cameras run on
        bad = camera("gate", f"rtsp://127.0.0.1:{free_port()}/none", kind="stream", reopen_delay_s=0.2)
        desk_slow = camera("desk", "demo", schedule={"classify_hz": 1.0})
        answers = send(cameras_doc(door, desk_slow, bad))
        final = answers[-1]
        assert final["status"] == "rolled_back" and "no frame arrived" in final["error"], final
        assert "camera gate:" in final["error"], final["error"]
        cams = cameras_in_stats()
        assert set(cams) == {"door", "desk"} and all(c["frames"] > 0 for c in cams.values()), cams

        # change a camera alone: applied (after its frames)
        answers = send(cameras_doc(door, desk_slow))
        assert answers[-1]["status"] == "applied", answers

        # remove a camera
        answers = send(cameras_doc(door))
        assert answers[-1]["status"] == "applied", answers
        cams = cameras_in_stats()
        assert set(cams) == {"door"} and cams["door"]["frames"] > 0, cams
        assert service.alive(), service.stderr()[-3000:]
    finally:
        if pub is not None:
            pub.loop_stop()
            pub.disconnect()
        service.close()
        broker.close()


def lobby_and_kiosk(tmp_path: Path, device: str, **sections) -> tuple[Broker, ServiceProcess]:
    """A broker and `fer-edge run` with Home Assistant on and two cameras: `lobby` (the demo), `kiosk` (the clip)."""
    video = str(require_shared("video", "single_face.mp4"))
    broker = Broker().start()
    path = write_config(tmp_path / "config.yaml", {
        "device": {"id": device},
        "cameras": [camera("lobby", "demo"), camera("kiosk", video)],
        "detector": {"type": "haar"},
        "mqtt": broker.mqtt_config(),
        "queue": {"path": str(tmp_path / "queue.db")},
        "homeassistant": {"enabled": True},
        "stats": {"interval_s": 1.0},
        **sections,
    })
    return broker, ServiceProcess(path, env={"STATE_DIRECTORY": str(tmp_path / "state")})


def test_home_assistant_and_retained_state_show_every_camera(tmp_path: Path) -> None:
    """Discovery sensors (emotion, faces in view) and the retained state/<camera> of each camera of the device."""
    device = "cams2"
    broker, service = lobby_and_kiosk(tmp_path, device)
    try:
        service.wait_ready()
        discovery = broker.subscribe_collect("homeassistant/sensor/#")
        states = broker.subscribe_collect(f"fer-edge/{device}/state/+")
        want = {f"homeassistant/sensor/{device.replace('-', '_')}/{cam}_{what}/config"
                for cam in ("lobby", "kiosk") for what in ("emotion", "faces")}
        assert discovery.wait_for(lambda m: want <= {x.topic for x in m}, 20), [x.topic for x in discovery.messages]
        assert states.wait_for(lambda m: {x.topic.rsplit("/", 1)[1] for x in m} >= {"lobby", "kiosk"}, 20)
        # the faces of both cameras reach their own state topic
        assert states.wait_for(lambda m: {x.topic.rsplit("/", 1)[1] for x in m if x.json().get("faces")}
                               >= {"lobby", "kiosk"}, 40), [x.json() for x in states.messages][-4:]
    finally:
        service.close()
        broker.close()


def test_a_removed_camera_leaves_no_retained_state_or_home_assistant_entities(tmp_path: Path) -> None:
    """Removing a camera over remote config empties its retained state and discovery configs (HA removes it)."""
    device = "cams3"
    broker, service = lobby_and_kiosk(tmp_path, device,
                                      service={"remote_config": {"enabled": True, "probation_s": 4}})
    pub = None

    def retained_topics() -> set[str]:
        """What a new subscriber is handed: the retained topics of the camera topics and discovery."""
        late = broker.subscribe_collect("#", persistent=False)
        late.wait_for(lambda m: False, 2.0)      # the broker hands retained messages over at once
        return {m.topic for m in late.messages if m.retain and m.payload and
                (m.topic.startswith("homeassistant/") or "/state/" in m.topic)}

    try:
        service.wait_ready()
        states = broker.subscribe_collect(f"fer-edge/{device}/config/state")
        discovery = broker.subscribe_collect("homeassistant/#")
        assert discovery.wait_for(lambda m: any("kiosk_emotion" in x.topic for x in m), 20)
        assert states.wait_for(1, 30), "no retained config/state after start"
        before = retained_topics()
        assert any("kiosk" in t for t in before) and any("lobby" in t for t in before), before

        pub = broker.client()
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        seen = len(states.messages)
        pub.publish(f"fer-edge/{device}/config/set", cameras_doc(camera("lobby", "demo")).encode(),
                    qos=1).wait_for_publish(5)
        assert states.wait_for(lambda m: any(x.json().get("status") == "applied" for x in m[seen:]), 40), \
            states.json()[seen:]
        after = retained_topics()
        assert not any("kiosk" in t for t in after), sorted(t for t in after if "kiosk" in t)
        assert {t for t in before if "lobby" in t} <= after       # the camera that stays keeps its entities
        assert service.alive(), service.stderr()[-3000:]
        assert "cameras retired (kiosk)" in service.stderr()
    finally:
        if pub is not None:
            pub.loop_stop()
            pub.disconnect()
        service.close()
        broker.close()
