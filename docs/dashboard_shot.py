"""docs/dashboard.png and docs/dashboard_fleet.png: the real page showing two real `fer-edge run` services.

    python docs/dashboard_shot.py [--minutes 5]

Starts mosquitto on loopback, two `fer-edge run` services with the default config on the shared
videos (street-cam-1: ../shared/data/video/crowd_street_test.mp4, lobby-cam-1: single_face.mp4;
looped, at their own frame rate, a summary every 15 s so that the timeline fills within minutes),
`fer-edge dashboard`, and a headless Chromium; after --minutes it photographs street-cam-1's camera
view (the last 10 minutes) and the fleet view.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.broker import Broker, free_port  # noqa: E402
from bench.browser import browser_problem, chrome, wait_until  # noqa: E402

VIDEOS = {"street-cam-1": ROOT.parent / "shared" / "data" / "video" / "crowd_street_test.mp4",
          "lobby-cam-1": ROOT.parent / "shared" / "data" / "video" / "single_face.mp4"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="how long the service runs before the picture")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    p.add_argument("--fleet-out", type=Path, default=ROOT / "docs" / "dashboard_fleet.png")
    args = p.parse_args(argv)
    missing = [str(v) for v in VIDEOS.values() if not v.exists()]
    if missing or (why := browser_problem()):
        print(f"dashboard_shot: not found: {', '.join(missing)}" if missing else f"dashboard_shot: {why}", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp, Broker() as broker:
        services = []
        for device, video in VIDEOS.items():
            config = Path(tmp) / f"{device}.yaml"
            config.write_text(yaml.safe_dump({
                "device": {"id": device}, "source": {"uri": str(video), "loop": True, "pace": True},
                "events": {"summary_interval_s": 15},
                "mqtt": broker.mqtt_config(), "queue": {"path": f"{tmp}/{device}.db"}, "stats": {"interval_s": 5}}))
            services.append(subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                             stderr=open(f"{tmp}/{device}.log", "wb")))
        port = free_port()
        dash = subprocess.Popen([sys.executable, "-m", "edge.cli", "dashboard", "--broker", f"127.0.0.1:{broker.port}",
                                 "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=open(f"{tmp}/dashboard.log", "wb"))
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until(lambda: dash.poll() is None and urllib.request.urlopen(url + "healthz", timeout=2).status == 200,
                       90, "the dashboard")
            time.sleep(args.minutes * 60)
            for device, proc in zip(VIDEOS, services):
                if proc.poll() is not None:
                    print(f"dashboard_shot: fer-edge run ({device}) exited: "
                          f"{Path(tmp, device + '.log').read_text()[-2000:]}", file=sys.stderr)
                    return 1
            with chrome(1400, 1150) as driver:
                driver.get(url + "?window=10#/device/street-cam-1")
                wait_until(lambda: driver.find_elements("css selector", ".cam .event"), 30, "events on the page")
                time.sleep(2)
                driver.save_screenshot(str(args.out))
                driver.get(url + "#/")
                wait_until(lambda: len(driver.find_elements("css selector", ".card")) == len(VIDEOS), 30, "the cards")
                time.sleep(2)
                driver.save_screenshot(str(args.fleet_out))
        finally:
            for proc in (*services, dash):
                proc.terminate()
                proc.wait(15)
    print(f"wrote {args.out} and {args.fleet_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
