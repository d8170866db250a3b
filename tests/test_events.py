"""The event contract: versioned JSON that matches edge/schemas/event.schema.json, privacy by default."""
from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.events import EVENT_TYPES, Event, Summary, encode_snapshot, iso_utc, load_schema, publishable
from edge.config.events import EventsConfig, SnapshotConfig
from tests.helpers.publish_demo import demo_event

VALIDATOR = jsonschema.Draft202012Validator(load_schema("event"))

SCORES = {"neutral": 0.1, "happiness": 0.8, "surprise": 0.1}


def one_of_each() -> list[Event]:
    return [Event("face_appeared", "cam0", 1_700_000_000.5, 3, "happiness", 0.8, SCORES, (1, 2, 30, 40)),
            Event("emotion_changed", "cam0", 1_700_000_001.0, 3, "neutral", 0.6, SCORES, (1, 2, 30, 40),
                  previous_label="happiness"),
            Event("face_left", "cam0", 1_700_000_002.0, 3, "neutral", 0.6, SCORES, (1, 2, 30, 40), duration_s=1.5),
            Event("summary", "cam1", 1_700_000_060.0, summary=Summary(60.0, 1_700_000_000.0, {"neutral": 2}, 2))]


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: e.type)
def test_every_type_matches_the_schema_and_round_trips(event):
    d = event.stamped("kitchen", 7).to_dict()
    VALIDATOR.validate(d)
    assert d["v"] == 1 and d["seq"] == 7 and d["device"] == "kitchen" and len(d["id"]) == 36
    assert Event.from_dict(json.loads(event.stamped("kitchen", 7, "abc").to_json())).to_dict()["id"] == "abc"
    back = Event.from_dict(d)
    assert back.to_dict() == d


def test_timestamps_agree_iso_and_epoch():
    d = one_of_each()[0].stamped("d", 1).to_dict()
    assert d["ts"] == "2023-11-14T22:13:20.500Z" and d["epoch"] == 1_700_000_000.5
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_ids_are_unique_per_stamp():
    ev = one_of_each()[0]
    assert len({ev.stamped("d", i).id for i in range(1000)}) == 1000


def test_schema_rejects_what_the_contract_forbids():
    good = one_of_each()[0].stamped("d", 1).to_dict()
    for broken in ({**good, "id": ""}, {**good, "seq": 0}, {**good, "type": "blink"}, {**good, "extra": 1},
                   {k: v for k, v in good.items() if k != "epoch"}, {**good, "ts": "yesterday"},
                   {**good, "track_id": None},                      # per-face event without a track
                   {**good, "previous_label": "x"}):                # field of another type
        assert not VALIDATOR.is_valid(broken), broken
    summary = one_of_each()[3].stamped("d", 2).to_dict()
    assert not VALIDATOR.is_valid({**summary, "summary": None})


def test_no_image_data_unless_snapshots_enabled():
    crop = np.full((120, 100), 128, np.uint8)
    assert encode_snapshot(crop, SnapshotConfig()) is None
    jpeg = encode_snapshot(crop, SnapshotConfig(enabled=True, max_size=48))
    assert jpeg[:2] == b"\xff\xd8"
    ev = Event("face_appeared", track_id=1, label="neutral", score=0.9, snapshot=jpeg)
    off = publishable([ev], EventsConfig())
    assert off[0].snapshot is None and "snapshot" not in off[0].stamped("d", 1).to_dict()
    on = publishable([ev], EventsConfig(snapshots={"enabled": True}))
    d = on[0].stamped("d", 1).to_dict()
    VALIDATOR.validate(d)
    assert d["snapshot"]["format"] == "jpeg" and Event.from_dict(d).snapshot == jpeg


def test_aggregate_only_keeps_only_summaries():
    kept = publishable(one_of_each(), EventsConfig(aggregate_only=True))
    assert [e.type for e in kept] == ["summary"]
    assert len(publishable(one_of_each(), EventsConfig())) == 4


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="summary_interval"):
        EventsConfig(summary_interval_s=0)
    with pytest.raises(ValueError, match="snapshot"):
        EventsConfig(snapshot={"enabled": True})      # typo of `snapshots`


def test_demo_stream_is_schema_valid():
    types = set()
    for k in range(200):
        d = demo_event(k).stamped("demo", k + 1).to_dict()
        VALIDATOR.validate(d)
        types.add(d["type"])
    assert types == set(EVENT_TYPES)


@settings(max_examples=60, deadline=None)
@given(scores=st.dictionaries(st.sampled_from(["neutral", "anger", "fear"]), st.floats(0, 1), min_size=1),
       box=st.tuples(*[st.floats(0, 4000)] * 4), track=st.integers(0, 2**31), ts=st.floats(0, 4e9))
def test_any_face_event_matches_the_schema(scores, box, track, ts):
    label = max(scores, key=scores.get)
    ev = Event("face_appeared", "cam0", ts, track, label, scores[label], scores, box)
    VALIDATOR.validate(json.loads(ev.stamped("d", 1).to_json()))
