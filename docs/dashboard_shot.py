"""docs/dashboard.png: the real dashboard page showing a real `fer-edge run` on the shared single-face video.

    python docs/dashboard_shot.py [--minutes 5] [--out docs/dashboard.png]

Starts mosquitto on loopback, `fer-edge run` on ../shared/data/video/single_face.mp4 (looped, at its
own frame rate, a summary every 15 s so that the timeline fills within minutes), `fer-edge dashboard`,
and a headless Chromium; after --minutes it photographs the device's camera view.
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

VIDEO = ROOT.parent / "shared" / "data" / "video" / "single_face.mp4"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="how long the service runs before the picture")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = p.parse_args(argv)
    if not VIDEO.exists() or (why := browser_problem()):
        print(f"dashboard_shot: {VIDEO} not found" if not VIDEO.exists() else f"dashboard_shot: {why}", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp, Broker() as broker:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({
            "device": {"id": "lobby-cam-1", "location": "lobby"},
            "source": {"uri": str(VIDEO), "loop": True, "pace": True},
            "events": {"summary_interval_s": 15},
            "mqtt": broker.mqtt_config(), "queue": {"path": f"{tmp}/queue.db"}, "stats": {"interval_s": 5}}))
        service = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                                   env=env, stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/run.log", "wb"))
        port = free_port()
        dash = subprocess.Popen([sys.executable, "-m", "edge.cli", "dashboard", "--broker", f"127.0.0.1:{broker.port}",
                                 "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=open(f"{tmp}/dashboard.log", "wb"))
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until(lambda: dash.poll() is None and urllib.request.urlopen(url + "healthz", timeout=2).status == 200,
                       90, "the dashboard")
            time.sleep(args.minutes * 60)
            if service.poll() is not None:
                print(f"dashboard_shot: fer-edge run exited: {Path(tmp, 'run.log').read_text()[-2000:]}", file=sys.stderr)
                return 1
            with chrome(1400, 1250) as driver:
                driver.get(url + "?window=10#/device/lobby-cam-1")
                wait_until(lambda: driver.find_elements("css selector", ".cam .event"), 30, "events on the page")
                time.sleep(2)
                driver.save_screenshot(str(args.out))
        finally:
            for proc in (service, dash):
                proc.terminate()
                proc.wait(15)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
