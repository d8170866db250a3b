"""What the operator's screen must never get wrong, in a real headless Chromium against a real mosquitto, a real
`fer-edge dashboard` and a real `fer-edge run` on the shared single-face video (issue 27):

- the device is shown by device.name and device.location first, its id second;
- a refused push shows its reason as text (no hover needed), and a later successful push clears the mark;
- after SIGKILL the card and the camera view show no live face count, emotion or fps, only what was last seen.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO, require_shared  # noqa: E402
from conftest_dashboard import DashboardProcess  # noqa: E402
from conftest_service import ServiceProcess, write_config  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402
from tests.helpers.browser import browser_problem, chrome, click, wait_until  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)"),
              pytest.mark.skipif(bool(browser_problem()), reason=str(browser_problem()))]

DEVICE = "dash-truth"
SECRET = "dashboard-truth-secret"
# the card as the operator sees it, read from the DOM
READ_CARD = """
const card = document.querySelector(`.card[data-device="${arguments[0]}"]`);
if (!card) return null;
const text = (sel) => { const e = card.querySelector(sel); return e ? e.textContent : null; };
return {state: card.querySelector(".state").dataset.state, name: text(".dev-name"), place: text(".dev-place"),
        id: text(".dev-title .dev-id"), outcome: text(".outcome"), reason: text(".reason"),
        reasonShown: !!card.querySelector(".reason") && card.querySelector(".reason").getClientRects().length > 0,
        faces: [...card.querySelectorAll(".faces")].map((e) => e.textContent),
        mix: card.querySelectorAll(".mix-seg").length, lastSeen: text(".last-seen"),
        fps: text('dd[data-k="fps"]'), text: card.innerText};
"""


def card(driver) -> dict:
    return driver.execute_script(READ_CARD, DEVICE) or {}


def fleet(broker: Broker, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FER_EDGE_CONFIG_SECRET": SECRET}
    return subprocess.run([sys.executable, "-m", "edge.cli", "fleet", "--port", str(broker.port), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def test_names_first_refusals_readable_and_a_dead_device_never_shown_live(tmp_path):
    video = require_shared("video", "single_face.mp4")
    (tmp_path / "state").mkdir()
    settings = {
        "device": {"id": DEVICE, "name": "Front door kiosk", "location": "Lobby"},
        "source": {"uri": str(video), "loop": True, "pace": True},
        "detector": {"type": "haar"},
        "events": {"summary_interval_s": 2},
        "queue": {"path": str(tmp_path / "queue.db")},
        "preview": {"window": False},
        "service": {"remote_config": {"enabled": True, "require_signature": True}},
        "stats": {"interval_s": 1.0}}
    with Broker() as broker:
        config = write_config(tmp_path / "config.yaml", {**settings, "mqtt": broker.mqtt_config(keepalive_s=5)})
        dash = DashboardProcess("--broker", f"127.0.0.1:{broker.port}", log_dir=tmp_path).wait_ready()
        svc = ServiceProcess(config, env={"FER_EDGE_CONFIG_SECRET": SECRET, "STATE_DIRECTORY": str(tmp_path / "state")})
        with chrome() as driver:
            try:
                svc.wait_ready(60)
                driver.get(dash.url)
                live = wait_until(lambda: (c := card(driver)).get("state") == "online" and c["faces"]
                                  and int(c["faces"][0]) >= 1 and c["mix"] and c["place"] and c, 40,
                                  "online with a face in view, its stats in")
                assert (live["name"], live["place"], live["id"]) == ("Front door kiosk", "Lobby", DEVICE)
                assert live["text"].index("Front door kiosk") < live["text"].index(DEVICE)
                assert live["fps"] not in ("–", None)

                # a refused push: REJECTED with its reason as visible text, not a tooltip
                bad = tmp_path / "bad.yaml"
                bad.write_text("tracking:\n  ema_half_life_s: -1\n")
                out = fleet(broker, "push", str(bad), "--device", DEVICE)
                assert out.returncode == 1 and "rejected" in out.stdout, out.stdout + out.stderr
                refused = wait_until(lambda: (c := card(driver)).get("outcome") == "REJECTED" and c, 20, "REJECTED")
                assert refused["reasonShown"] and "tracking.ema_half_life_s" in refused["reason"], refused
                assert "tracking.ema_half_life_s" in refused["text"]           # on screen, not in a title

                # a later successful push clears the mark and the reason
                good = tmp_path / "good.yaml"
                good.write_text("tracking:\n  ema_half_life_s: 0.8\n")
                out = fleet(broker, "push", str(good), "--device", DEVICE)
                assert out.returncode == 0 and "applied" in out.stdout, out.stdout + out.stderr
                cleared = wait_until(lambda: (c := card(driver)).get("outcome") == "applied" and c, 30, "applied")
                assert cleared["reason"] is None and "REJECTED" not in cleared["text"]
                wait_until(lambda: (c := card(driver)).get("faces") and int(c["faces"][0]) >= 1, 40,
                           "a face in view again after the change")

                # SIGKILL: offline, and nothing on the card or the camera view looks live
                svc.proc.send_signal(signal.SIGKILL)
                svc.proc.wait(10)
                dead = wait_until(lambda: (c := card(driver)).get("state") == "offline" and c, 25, "offline")
                assert dead["faces"] == [] and dead["mix"] == 0, dead
                assert dead["fps"] == "–" and dead["lastSeen"].startswith("not live"), dead
                assert "face" in dead["lastSeen"]           # what was last seen, and when
                click(driver, f'.card[data-device="{DEVICE}"]', "a click on the dead device's card")
                view = wait_until(lambda: driver.execute_script("""
                    const v = document.querySelector('.device'); const cam = document.querySelector('.cam');
                    if (!v || !cam) return null;
                    return {faces: document.querySelectorAll('.cam .faces').length, mix: document.querySelectorAll('.cam .mix').length,
                            stale: (cam.querySelector('.now.stale') || {}).textContent || null,
                            fps: v.querySelector('dd[data-k="fps"]').textContent, preview: !!v.querySelector('a.preview'),
                            name: (v.querySelector('.dev-name') || {}).textContent};"""), 10, "the camera view")
                assert view["faces"] == 0 and view["mix"] == 0 and view["fps"] == "–", view
                assert view["stale"].startswith("not live") and view["name"] == "Front door kiosk", view
                assert not [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            finally:
                svc.close()
                dash.close()
