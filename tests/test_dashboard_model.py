"""The dashboard's fleet model: bounded memory whatever arrives, de-duplication by event id, bad input counted."""
from __future__ import annotations

import json
import uuid


from edge.ops.dashboard.model import BoundedSet, Fleet, Limits  # noqa: E402

NOW = 1_764_583_200.0


def event(kind: str = "face_appeared", seq: int = 1, epoch: float = NOW, event_id: str | None = None,
          camera: str = "cam0", **extra) -> bytes:
    body = {"v": 1, "id": event_id or str(uuid.uuid4()), "seq": seq, "device": "d1", "camera": camera, "type": kind,
            "ts": "2025-12-01T10:00:00.000Z", "epoch": epoch, "track_id": None if kind == "summary" else 1,
            "label": None if kind == "summary" else "happiness", "score": 0.8, "scores": None,
            "box": None if kind == "summary" else [1, 2, 3, 4], **extra}
    if kind == "summary":
        body.setdefault("summary", {"interval_s": 60, "start": "2025-12-01T09:59:00.000Z", "counts": {"happiness": 1},
                                    "faces": 1, "seconds": {"happiness": 12.5}})
    return json.dumps(body).encode()


def status(state: str, epoch: float = NOW) -> bytes:
    return json.dumps({"v": 1, "state": state, "device": "d1", "version": "0.1.0", "ts": "x", "epoch": epoch}).encode()


def test_an_event_delivered_twice_is_shown_once():
    fleet = Fleet("fer-edge")
    payload = event(event_id="same-id")
    first = fleet.ingest("fer-edge/d1/events", payload, now=NOW)
    again = fleet.ingest("fer-edge/d1/events", payload, now=NOW + 1)
    assert first is not None and first["t"] == "event" and first["data"]["id"] == "same-id"
    assert again is None and fleet.duplicates == 1
    assert [e["id"] for e in fleet.devices["d1"].events] == ["same-id"]


def test_the_dedup_memory_is_bounded_and_covers_its_window():
    ids = BoundedSet(3)
    assert all(ids.add(x) for x in "abcd") and len(ids) == 3
    assert not ids.add("d") and not ids.add("b")
    assert ids.add("a")            # forgotten beyond the window: accepted again (documented)


def test_a_day_of_events_keeps_memory_bounded():
    limits = Limits(events_per_device=30, seen_ids=500, summaries_per_camera=100, summary_window_s=3600)
    fleet = Fleet("fer-edge", limits)
    for k in range(20_000):        # ~ a day of a busy camera; a summary every 20th event, 3 s apart
        kind = "summary" if k % 20 == 0 else "face_appeared"
        fleet.ingest("fer-edge/d1/events", event(kind, seq=k + 1, epoch=NOW + 3 * k), now=NOW + 3 * k)
    dev = fleet.devices["d1"]
    assert len(dev.events) == 30 and len(dev.seen) == 500
    summaries = dev.cameras["cam0"].summaries
    assert 0 < len(summaries) <= 100
    assert summaries[-1]["epoch"] - summaries[0]["epoch"] <= 3600      # only the last hour
    assert dev.gaps == 0 and dev.last_seq == 20_000
    assert len(json.dumps(fleet.snapshot(now=NOW + 60_000))) < 200_000


def test_cameras_and_devices_are_capped_and_the_silent_offline_ones_go_first():
    fleet = Fleet("fer-edge", Limits(max_devices=10, max_cameras=2))
    for i in range(5):
        fleet.ingest(f"fer-edge/on{i}/status", status("online"), now=NOW + i)
    for i in range(100):
        fleet.ingest(f"fer-edge/gone{i}/status", status("offline"), now=NOW + 10 + i)
    assert len(fleet.devices) == 10
    assert {f"on{i}" for i in range(5)} <= set(fleet.devices)      # online devices are kept
    assert "gone0" not in fleet.devices and "gone99" in fleet.devices
    state = json.dumps({"v": 1, "faces": 0, "dominant": None, "counts": {}, "mix": {}}).encode()
    for cam in ("a", "b", "c"):
        fleet.ingest(f"fer-edge/on0/state/{cam}", state, now=NOW)
    assert sorted(fleet.devices["on0"].cameras) == ["a", "b"] and fleet.rejected["cameras"] == 1


def test_seq_gaps_are_counted():
    fleet = Fleet("fer-edge")
    for seq in (1, 2, 5, 6, 9):
        change = fleet.ingest("fer-edge/d1/events", event(seq=seq), now=NOW)
    assert change["gaps"] == 4 and fleet.devices["d1"].gaps == 4


def test_the_page_gets_no_face_image_nor_box():
    fleet = Fleet("fer-edge")
    change = fleet.ingest("fer-edge/d1/events", event(snapshot={"format": "jpeg", "data": "AAAA"}), now=NOW)
    assert "snapshot" not in change["data"] and "box" not in change["data"]


def test_availability_since_when():
    fleet = Fleet("fer-edge")
    fleet.ingest("fer-edge/d1/status", status("online", epoch=NOW - 100), now=NOW)
    assert fleet.devices["d1"].since == NOW - 100
    # a live last will: its epoch is when the lost connection was opened, so the time is now
    change = fleet.ingest("fer-edge/d1/status", status("offline", epoch=NOW - 100), retained=False, now=NOW + 5)
    assert change["since"] == NOW + 5
    fleet.ingest("fer-edge/d1/status", status("stopped", epoch=NOW + 7), now=NOW + 8)
    assert fleet.devices["d1"].since == NOW + 7
    # a retained will found at start-up: since the last stats the device sent
    other = Fleet("fer-edge")
    other.ingest("fer-edge/d2/stats", json.dumps({"v": 1, "epoch": NOW - 30}).encode(), retained=True, now=NOW)
    change = other.ingest("fer-edge/d2/status", status("offline", epoch=NOW - 900), retained=True, now=NOW)
    assert change["since"] == NOW - 30


def test_clearing_a_retained_status_removes_the_device():
    fleet = Fleet("fer-edge")
    fleet.ingest("fer-edge/d1/status", status("stopped"), now=NOW)
    assert fleet.ingest("fer-edge/d1/status", b"", retained=True, now=NOW) == {"t": "removed", "device": "d1"}
    assert fleet.devices == {}


def test_bad_messages_are_counted_and_said_in_one_line_never_raised():
    fleet = Fleet("fer-edge", Limits(max_payload=1000))
    cases = {
        ("fer-edge/d1/events", b"{not json"): "not JSON",
        ("fer-edge/d1/events", b"[1, 2]"): "not an object",
        ("fer-edge/d1/stats", b'{"v": 2}'): "version",
        ("fer-edge/d1/events", b"x" * 1001): "too large",
        ("fer-edge/d1/status", b'{"v": 1, "state": "sleepy"}'): "status",
        ("fer-edge/d1/events", b'{"v": 1, "type": "face_appeared"}'): "event",
        ("fer-edge/d1/events", event("summary", summary="oops")): "event",
        ("fer-edge/d1/state/cam0", b'{"v": 1, "faces": "three"}'): "state",
        ("fer-edge/d1", b"{}"): "topic",
        ("fer-edge/d1/events", b"\xff\xfe"): "not JSON",
    }
    for (topic, payload), reason in cases.items():
        before = fleet.rejected.get(reason, 0)
        assert fleet.ingest(topic, payload, now=NOW) is None, (topic, payload)
        assert fleet.rejected.get(reason, 0) == before + 1, (reason, fleet.rejected)
        assert fleet.last_rejection.startswith(topic + ": ") and "\n" not in fleet.last_rejection
    assert fleet.ingest("fer-edge/d1/status", status("online"), now=NOW)["t"] == "status"   # still working


def test_topics_the_page_does_not_show_are_ignored_quietly():
    fleet = Fleet("fer-edge")
    assert fleet.ingest("fer-edge/d1/config/set", b"device: {}", now=NOW) is None
    assert fleet.rejected == {}


def test_a_prefix_with_levels():
    fleet = Fleet("site/a")
    assert fleet.ingest("site/a/d1/status", status("online"), now=NOW)["device"] == "d1"
    assert fleet.ingest("site/b/d1/status", status("online"), now=NOW) is None and fleet.rejected["topic"] == 1
