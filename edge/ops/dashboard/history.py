"""The history views: per camera, device, group, location or the whole fleet, over today, 7 or 30 days.

Everything shown is a **rate or a share**, never a sum per summary interval, so changing a device's
``events.summary_interval_s`` does not change the height of a chart:

- ``faces_in_view``: face-seconds / seconds covered, the mean number of faces in view (summed over the
  cameras of the scope);
- ``rate``: the same per emotion (stacked, it adds up to ``faces_in_view``);
- ``mix``: each emotion's share of the face-time (0..1);
- ``faces_seen_per_h``: distinct faces the summaries counted, per hour (a face present across several
  summary intervals is counted in each; docs/dashboard.md).

:func:`view` answers ``/api/history`` (JSON) and :func:`to_csv` its CSV export.
"""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone
from typing import Any

from edge.ops.dashboard.store import DAY, EMOTIONS, HOUR, Store

RANGES = {"today": 1, "7d": 7, "30d": 30}
NEGATIVE = ("anger", "disgust", "fear", "sadness", "contempt")
COLUMNS = ["start", "size", "cameras", "covered_s", "faces", "face_s", *(f"{e}_s" for e in EMOTIONS), "other_s"]


class Scope:
    """Which buckets a view adds up: a camera, a device, a group, a location, or the whole fleet."""

    def __init__(self, device: str | None = None, camera: str | None = None, group: str | None = None,
                 location: str | None = None) -> None:
        if camera and not device:
            raise ValueError("camera= needs device= (a camera name is only unique within its device)")
        self.device, self.camera, self.group, self.location = device, camera, group, location

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in (("device", self.device), ("camera", self.camera), ("group", self.group),
                                  ("location", self.location)) if v}

    def devices(self, store: Store) -> list[str] | None:
        """The device ids in scope (None: every device)."""
        if self.device:
            return [self.device]
        if self.group is None and self.location is None:
            return None
        rows = store.query("SELECT device, location, groups FROM fer_devices")
        return [d for d, loc, groups in rows
                if (self.location is None or loc == self.location)
                and (self.group is None or self.group in groups.split(","))]


def buckets(store: Store, scope: Scope, start: float, end: float) -> list[dict[str, Any]]:
    """Hourly (or rolled-up daily) buckets of the scope between start and end, summed over its cameras."""
    devices = scope.devices(store)
    if devices == []:
        return []
    where, args = ["start >= ?", "start < ?"], [int(start), int(end)]
    if devices is not None:
        where.append(f"device IN ({', '.join('?' for _ in devices)})")
        args += devices
    if scope.camera:
        where.append("camera = ?")
        args.append(scope.camera)
    sums = ", ".join(f"SUM({c})" for c in COLUMNS[3:])
    rows = store.query(f"SELECT start, size, COUNT(*), {sums} FROM fer_buckets WHERE {' AND '.join(where)} "
                       f"GROUP BY start, size ORDER BY start", args)
    return [dict(zip(COLUMNS, (int(r[0]), int(r[1]), int(r[2]), *(float(x or 0) for x in r[3:])))) for r in rows]


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates and shares of some buckets taken together (one bar, a day, a whole range)."""
    covered = sum(r["covered_s"] / max(1, r["cameras"]) for r in rows)      # wall seconds, not camera-seconds
    face_s = sum(r["face_s"] for r in rows)
    per = {e: sum(r[f"{e}_s"] for r in rows) for e in EMOTIONS}
    other = sum(r["other_s"] for r in rows)
    if other:
        per["other"] = other
    out: dict[str, Any] = {"covered_s": round(covered, 1), "faces_seen": round(sum(r["faces"] for r in rows), 1),
                           "faces_in_view": round(face_s / covered, 4) if covered else None,
                           "faces_seen_per_h": round(sum(r["faces"] for r in rows) / covered * HOUR, 2) if covered else None,
                           "rate": {e: round(v / covered, 4) for e, v in per.items() if v > 0} if covered else {},
                           "mix": {e: round(v / face_s, 4) for e, v in per.items() if v > 0} if face_s else {}}
    out["negative"] = round(sum(out["mix"].get(e, 0.0) for e in NEGATIVE), 4) if face_s else None
    out["dominant"] = max(out["mix"], key=out["mix"].get) if out["mix"] else None
    return out


def _local_day(epoch: float, tz_minutes: int) -> int:
    """Start (epoch s) of the local day holding ``epoch``, for a page whose UTC offset is ``tz_minutes`` east."""
    shift = tz_minutes * 60
    return int((epoch + shift) // DAY * DAY - shift)


def view(store: Store, scope: Scope, range_name: str = "7d", tz_minutes: int = 0,
         now: float | None = None) -> dict[str, Any]:
    """The history of a scope over a range: bars, totals, the same span before, and hour-of-day by day."""
    if range_name not in RANGES:
        raise ValueError(f"range={range_name}: use one of {', '.join(RANGES)}")
    now = time.time() if now is None else now
    days = RANGES[range_name]
    today = _local_day(now, tz_minutes)
    start = today - (days - 1) * DAY
    end = today + DAY
    rows = buckets(store, scope, start - days * DAY, end)        # this span and the one before, in one query
    current = [r for r in rows if r["start"] >= start]
    before = [r for r in rows if r["start"] < start]
    bar = DAY if days > 7 else HOUR
    bars: dict[int, list] = {}
    grid: dict[tuple[int, int], list] = {}
    for r in current:
        key = _local_day(r["start"], tz_minutes) if bar == DAY else r["start"]
        bars.setdefault(key, []).append(r)
        if r["size"] == HOUR:
            day = _local_day(r["start"], tz_minutes)
            grid.setdefault((day, (r["start"] - day) // HOUR), []).append(r)
    return {"scope": scope.describe(), "range": range_name, "from": start, "to": end, "bar_s": bar,
            "tz_minutes": tz_minutes, "now": now,
            "bars": [{"start": k, **figures(v)} for k, v in sorted(bars.items())],
            "totals": figures(current), "before": figures(before),
            "hour_of_day": [{"day": d, "hour": int(hr), **_cell(v)} for (d, hr), v in sorted(grid.items())],
            "ranking": ranking(store, scope, start, end)}


def _cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    f = figures(rows)
    return {"faces_in_view": f["faces_in_view"], "dominant": f["dominant"], "negative": f["negative"]}


def ranking(store: Store, scope: Scope, start: float, end: float) -> list[dict[str, Any]]:
    """The cameras of the scope over the span, most negative first (which entrance reads most negative)."""
    devices = scope.devices(store)
    if devices == [] or scope.camera:
        return []
    where, args = ["start >= ?", "start < ?"], [int(start), int(end)]
    if devices is not None:
        where.append(f"device IN ({', '.join('?' for _ in devices)})")
        args += devices
    sums = ", ".join(f"SUM({c})" for c in COLUMNS[3:])
    rows = store.query(f"SELECT device, camera, COUNT(*), {sums} FROM fer_buckets WHERE {' AND '.join(where)} "
                       f"GROUP BY device, camera", args)
    names = {d: (n, loc) for d, n, loc in store.query("SELECT device, name, location FROM fer_devices")}
    out = []
    for r in rows:
        # the camera's buckets as one row: its covered seconds are its own, so cameras=1
        f = figures([dict(zip(COLUMNS, (0, HOUR, 1, *(float(x or 0) for x in r[3:]))))])
        name, location = names.get(r[0], ("", ""))
        out.append({"device": r[0], "camera": r[1], "name": name or r[0], "location": location,
                    "faces_in_view": f["faces_in_view"], "negative": f["negative"], "dominant": f["dominant"]})
    return sorted(out, key=lambda x: (-(x["negative"] or 0), x["device"], x["camera"]))


def status_changes(store: Store, device: str, start: float, end: float) -> list[dict[str, Any]]:
    """The availability changes of a device between start and end (online / offline / stopped)."""
    rows = store.query("SELECT epoch, state FROM fer_status WHERE device = ? AND epoch >= ? AND epoch < ? "
                       "ORDER BY epoch", (device, start, end))
    return [{"epoch": float(e), "state": s} for e, s in rows]


def to_csv(data: dict[str, Any]) -> str:
    """The bars of a view as CSV: one row per bar, rates and shares per emotion, times in UTC and epoch."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    labels = list(EMOTIONS) + (["other"] if any("other" in b["mix"] for b in data["bars"]) else [])
    writer.writerow(["start_utc", "start_epoch", "bar_s", "covered_s", "faces_in_view", "faces_seen",
                     "faces_seen_per_h", "negative_share"] + [f"{e}_share" for e in labels]
                    + [f"{e}_faces_in_view" for e in labels])
    for b in data["bars"]:
        when = datetime.fromtimestamp(b["start"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow([when, b["start"], data["bar_s"], b["covered_s"], _blank(b["faces_in_view"]),
                         b["faces_seen"], _blank(b["faces_seen_per_h"]), _blank(b["negative"])]
                        + [b["mix"].get(e, 0) for e in labels] + [b["rate"].get(e, 0) for e in labels])
    return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value
