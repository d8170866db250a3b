"""Sending one signed message to a device or a group and collecting each device's answer.

Shared by `fer-edge fleet push`, `rollback` and `push-model` (and bench/fleet.py).
"""
from __future__ import annotations

import json
import time

from edge.exitcodes import EXIT_FAILED, EXIT_OK
from edge.ops.fleet.operator import Fleet, FleetError
from edge.ops.fleet.outcome import NOT_RUNNING, Answer, Tracker
from edge.control.signing import SignatureError, new_serial, sign_message


def targets(fleet: Fleet, device: str | None, group: str | None) -> list[str]:
    """The devices a push goes to; FleetError when none is known."""
    if device:
        if device not in fleet.devices:
            known = ", ".join(sorted(fleet.devices)) or "none"
            raise FleetError(f"device {device!r} has never published under {fleet.prefix}/ (known: {known})")
        return [device]
    members = fleet.members(group or "")
    if not members:
        raise FleetError(f"no device lists group {group!r} in its config/state (device.groups); "
                         "`fer-edge fleet list` shows each device's groups")
    return members


def topic_of(fleet: Fleet, device: str | None, group: str | None, leaf: str) -> str:
    """``<prefix>/group/<g>/<leaf>`` or ``<prefix>/<device>/<leaf>``."""
    return f"{fleet.prefix}/group/{group}/{leaf}" if group else f"{fleet.prefix}/{device}/{leaf}"


def check_signing(fleet: Fleet, devices: list[str], secret: str, secret_env: str) -> None:
    """Refuse an unsigned push that devices would reject anyway (they say require_signature in config/state)."""
    if secret:
        return
    strict = [d for d in devices if fleet.devices[d].config.get("require_signature")]
    if strict:
        raise FleetError(f"{len(strict)} device(s) require signed messages ({', '.join(strict[:5])}"
                         f"{', ...' if len(strict) > 5 else ''}) and {secret_env} is not set: set it to the "
                         "fleet's signing secret")


def sign_body(body: bytes, secret: str, target: str) -> tuple[bytes, int | None]:
    """The signed message for ``target`` (device/<id> or group/<g>) and its serial; unsigned: (body, None).

    The signing is edge.control.signing's (replay-safe: signer, serial and target inside the signature).
    """
    if not secret:
        return body, None
    serial = new_serial()
    try:
        return sign_message(body, secret.encode(), target, serial), serial
    except SignatureError as exc:
        raise FleetError(str(exc)) from None


def target_of(device: str | None, group: str | None) -> str:
    """The signed target a message is meant for (it must arrive on that target's topic)."""
    return f"group/{group}" if group else f"device/{device}"


def send_and_wait(fleet: Fleet, topic: str, payload: bytes, devices: list[str], serial: int | None,
                  timeout: float, kind: str = "config/state") -> list[Answer]:
    """Publish ``payload`` on ``topic`` and collect each device's answer until all came or ``timeout``."""
    tracker = Tracker(devices, serial, kind)
    for device, detail in not_running(fleet, devices).items():
        tracker.not_running(device, detail)
    fleet.listeners.append(tracker.feed)
    try:
        tracker.sent()
        fleet.conn.publish(topic, payload, qos=1)
        fleet.wait(tracker.done, timeout)
    finally:
        fleet.listeners.remove(tracker.feed)
    return tracker.finish()


def not_running(fleet: Fleet, devices: list[str]) -> dict[str, str]:
    """The targets whose retained status says stopped or offline, with since when: a push is not retained, so
    they cannot take it now; the command says so at once instead of waiting its whole --timeout for them."""
    out = {}
    with fleet.cond:
        for device in devices:
            view = fleet.devices.get(device)
            state = view.state if view is not None else "unknown"
            if state in ("stopped", "offline"):
                # stopped: when it said so; offline (its last will, dated when that connection opened): last stats
                since = view.status.get("epoch") if state == "stopped" else view.stats.get("epoch") or view.last_seen
                when = time.strftime(" since %H:%M:%S", time.localtime(since)) if since else ""
                out[device] = (f"{state}{when}: it cannot take this change now (a push is not kept for it); "
                               "push again once it is online")
    return out


def report(answers: list[Answer], as_json: bool, what: str, notes: dict[str, list[str]] | None = None) -> int:
    """Print one line per device (and its ``notes``, indented under it); exit 1 unless every device took it."""
    notes = notes or {}
    if as_json:
        print(json.dumps([{**a.as_dict(), **({"notes": notes[a.device]} if a.device in notes else {})}
                          for a in answers], indent=1))
    else:
        for a in answers:
            when = f" after {a.after_s:.1f} s" if a.after_s is not None and a.outcome != NOT_RUNNING else ""
            detail = f": {a.detail}" if a.detail else ""
            print(f"{a.device}: {a.outcome}{when}{detail}")
            for line in notes.get(a.device, []):
                print(f"  {line}")
        for line in notes.get("", []):
            print(line)
        ok = sum(a.took_it for a in answers)
        print(f"{what}: {ok} of {len(answers)} device(s) took it")
    return EXIT_OK if all(a.took_it for a in answers) else EXIT_FAILED
