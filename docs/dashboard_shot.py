"""docs/dashboard.png, docs/dashboard_fleet.png, docs/dashboard_kiosk.png: the real page showing real services.

    python docs/dashboard_shot.py [--minutes 5]

Starts mosquitto on loopback, `fer-edge dashboard` with a fresh SQLite history store, and publishes
through the broker a **simulated** week of summaries for each device (timestamps in the past, a
day-and-night pattern: the store has nothing else to show on a fresh machine). Then two real
`fer-edge run` services with the default config on the shared videos (street-cam-1:
../shared/data/video/crowd_street_test.mp4, lobby-cam-1: single_face.mp4; looped, at their own
frame rate, a summary every 15 s so that the timeline fills within minutes) and a headless
Chromium; after --minutes lobby-cam-1 is killed (SIGKILL: its card shows only what it last saw),
and the page is photographed: street-cam-1's camera view with the week of history, the fleet view,
and the fleet view in kiosk mode at 1920x1080.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.broker import Broker, free_port  # noqa: E402
from tests.helpers.browser import browser_problem, chrome, wait_until  # noqa: E402

VIDEOS = {"street-cam-1": ROOT.parent / "shared" / "data" / "video" / "crowd_street_test.mp4",
          "lobby-cam-1": ROOT.parent / "shared" / "data" / "video" / "single_face.mp4"}
WHO = {"street-cam-1": {"name": "Main street entrance", "location": "Street side", "groups": ["entrances"]},
       "lobby-cam-1": {"name": "Lobby kiosk", "location": "Lobby", "groups": ["entrances", "inside"]}}


def seed_week(broker: Broker, devices: list[str], now: float) -> int:
    """A simulated week of 5-minute summaries per device, published with past timestamps (busy by day)."""
    client = broker.client()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    sent = 0
    for k, device in enumerate(devices):
        t = now - 7 * 86400
        while t < now - 3600:
            hour = time.localtime(t).tm_hour + time.localtime(t).tm_min / 60
            busy = max(0.0, math.sin((hour - 7) / 14 * math.pi)) * (1.5 + k) if 7 <= hour <= 21 else 0.0
            happy = 0.45 + 0.25 * math.sin(hour / 24 * 2 * math.pi + k)
            seconds = {"happiness": 300 * busy * happy, "neutral": 300 * busy * (0.85 - happy),
                       "surprise": 300 * busy * 0.05, "sadness": 300 * busy * 0.06, "anger": 300 * busy * 0.04}
            event = {"v": 1, "id": f"seed-{device}-{int(t)}", "device": device, "camera": "cam0", "type": "summary",
                     "ts": "", "epoch": t, "summary": {"interval_s": 300, "start": "", "faces": round(busy * 3),
                                                        "counts": {}, "seconds": seconds}}
            client.publish(f"fer-edge/{device}/events", json.dumps(event), qos=1)
            sent += 1
            t += 300
    client.loop_stop()
    client.disconnect()
    return sent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="how long the service runs before the picture")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    p.add_argument("--fleet-out", type=Path, default=ROOT / "docs" / "dashboard_fleet.png")
    p.add_argument("--kiosk-out", type=Path, default=ROOT / "docs" / "dashboard_kiosk.png")
    args = p.parse_args(argv)
    missing = [str(v) for v in VIDEOS.values() if not v.exists()]
    if missing or (why := browser_problem()):
        print(f"dashboard_shot: not found: {', '.join(missing)}" if missing else f"dashboard_shot: {why}", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp, Broker() as broker:
        port = free_port()
        dash = subprocess.Popen([sys.executable, "-m", "edge.cli", "dashboard", "--broker", f"127.0.0.1:{broker.port}",
                                 "--port", str(port), "--store", f"{tmp}/history.sqlite"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/dashboard.log", "wb"))
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: dash.poll() is None and urllib.request.urlopen(url + "healthz", timeout=2).status == 200,
                   90, "the dashboard")
        time.sleep(1)
        print(f"seeded {seed_week(broker, list(VIDEOS), time.time())} simulated summaries of the past week")
        services = []
        for device, video in VIDEOS.items():
            config = Path(tmp) / f"{device}.yaml"
            config.write_text(yaml.safe_dump({
                "device": {"id": device, **WHO[device]}, "source": {"uri": str(video), "loop": True, "pace": True},
                "events": {"summary_interval_s": 15},
                "mqtt": broker.mqtt_config(), "queue": {"path": f"{tmp}/{device}.db"}, "stats": {"interval_s": 5}}))
            state = Path(tmp) / f"{device}-state"          # one state directory per service
            state.mkdir()
            services.append(subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                             cwd=ROOT, env={**env, "STATE_DIRECTORY": str(state)},
                                             stdout=subprocess.DEVNULL,
                                             stderr=open(f"{tmp}/{device}.log", "wb")))
        try:
            time.sleep(args.minutes * 60)
            for device, proc in zip(VIDEOS, services):
                if proc.poll() is not None:
                    print(f"dashboard_shot: fer-edge run ({device}) exited: "
                          f"{Path(tmp, device + '.log').read_text()[-2000:]}", file=sys.stderr)
                    return 1
            services[1].send_signal(signal.SIGKILL)         # lobby-cam-1 dies: the broker sends its last will
            time.sleep(12)
            with chrome(1400, 2100) as driver:
                driver.get(url + "?window=10#/device/street-cam-1")
                wait_until(lambda: driver.find_elements("css selector", ".cam .event"), 30, "events on the page")
                wait_until(lambda: driver.find_elements("css selector", ".cam .hourgrid"), 30, "the week of history")
                time.sleep(2)
                driver.save_screenshot(str(args.out))
            with chrome(1400, 1000) as driver:
                driver.get(url + "#/")
                wait_until(lambda: len(driver.find_elements("css selector", ".card")) == len(VIDEOS), 30, "the cards")
                time.sleep(2)
                driver.save_screenshot(str(args.fleet_out))
            with chrome(1920, 1080) as driver:
                # the page's viewport exactly 1920x1080, as on a full-screen wall display
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                       {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
                driver.get(url + "?kiosk#/")
                wait_until(lambda: len(driver.find_elements("css selector", ".card")) == len(VIDEOS), 30, "the cards")
                time.sleep(2)
                scroll = driver.execute_script("return [document.documentElement.scrollHeight, window.innerHeight, "
                                               "document.documentElement.scrollWidth, window.innerWidth]")
                print(f"kiosk: page {scroll[2]}x{scroll[0]} px in a {scroll[3]}x{scroll[1]} px viewport")
                if scroll[0] > scroll[1] or scroll[2] > scroll[3]:
                    print("dashboard_shot: the kiosk page does not fit its screen", file=sys.stderr)
                    return 1
                driver.save_screenshot(str(args.kiosk_out))
        finally:
            for proc in (*services, dash):
                proc.terminate()
                proc.wait(15)
    print(f"wrote {args.out}, {args.fleet_out} and {args.kiosk_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
