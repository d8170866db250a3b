"""The dashboard page in a real headless Chromium, against a real mosquitto, a real `fer-edge dashboard` and a real
`fer-edge run` on the shared single-face video: what the page shows is what the device published."""
from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require_shared  # noqa: E402
from conftest_dashboard import DashboardProcess  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402
from tests.helpers.browser import browser_problem, chrome, click, wait_until  # noqa: E402

pytestmark = [pytest.mark.slow,     # a browser, a broker and (first test) a real service: the full tier only
              pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)"),
              pytest.mark.skipif(bool(browser_problem()), reason=str(browser_problem()))]

DEVICE = "dash-e2e"
# what one device's card shows, read from the DOM (not from the page's JavaScript state)
READ_CARD = """
const card = document.querySelector(`[data-device="${arguments[0]}"]`);
if (!card) return null;
return {state: card.querySelector(".state").dataset.state,
        cams: Object.fromEntries([...card.querySelectorAll("[data-camera]")].map((c) => [c.dataset.camera, {
          faces: Number(c.querySelector(".faces").textContent),
          mix: Object.fromEntries([...c.querySelectorAll(".mix-seg")].map((s) => [s.dataset.emotion, Number(s.dataset.share)]))
        }]))};
"""


def service_config(tmp_path: Path, broker: Broker, preview: bool = False) -> Path:
    return write_config(tmp_path / ("preview.yaml" if preview else "config.yaml"), {
        "device": {"id": DEVICE},
        "source": {"uri": str(require_shared("video", "single_face.mp4")), "loop": True, "pace": True},
        "detector": {"type": "haar"},
        "events": {"summary_interval_s": 2},
        "mqtt": broker.mqtt_config(keepalive_s=5),
        "queue": {"path": str(tmp_path / "queue.db")},
        "preview": {"window": False, "mjpeg": {"enabled": preview, "port": 0}},
        "stats": {"interval_s": 1.0}})


def read(driver, selector: str, what: str = "textContent") -> str | None:
    """One property of the first element matching ``selector``, read in one step (the page re-renders often)."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e[arguments[1]] : null;",
                                 selector, what)


def card(driver, device: str = DEVICE) -> dict | None:
    return driver.execute_script(READ_CARD, device)


def state_of(driver, device: str = DEVICE) -> str | None:
    return (card(driver, device) or {}).get("state")


def test_the_page_shows_what_a_real_service_publishes_then_stopped_then_offline(tmp_path):
    require_shared("video", "single_face.mp4")
    with Broker() as broker:
        seen = broker.subscribe_collect(f"fer-edge/{DEVICE}/#")
        config = service_config(tmp_path, broker)
        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        svc = ServiceProcess(config)
        with chrome() as driver:
            try:
                svc.wait_ready(60)
                driver.get(dash.url)
                wait_until(lambda: state_of(driver) == "online", 30, "the device online on the fleet view")

                # the face_appeared event the device published appears, by its id
                assert seen.wait_for(lambda ms: any(m.topic.endswith("/events") and m.json()["type"] == "face_appeared"
                                                    for m in ms), 30), "the service published no face_appeared"
                appeared = next(e for e in seen.json(f"fer-edge/{DEVICE}/events") if e["type"] == "face_appeared")
                wait_until(lambda: driver.find_elements("css selector", f'#ticker [data-id="{appeared["id"]}"]'), 10,
                           "the face_appeared event in the latest events")
                row = f'#ticker [data-id="{appeared["id"]}"]'
                assert read(driver, row + '[data-type="face_appeared"]') and "appeared" in read(driver, row)

                # faces in view and the emotion mix are those of the last retained state the device published
                def matches() -> dict | None:
                    states = seen.json(f"fer-edge/{DEVICE}/state/cam0")
                    shown = (card(driver) or {}).get("cams", {}).get("cam0")
                    if not states or not shown or states[-1]["faces"] < 1:
                        return None
                    last = states[-1]
                    same = shown["faces"] == last["faces"] and shown["mix"] == pytest.approx(last["mix"])
                    return {"page": shown, "published": last} if same else None
                both = wait_until(matches, 20, "the page's faces in view and emotion mix = the last published state")
                assert both["page"]["faces"] >= 1 and sum(both["page"]["mix"].values()) == pytest.approx(1.0)
                print(f"\npage: {json.dumps(both['page'])}; published: faces {both['published']['faces']}, "
                      f"mix {both['published']['mix']}")

                # the camera view: the same event in the camera's list, and the summaries drawn in the timeline
                click(driver, f'.card[data-device="{DEVICE}"]', "a click on the device's card")
                wait_until(lambda: driver.find_elements("css selector", f'.cam[data-camera="cam0"] [data-id="{appeared["id"]}"]'),
                           10, "the face_appeared event in the camera view")
                wait_until(lambda: driver.execute_script(
                    f'return window.ferDash.devices.get("{DEVICE}").cameras.get("cam0").summaries.length') >= 1, 20,
                    "a summary for the timeline")
                assert driver.find_elements("css selector", '.cam[data-camera="cam0"] canvas.timeline')
                fps = read(driver, '.device dd[data-k="fps"]')
                assert fps.replace(".", "").isdigit(), fps
                assert not driver.find_elements("css selector", ".device a.preview")   # MJPEG is off: no link

                # SIGTERM: the service says `stopped` before its clean disconnect
                code, _ = svc.stop()
                assert code == 0, svc.stderr()[-2000:]
                wait_until(lambda: state_of(driver) == "stopped", 15, "stopped after SIGTERM")

                # restarted with the MJPEG preview on: the camera view links to it, where the device serves it
                svc.close()
                svc = ServiceProcess(service_config(tmp_path, broker, preview=True))
                svc.wait_ready(60)
                wait_until(lambda: state_of(driver) == "online", 20, "online again after a restart")
                link = wait_until(lambda: read(driver, ".device a.preview", "href"), 20, "the MJPEG preview link")
                published = [s["preview"]["mjpeg"] for s in seen.json(f"fer-edge/{DEVICE}/stats") if "preview" in s]
                assert link == published[-1] and link.startswith("http://127.0.0.1:"), (link, published)
                with urllib.request.urlopen(link + "snapshot.jpg", timeout=10) as resp:   # the device serves frames
                    assert resp.status == 200 and resp.read(2) == b"\xff\xd8"

                # SIGKILL: nobody says goodbye, the broker publishes the last will
                svc.proc.send_signal(signal.SIGKILL)
                svc.proc.wait(10)
                wait_until(lambda: state_of(driver) == "offline", 20, "offline (last will) after SIGKILL")
                badge = read(driver, f'[data-device="{DEVICE}"] .state')
                assert badge.startswith("offline") and "since" in badge
                assert not [l for l in driver.get_log("browser") if l["level"] == "SEVERE"]
            finally:
                svc.close()
                dash.close()


def test_devices_come_and_go_and_the_page_survives_a_broker_restart(tmp_path):
    with Broker() as broker:
        pub = broker.client()
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()

        def status(device: str, state: str) -> None:
            body = json.dumps({"v": 1, "state": state, "device": device, "version": "0.1.0",
                               "ts": "2025-12-01T10:00:00.000Z", "epoch": time.time()})
            pub.publish(f"fer-edge/{device}/status", body, qos=1, retain=True).wait_for_publish(5)

        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        try:
            with chrome() as driver:
                driver.get(dash.url + "?kiosk")
                assert "kiosk" in driver.find_element("tag name", "body").get_attribute("class")
                status("a1", "online")
                status("b2", "stopped")
                wait_until(lambda: state_of(driver, "a1") == "online" and state_of(driver, "b2") == "stopped", 15,
                           "two devices on the page")
                pub.publish("fer-edge/b2/status", b"", qos=1, retain=True).wait_for_publish(5)   # decommissioned
                wait_until(lambda: card(driver, "b2") is None, 10, "the removed device gone from the page")
                broker.stop()
                wait_until(lambda: driver.find_element("id", "banner").is_displayed(), 15, "the broker-down banner")
                assert "since" in read(driver, "#banner")
                broker.start()
                pub.reconnect()
                wait_until(lambda: not driver.find_element("id", "banner").is_displayed(), 20, "the banner gone")
                status("c3", "online")                                   # a new device after the restart
                wait_until(lambda: state_of(driver, "c3") == "online" and state_of(driver, "a1") == "online", 15,
                           "old and new devices after the broker restart")
        finally:
            pub.loop_stop()
            dash.close()


# a flood of changes fed straight into the page (the same entry point as the server's stream)
FLOOD = """
const [start, n, devices] = arguments;
const d = window.ferDash, labels = ["neutral", "happiness", "surprise", "sadness"];
for (let k = start; k < start + n; k++) {
  const device = "flood-" + (k % devices), epoch = Date.now() / 1000;
  if (k % 10 === 0) {
    d.ingest({t: "event", device, data: {id: "s" + k, type: "summary", camera: "cam" + (k % 3), epoch,
              summary: {interval_s: 1, counts: {neutral: 1}, faces: 1, seconds: {neutral: 1.0}}}});
  } else {
    d.ingest({t: "event", device, data: {id: "e" + k, seq: k, type: "face_appeared", camera: "cam0", epoch,
              track_id: k, label: labels[k % 4], score: 0.7}});
  }
  if (k % 7 === 0) d.ingest({t: "state", device, camera: "cam0", data: {faces: k % 5, dominant: "neutral",
                                                                          counts: {neutral: 1}, mix: {neutral: 1}}});
}
"""
SIZES = """
const d = window.ferDash, out = {events: 0, seen: 0, summaries: 0};
for (const dev of d.devices.values()) {
  out.events = Math.max(out.events, dev.events.length);
  out.seen = Math.max(out.seen, dev.seen.size);
  for (const cam of dev.cameras.values()) out.summaries = Math.max(out.summaries, cam.summaries.length);
}
return Object.assign(out, {devices: d.devices.size, ticker: d.ticker.length, latency: d.latency.length,
                           nodes: document.getElementsByTagName("*").length});
"""


def test_the_page_keeps_its_memory_bounded_under_a_flood(tmp_path):
    with Broker() as broker:
        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        try:
            with chrome() as driver:
                driver.get(dash.url)
                wait_until(lambda: driver.execute_script("return window.ferDash.stream") == "open", 15, "the stream")

                def flood(start: int, n: int) -> tuple[float, dict]:
                    for k in range(start, start + n, 50_000):
                        driver.execute_script(FLOOD, k, 50_000, 10)
                        time.sleep(0.3)                       # let the page draw between bursts
                    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
                    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
                    heap = next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize") / 2**20
                    return heap, driver.execute_script(SIZES)

                driver.execute_cdp_cmd("Performance.enable", {})
                filled, at_fill = flood(0, 200_000)           # enough to reach every bound (10 devices)
                later, at_end = flood(200_000, 400_000)       # three times as much again
                print(f"\npage after 200k changes: {filled:.2f} MB JS heap, {at_fill}; "
                      f"after 600k: {later:.2f} MB, {at_end}")
                assert at_end == at_fill | {"nodes": at_end["nodes"]}
                assert at_end["events"] == 30 and at_end["seen"] == 512 and at_end["summaries"] == 360
                assert at_end["ticker"] == 14 and at_end["latency"] <= 20_000
                assert at_end["nodes"] < 2 * at_fill["nodes"]
                assert later < filled * 1.2 + 1.0, (filled, later)
        finally:
            dash.close()
