"""Two cameras on two real RTSP streams (GStreamer's gst-rtsp-server), one of them cut and restored.

The service's frame path as `cameras:` builds it (edge/service/parts.py): a CameraSet (a reader thread
per camera) and a MultiProcessor (one shared analyzer, batched classification), on a thread as the
pipeline thread runs them. Cutting one stream must leave the other camera's frames and events
flowing; the cut camera reconnects with backoff and counts its outage.
"""
from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import require_shared
from tests.test_streams import RtspServer, free_port, gst_rtsp_available, wait_for

pytestmark = pytest.mark.slow


class Rounds:
    """Iterates a CameraSet through a MultiProcessor on a thread, recording frames and events per camera."""

    def __init__(self, urls: dict[str, str]) -> None:
        from edge.config import AppConfig
        from edge.service.parts import build_parts

        cameras = [{"name": name, "uri": url, "kind": "stream", "stall_timeout_s": 2.0, "reopen_delay_s": 0.25,
                    "reopen_max_delay_s": 2.0} for name, url in urls.items()]
        cfg = AppConfig.model_validate({"cameras": cameras, "schedule": {"detect_every": 2},
                                        "tracking": {"max_age_s": 0.5}})
        self.parts = build_parts(cfg)
        self.frames: list[tuple[float, str]] = []
        self.events: list[tuple[float, str, str]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for batch in self.parts.source:
            result = self.parts.processor.process(batch)
            now = time.monotonic()
            self.frames += [(now, frame.camera) for frame, _ in batch.frames]
            self.events += [(now, e.camera, e.type) for e in result.events]

    def frames_after(self, t: float, camera: str) -> int:
        return sum(1 for x, c in list(self.frames) if x > t and c == camera)

    def events_after(self, t: float, camera: str, kind: str | None = None) -> int:
        return sum(1 for x, c, k in list(self.events) if x > t and c == camera and kind in (None, k))

    def source_stats(self, camera: str):
        return next(f.source.stats for f in self.parts.source.feeds if f.name == camera)


def test_cutting_one_stream_leaves_the_other_camera_flowing_and_the_cut_one_comes_back() -> None:
    video = require_shared("video", "single_face.mp4")
    reason = gst_rtsp_available()
    if reason:
        pytest.skip(reason)
    a, b = RtspServer(video, free_port(), "/a"), RtspServer(video, free_port(), "/b")
    a.start()
    b.start()
    rounds = Rounds({"door": a.url, "desk": b.url})
    rounds.thread.start()
    try:
        wait_for(lambda: rounds.events_after(0, "door", "face_appeared") and rounds.events_after(0, "desk", "face_appeared"),
                 30, "a face on both cameras")
        a.stop()
        cut = time.monotonic()
        time.sleep(3.0)
        # the other camera went on: frames, its face still tracked and classified, no failure of its own
        assert rounds.frames_after(cut + 0.5, "desk") >= 20, rounds.frames[-5:]
        assert rounds.frames_after(cut + 0.5, "door") == 0, "frames from a stream that was cut"
        assert rounds.source_stats("desk").failures == 0 and rounds.source_stats("desk").outages == 0
        assert rounds.source_stats("door").failures >= 2, "the cut camera did not notice and retry"
        assert rounds.parts.source.stuck(stall_timeout_s=20.0) == []          # an outage, not a stall
        a.start()
        restored = time.monotonic()
        wait_for(lambda: rounds.frames_after(restored, "door") >= 10, 30, "frames from the restored camera")
        wait_for(lambda: rounds.events_after(restored, "door", "face_appeared") >= 1, 30,
                 "a face on the restored camera")
        door = rounds.source_stats("door")
        assert door.reopens >= 1 and door.state == "open" and door.outages == 1
        assert 3.0 <= door.outage_s <= time.monotonic() - cut, door
        stats = rounds.parts.source.camera_stats()
        assert stats["door"]["outages"] == 1, stats      # (desk's 9 s clip may have ended and restarted by now)
        # the cut camera's face left during the outage; the other camera's face did not
        assert rounds.events_after(cut, "door", "face_left") >= 1
        per_camera = rounds.parts.processor.take_stats()["cameras"]
        assert per_camera["desk"]["frames"] > 0 and per_camera["door"]["frames"] > 0
    finally:
        rounds.parts.source.close()
        rounds.thread.join(timeout=10)
        a.stop()
        b.stop()
