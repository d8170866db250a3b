"""`fer-edge fleet show DEVICE` and the rollback report: a device's config, layer by layer, from its `config/layers`.

Each device publishes, retained on ``<prefix>/<device>/config/layers``, its local file's document and
each remote layer (groups in ``device.groups`` order, then its own), lowest first, with passwords,
secrets, tokens and URI credentials redacted, the effective document and the keys where it differs
from the file (edge/control/messages.py ``layers_payload``). This module only prints them.
"""
from __future__ import annotations

import json
from typing import Any

import yaml

from edge.config.docdiff import MISSING, differences, flatten
from edge.exitcodes import EXIT_OK
from edge.ops.fleet.operator import Fleet, FleetError
from edge.ops.fleet.outcome import Answer


def _value(v: Any) -> str:
    return v if v == MISSING else json.dumps(v)


def _layer_title(name: str) -> str:
    return "device (its own topic)" if name == "device" else f"group {name.partition(':')[2]}"


def show(fleet: Fleet, device: str, as_json: bool) -> int:
    """Print one device's effective config, its layers and its differences from the file."""
    view = fleet.devices.get(device)
    if view is None:
        known = ", ".join(sorted(fleet.devices)) or "none"
        raise FleetError(f"device {device!r} has never published under {fleet.prefix}/ (known: {known})")
    data = view.layers
    if not data:
        raise FleetError(f"{device} has published no config/layers (a fer-edge older than this command, or remote "
                         "config off): `fer-edge fleet list` shows its config version")
    if as_json:
        print(json.dumps(data, indent=1))
        return EXIT_OK
    where = f" @ {view.stats['location']}" if view.stats.get("location") else ""
    name = f"{view.name} ({device})" if view.name != device else device
    outcome = "" if view.config.get("ok") in (None, True) else f", last change REJECTED: {view.config.get('error')}"
    print(f"{name}{where}: {view.state}, config {str(data.get('version') or '?')[:12]}{outcome}")
    print("layers, lowest first (each merged over the one before):")
    print(f"  file    {data.get('source') or '(local file)'}: {len(flatten(data.get('file') or {}))} key(s)")
    layers = data.get("layers") or {}
    for layer in data.get("order") or []:
        keys = flatten(layers.get(layer) or {})
        text = "; ".join(f"{k}: {_value(v)}" for k, v in keys.items()) if keys else "(nothing)"
        print(f"  {_layer_title(layer)}: {text}")
    changed = data.get("changed") or []
    if changed:
        print("differs from the file:")
        for c in changed:
            by = f"   ({_layer_title(c['layer'])})" if c.get("layer") else ""
            print(f"  {c['key']}: {_value(c['file'])} -> {_value(c['now'])}{by}")
    else:
        print("the same as the file (no remote change in effect)")
    print("effective config (secrets redacted):")
    text = yaml.safe_dump(data.get("effective") or {}, sort_keys=False, default_flow_style=False)
    print("".join(f"  {line}\n" for line in text.splitlines()), end="")
    return EXIT_OK


def rollback_notes(fleet: Fleet, answers: list[Answer], before: dict[str, dict[str, Any]],
                   group: str | None) -> dict[str, list[str]]:
    """Per device: what the rollback undid (keys, from -> to), the version now running, and, for a device
    rollback that undid a group's change, which other members of that group keep it (their configs now differ)."""
    notes: dict[str, list[str]] = {}
    for a in answers:
        if not a.took_it:
            continue
        old, new = before.get(a.device) or {}, fleet.devices[a.device].layers or {}
        lines = [f"undid {k}: {_value(was)} -> {_value(now)}"
                 for k, was, now in differences(old.get("effective") or {}, new.get("effective") or {})]
        lines = lines or ["undid nothing that changes the config (the layers are as they were)"]
        lines.append(f"now running config {str(a.version or new.get('version') or '?')[:12]}")
        touched = [name for name in set(old.get("layers") or {}) | set(new.get("layers") or {})
                   if (old.get("layers") or {}).get(name) != (new.get("layers") or {}).get(name)]
        for layer in touched:
            if group is None and layer.startswith("group:"):
                g = layer.partition(":")[2]
                others = [d for d in fleet.members(g) if d != a.device]
                if others:
                    lines.append(f"NOTE: this undid a change of group {g} on {a.device} only; its other members "
                                 f"({', '.join(others)}) keep it, so the group now runs different configs: "
                                 f"`fer-edge fleet rollback --group {g}` undoes it on every member")
        notes[a.device] = lines
    return notes
