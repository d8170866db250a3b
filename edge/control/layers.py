"""Config layers of a fleet device: the local file < each of its groups < the device's own changes.

A device in groups ``[shop, eu]`` runs the merge of, lowest first::

    the local config file  <  group "shop"  <  group "eu"  <  the device's own layer

Each remote layer is a JSON Merge Patch document (edge.control.patch.merge_patch) that holds only
what was changed remotely on that layer. A ``config/set`` message changes exactly one layer: the one
its topic names (``<prefix>/group/<g>/config/set`` -> ``group:<g>``, ``<prefix>/<device>/config/set``
-> ``device``). Inside a layer a merge message merges into that layer, ``null`` removes a key from the
layer (the value from a lower layer shows through again), and ``# mode: replace`` replaces the layer.

Why layers and not one merged document: a group change must never undo a key that was set for this
one device, whatever order the two arrive in. Because the running config is always recomputed from
all layers, applying a group message and a device message gives the same result in either order
(messages are applied one at a time, in arrival order, by the service's main loop).

The layers and a short history of them (for ``fer-edge fleet rollback``) live in one JSON file in
the service's state directory, written atomically; the local config file is never written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config.app import AppConfig
from edge.control.patch import merge_patch
from edge.control.storage import write_config
from edge.state_dir import state_dir

DEVICE_LAYER = "device"
HISTORY = 10            # snapshots kept for rollback


def group_layer(group: str) -> str:
    """The layer name of a group (``group:<name>``)."""
    return f"group:{group}"


def layer_order(groups: list[str] | tuple[str, ...]) -> list[str]:
    """Layer names lowest first: the groups in ``device.groups`` order, then the device's own."""
    return [group_layer(g) for g in groups] + [DEVICE_LAYER]


def effective(base: dict[str, Any], layers: dict[str, dict[str, Any]], groups: list[str] | tuple[str, ...]) -> dict:
    """The document a device runs: ``base`` (the local file) with each layer merged on top, lowest first.

    ``device.groups`` is read from ``base`` merged with the device layer only (a group cannot move a
    device out of itself); layers of groups the device is not in are ignored.
    """
    doc = dict(base)
    for name in layer_order(groups):
        patch = layers.get(name)
        if patch:
            doc = merge_patch(doc, literal(patch))
    return keep_tags(base, doc)


def keep_tags(base: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A section a layer brought in without its ``type`` (``detector: {min_score: 0.5}`` where the file has no
    detector section) keeps the type it runs with now: the file's, else the default. So a section patch
    changes one key without restating the rest; a file that leaves ``type`` out is still told to say it."""
    for key, section in doc.items():
        if not isinstance(section, dict) or "type" in section or section == base.get(key):
            continue
        field = AppConfig.model_fields.get(key)
        default = field.get_default(call_default_factory=True) if field is not None else None
        tag = (base.get(key) or {}).get("type") if isinstance(base.get(key), dict) else None
        tag = tag or getattr(default, "type", None)
        if isinstance(tag, str):
            doc = {**doc, key: {"type": tag, **section}}
    return doc


def literal(value: Any) -> Any:
    """A remote layer's strings as literal text: each ``$`` doubled, so ``${VAR}`` is never expanded.

    Only the local file may refer to the environment (docs/config.md): a remote message that could
    write ``${FER_EDGE_MQTT_PASSWORD}`` into a value would read the secret back on config/state,
    in an error, or in a topic name.
    """
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def groups_of(base: dict[str, Any], layers: dict[str, dict[str, Any]]) -> list[str]:
    """``device.groups`` as the file and the device's own layer set it (groups cannot change membership)."""
    doc = merge_patch(dict(base), layers.get(DEVICE_LAYER) or {})
    value = (doc.get("device") or {}).get("groups") if isinstance(doc.get("device"), dict) else None
    return [str(g) for g in value] if isinstance(value, list) else []


@dataclass
class LayerState:
    """The remote layers, and the previous states (newest last) with which layer each change touched."""

    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)   # {"layer": name, "layers": {...}}

    def changed(self, layer: str, patch: dict[str, Any], mode: str = "merge") -> "LayerState":
        """A new state with one layer changed by a message; this state becomes its newest history entry."""
        new_layer = dict(patch) if mode == "replace" else merge_patch(self.layers.get(layer) or {}, patch)
        layers = {**self.layers, layer: _drop_nulls(new_layer)}
        if not layers[layer]:
            del layers[layer]
        history = (self.history + [{"layer": layer, "layers": self.layers}])[-HISTORY:]
        return LayerState(layers, history)

    def rolled_back(self, layer: str | None = None) -> "LayerState":
        """The state before the newest change (``layer`` None: to any layer; else: to that layer only).

        Rolling back a group restores that group's layer to what it was before its last change and
        leaves the other layers as they are now. Raises LookupError when there is nothing to go back to.
        """
        for i in range(len(self.history) - 1, -1, -1):
            entry = self.history[i]
            if layer is None or entry["layer"] == layer:
                history = self.history[:i]
                if layer is None:
                    return LayerState(dict(entry["layers"]), history)
                layers = dict(self.layers)
                previous = entry["layers"].get(layer)
                if previous:
                    layers[layer] = previous
                else:
                    layers.pop(layer, None)
                # later entries stay (they recorded other layers) but without this layer's newer content
                rest = [e for e in self.history[i + 1:] if e["layer"] != layer]
                return LayerState(layers, history + rest)
        what = "this device" if layer is None else layer
        raise LookupError(f"nothing to roll back: no earlier remote change of {what} is recorded")


def _drop_nulls(value: Any) -> Any:
    # a replace message may hold nulls; in a layer they mean "not set here"
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


class LayerStore:
    """The :class:`LayerState` of one device in ``<state dir>/fleet-layers.json`` (atomic writes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> LayerState:
        """The saved state; an empty one when there is no file yet. ValueError names a damaged file."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return LayerState()
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path}: unreadable fleet layer file ({exc}); move it away to start "
                             "from the local config file alone") from None
        if not isinstance(data, dict) or not isinstance(data.get("layers", {}), dict):
            raise ValueError(f"{self.path}: not a fleet layer file; move it away")
        return LayerState(data.get("layers", {}), list(data.get("history", [])))

    def save(self, state: LayerState) -> None:
        """Write the state atomically (a crash leaves the old or the new file, never a mix)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_config(self.path, json.dumps({"v": 1, "layers": state.layers, "history": state.history},
                                           indent=1, sort_keys=True) + "\n", backups=0)


def default_layer_path() -> Path:
    """``$STATE_DIRECTORY/fleet-layers.json`` under systemd, else ~/.local/state/fer-edge/."""
    return state_dir() / "fleet-layers.json"
