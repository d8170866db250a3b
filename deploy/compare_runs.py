"""Compare the events of two `fer-edge run`s of the same input on two machines (deploy/check_arm64.sh).

    python deploy/compare_runs.py HOST.jsonl ARM64.jsonl [--label NAME]

Per camera, in order: the same event types, track ids and labels; boxes within BOX_TOL pixels; scores
within SCORE_TOL (a few steps of the int8 model's output, 1/256 each, after smoothing); summaries
with the same counts and faces, seconds within SECONDS_TOL. Ids, times, sequence numbers and the
process instance differ between any two runs and are not compared; the cameras' events may
interleave differently (their threads run at each machine's speed), so each camera is compared alone.
Exit code 0 equal within tolerance, 1 different, 2 unreadable input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BOX_TOL = 2.0          # pixels
SCORE_TOL = 0.02       # ~5 int8 output steps
SECONDS_TOL = 0.1


def read_events(path: Path) -> list[dict]:
    """The JSON event lines of a run's stdout."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def by_camera(events: list[dict]) -> dict[str, list[dict]]:
    """Events grouped by camera id, each group in its original order."""
    out: dict[str, list[dict]] = {}
    for event in events:
        out.setdefault(event.get("camera", ""), []).append(event)
    return out


def differences(a: dict, b: dict) -> tuple[list[str], float, float]:
    """What differs beyond tolerance between two events, and their largest box and score deviations."""
    problems = []
    for key in ("type", "track_id", "label"):
        if a.get(key) != b.get(key):
            problems.append(f"{key} {a.get(key)!r} != {b.get(key)!r}")
    box_dev = max((abs(x - y) for x, y in zip(a.get("box") or [], b.get("box") or [])), default=0.0)
    if (a.get("box") is None) != (b.get("box") is None) or box_dev > BOX_TOL:
        problems.append(f"box {a.get('box')} vs {b.get('box')}")
    sa, sb = a.get("scores") or {}, b.get("scores") or {}
    score_dev = max([abs(sa[k] - sb.get(k, 0.0)) for k in sa] +
                    [abs((a.get("score") or 0.0) - (b.get("score") or 0.0))], default=0.0)
    if set(sa) != set(sb) or score_dev > SCORE_TOL:
        problems.append(f"scores differ by {score_dev:.4f}")
    ma, mb = a.get("summary"), b.get("summary")
    if isinstance(ma, dict) and isinstance(mb, dict):
        if (ma.get("counts"), ma.get("faces")) != (mb.get("counts"), mb.get("faces")):
            problems.append(f"summary counts {ma.get('counts')}/{ma.get('faces')} vs {mb.get('counts')}/{mb.get('faces')}")
        secs_a, secs_b = ma.get("seconds") or {}, mb.get("seconds") or {}
        if set(secs_a) != set(secs_b) or any(abs(secs_a[k] - secs_b[k]) > SECONDS_TOL for k in secs_a):
            problems.append(f"summary seconds {secs_a} vs {secs_b}")
    return problems, box_dev, score_dev


def compare(host: list[dict], other: list[dict], label: str) -> bool:
    """Print one line per camera (and the first differences); True when every camera's events match."""
    same = True
    cams_h, cams_o = by_camera(host), by_camera(other)
    for camera in sorted(set(cams_h) | set(cams_o)):
        eh, eo = cams_h.get(camera, []), cams_o.get(camera, [])
        problems: list[str] = []
        box_max = score_max = 0.0
        if len(eh) != len(eo):
            problems.append(f"{len(eh)} events on the host, {len(eo)} on the other")
        for i, (a, b) in enumerate(zip(eh, eo)):
            found, box_dev, score_dev = differences(a, b)
            box_max, score_max = max(box_max, box_dev), max(score_max, score_dev)
            problems += [f"event {i} ({a.get('type')}): {p}" for p in found]
        types = ", ".join(f"{t} {sum(e['type'] == t for e in eh)}" for t in dict.fromkeys(e["type"] for e in eh))
        verdict = "equal" if not problems else "DIFFERENT"
        print(f"{label} camera {camera}: {len(eh)} events ({types}); max box deviation {box_max:.1f} px, "
              f"max score deviation {score_max:.4f}: {verdict}")
        for p in problems[:5]:
            print(f"  {p}")
        same &= not problems
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--label", default="run")
    args = parser.parse_args(argv)
    try:
        host, other = read_events(args.host), read_events(args.other)
    except (OSError, ValueError) as exc:
        print(f"compare_runs: cannot read the events: {exc}", file=sys.stderr)
        return 2
    if not host:
        print(f"compare_runs: {args.host} has no events", file=sys.stderr)
        return 1
    return 0 if compare(host, other, args.label) else 1


if __name__ == "__main__":
    sys.exit(main())
