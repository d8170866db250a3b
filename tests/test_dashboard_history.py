"""The dashboard's history store (issue 27): SQLite by default, PostgreSQL by URL, the same schema and queries.

The end-to-end test publishes a week of summaries (timestamps in the past) through a real mosquitto to a real
`fer-edge dashboard`, restarts it, and reads the 7-day view and the CSV export, once with the default SQLite file
and once with `--store` pointing at a real PostgreSQL server started from Debian's `postgresql` in a temporary
folder. The unit tests pin what the charts plot: rates and shares, the same whatever the summary interval.
"""
from __future__ import annotations

import csv
import io
import json
import time
import uuid

import pytest

from conftest_dashboard import DashboardProcess, get  # noqa: E402
from tests.helpers.broker import Broker, mosquitto_available  # noqa: E402
from tests.helpers.postgres import PostgresServer, postgres_problem  # noqa: E402

from edge.ops.dashboard import history  # noqa: E402
from edge.ops.dashboard.store import DAY, HOUR, Store  # noqa: E402

NOW = 1_796_044_200.0          # a fixed "now" for the unit tests (2026-11-29 13:10 UTC)


def summary(device: str, epoch: float, interval_s: float, faces: int, seconds: dict[str, float],
            camera: str = "cam0") -> dict:
    return {"v": 1, "id": str(uuid.uuid4()), "seq": 1, "device": device, "camera": camera, "type": "summary",
            "ts": "2026-01-01T00:00:00.000Z", "epoch": epoch,
            "summary": {"interval_s": interval_s, "start": "2026-01-01T00:00:00.000Z", "faces": faces,
                        "counts": {k: faces for k in seconds}, "seconds": seconds}}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "history.sqlite")
        return
    if (why := postgres_problem()):
        pytest.skip(why)
    with PostgresServer() as pg:
        yield pg.url


def test_the_chart_does_not_change_height_with_the_summary_interval(tmp_path):
    """Two faces in view, 3/4 happy: 15 s and 30 s summaries of the same hour give the same bars."""
    heights = []
    for n, interval in enumerate((15.0, 30.0)):
        store = Store(str(tmp_path / f"h{n}.sqlite"))
        hour = NOW // HOUR * HOUR - 5 * HOUR
        t = hour
        while t < hour + HOUR:
            t += interval
            store.add_summary("d1", "cam0", t, interval, 2, {"happiness": 1.5 * interval, "neutral": 0.5 * interval})
        store.flush()
        bar = history.view(store, history.Scope("d1", "cam0"), "today", now=NOW)["bars"]
        heights.append([(b["start"], b["faces_in_view"], b["mix"], b["rate"]) for b in bar])
        store.close()
    assert heights[0] == heights[1]
    (_, faces_in_view, mix, rate), = heights[0]
    assert faces_in_view == 2.0 and mix == {"happiness": 0.75, "neutral": 0.25} and rate["happiness"] == 1.5


def test_a_summary_across_an_hour_is_split_and_old_hours_roll_up_into_days(store_url):
    store = Store(store_url, hourly_days=2, retention_days=10)
    boundary = NOW // HOUR * HOUR
    store.add_summary("d1", "cam0", boundary + 15, 60, 4, {"anger": 60.0})      # 45 s before the hour, 15 s after
    store.flush()
    rows = history.buckets(store, history.Scope("d1"), boundary - HOUR, boundary + HOUR)
    assert [(r["start"], r["covered_s"], r["anger_s"], r["faces"]) for r in rows] == \
        [(boundary - HOUR, 45.0, 45.0, 3.0), (boundary, 15.0, 15.0, 1.0)]
    # three days later the hours are one day's row, with the same sums
    store.roll_up(NOW + 3 * DAY)
    rows = history.buckets(store, history.Scope("d1"), boundary - DAY, boundary + DAY)
    assert [(r["size"], r["covered_s"], r["anger_s"], r["faces"]) for r in rows] == [(DAY, 60.0, 60.0, 4.0)]
    store.roll_up(NOW + 20 * DAY)                     # beyond retention: gone
    assert history.buckets(store, history.Scope("d1"), 0, NOW + DAY) == []
    store.close()


def test_views_per_group_and_location_and_the_most_negative_entrance(store_url):
    store = Store(store_url)
    store.set_device("east", "East entrance", "Main street", ["doors"], NOW)
    store.set_device("west", "West entrance", "Main street", ["doors"], NOW)
    store.set_device("cafe", "Cafe", "Food court", ["inside"], NOW)
    for k in range(60):
        t = NOW - 2 * HOUR + k * 60
        store.add_summary("east", "cam0", t, 60, 1, {"happiness": 50.0, "anger": 10.0})
        store.add_summary("west", "cam0", t, 60, 2, {"sadness": 60.0, "anger": 30.0, "neutral": 30.0})
        store.add_summary("cafe", "cam0", t, 60, 1, {"happiness": 60.0})
    store.flush()
    doors = history.view(store, history.Scope(group="doors"), "today", now=NOW)
    assert doors["totals"]["faces_in_view"] == pytest.approx(3.0)          # 1 + 2 faces, both cameras summed
    assert [r["device"] for r in doors["ranking"]] == ["west", "east"]     # west reads most negative
    assert doors["ranking"][0]["negative"] == pytest.approx(0.75) and doors["ranking"][0]["name"] == "West entrance"
    street = history.view(store, history.Scope(location="Food court"), "today", now=NOW)
    assert street["totals"]["mix"] == {"happiness": 1.0}
    everyone = history.view(store, history.Scope(), "today", now=NOW)
    assert everyone["totals"]["faces_in_view"] == pytest.approx(4.0)
    assert len(everyone["hour_of_day"]) >= 1 and everyone["hour_of_day"][0]["dominant"]
    with pytest.raises(ValueError, match="range="):
        history.view(store, history.Scope(), "year")
    store.close()


@pytest.mark.slow
@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed (apt install mosquitto)")
def test_a_week_through_a_real_broker_survives_a_restart_in_the_7_day_view_and_the_csv(store_url, tmp_path):
    now = time.time()
    published = []
    with Broker() as broker:
        args = ("--broker", f"127.0.0.1:{broker.port}", "--store", store_url)
        dash = DashboardProcess(*args, log_dir=tmp_path).wait_ready()
        try:
            client = broker.client()
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            # a week of hourly summaries (mid-hour, from 6 days before today's UTC midnight up to now), one face
            # in view all the time, happy 2/3 of it
            first = now // DAY * DAY - 6 * DAY + HOUR / 2
            for h in range(int((now - first) // HOUR) + 1):
                epoch = first + h * HOUR
                msg = summary("week-cam", epoch, 60.0, 1, {"happiness": 40.0, "neutral": 20.0})
                published.append(msg)
                client.publish("fer-edge/week-cam/events", json.dumps(msg), qos=1).wait_for_publish(5)
            client.publish("fer-edge/week-cam/stats", json.dumps(
                {"v": 1, "device": "week-cam", "version": "x", "ts": "x", "epoch": now, "uptime_s": 1,
                 "queue": {}, "mqtt": {}, "name": "Week camera", "location": "Hall", "groups": ["doors"]}),
                qos=1, retain=True).wait_for_publish(5)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and dash.fleet()["counters"]["received"] < len(published) + 1:
                time.sleep(0.2)
            client.loop_stop()
            client.disconnect()
        finally:
            assert dash.close() == 0                      # SIGTERM: the buffered buckets are written
        dash = DashboardProcess(*args, log_dir=tmp_path).wait_ready()     # a new process: only the store remembers
        try:
            tz = "&tz=0"
            status, _, body = get(dash.url + "api/history?device=week-cam&camera=cam0&range=7d" + tz)
            assert status == 200, body
            week = json.loads(body)
            assert len(week["bars"]) == len(published)                # one hourly bar per summary, all 7 days
            assert week["totals"]["mix"] == {"happiness": pytest.approx(0.6667, abs=1e-3),
                                             "neutral": pytest.approx(0.3333, abs=1e-3)}
            assert week["totals"]["faces_in_view"] == pytest.approx(1.0)
            assert week["bars"][0]["start"] == week["from"] == now // DAY * DAY - 6 * DAY
            status, headers, body = get(dash.url + "api/history?group=doors&range=7d&format=csv" + tz)
            assert status == 200 and headers["Content-Type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(body.decode())))
            assert len(rows) == len(published)
            assert float(rows[0]["happiness_share"]) == pytest.approx(0.6667, abs=1e-3)
            assert sum(float(r["faces_seen"]) for r in rows) == pytest.approx(len(published))
            status, _, body = get(dash.url + "api/history?location=Hall&range=30d" + tz)
            assert status == 200 and json.loads(body)["bar_s"] == DAY and len(json.loads(body)["bars"]) in (7, 8)
            status, _, body = get(dash.url + "api/history?range=year")
            assert status == 400 and b"range=year" in body
        finally:
            dash.close()
