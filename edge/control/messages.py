"""Device side of fleet config: which topics a device listens on, and a message -> the config it must run.

A device subscribes to its own ``<prefix>/<device>/config/set`` and, for each group in
``device.groups``, to ``<prefix>/group/<group>/config/set``. :meth:`FleetConfig.prepare` checks a
message (size, signature, YAML), changes the one layer its topic names (edge.control.layers), and
validates the merge of all layers over the local file; nothing is written until the service has
applied the result and calls :meth:`FleetConfig.commit`. A message whose first comment line is
``# action: rollback`` puts back the layers as they were before the last change (of that group,
for a group topic; of any layer, for the device topic).
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config.docdiff import differences, flatten
from edge.config import ConfigError, Document, LoadedConfig, Problem, RemoteConfigConfig, parse_yaml, validate_document
from edge.events import iso_utc
from edge.control.layers import DEVICE_LAYER, LayerState, LayerStore, effective, group_layer, groups_of, layer_order
from edge.control.patch import message_mode
from edge.control.signing import ReplayGuard, Signed, SignatureError, has_signature, verify_message

SOURCE = "config/set message"
_ACTION = re.compile(rb"^#\s*action:\s*(\w+)\s*$", re.MULTILINE)


@dataclass
class Prepared:
    """A checked message: the config to run and the layer state to save once it runs."""

    loaded: LoadedConfig
    state: LayerState
    layer: str
    action: str                      # change | rollback
    signed: Signed | None = None

    @property
    def serial(self) -> int | None:
        return self.signed.serial if self.signed else None


class Duplicate(Exception):
    """A signed message already applied (a retained or group message arriving again): nothing to do."""

    def __init__(self, signed: Signed) -> None:
        super().__init__(f"serial {signed.serial} already applied")
        self.signed = signed


class FleetConfig:
    """The layered config of one device: the local file (never written) and the remote layers."""

    def __init__(self, file_path: str | Path, store: LayerStore, device_id: str,
                 guard: ReplayGuard | None = None) -> None:
        self.file_path = Path(file_path)
        self.device_id = device_id
        self.store = store
        self.guard = guard
        self.state = store.load()

    def topics(self, prefix: str, device: str, groups: list[str]) -> dict[str, str]:
        """config/set topic -> layer name, for the device and each of its groups."""
        out = {f"{prefix}/{device}/config/set": DEVICE_LAYER}
        out.update({f"{prefix}/group/{g}/config/set": group_layer(g) for g in groups})
        return out

    def running(self, base: LoadedConfig, env: Mapping[str, str] | None = None) -> LoadedConfig:
        """The config to run at start-up or after SIGHUP: the file with the saved layers on top.

        If the layers no longer validate over a changed file, the file alone runs (and ConfigError
        is not raised: the operator sees the file's version on config/state and can push again).
        """
        if not self.state.layers:
            return base
        doc = effective(base.document, self.state.layers, groups_of(base.document, self.state.layers))
        try:
            return validate_document(Document(doc, {}, f"{self.file_path} + fleet layers"), env)
        except ConfigError:
            return base

    def prepare(self, layer: str, payload: bytes, base: LoadedConfig, settings: RemoteConfigConfig,
                env: Mapping[str, str] | None = None) -> Prepared:
        """Check one message for ``layer`` over the file's config ``base``; ConfigError says why not.

        Raises :class:`Duplicate` for a signed message whose serial was already applied.
        """
        env = os.environ if env is None else env
        if len(payload) > settings.max_payload_bytes:
            raise _reject(f"message too large: {len(payload)} bytes > service.remote_config.max_payload_bytes "
                          f"({settings.max_payload_bytes})")
        signed = self._verify(payload, layer, settings, env)
        try:
            return self._prepare(layer, signed.body if signed else payload, base, env, signed)
        except ConfigError as exc:
            exc.serial = signed.serial if signed else None    # echoed on config/state: the push is matched by it
            raise

    def prepare_local(self, layer: str, patch: dict, base: LoadedConfig,
                      env: Mapping[str, str] | None = None) -> Prepared:
        """A change the device makes itself (a model update switching model.path): no message, no signature."""
        state = self.state.changed(layer, patch)
        doc = effective(base.document, state.layers, groups_of(base.document, state.layers))
        return Prepared(validate_document(Document(doc, {}, f"{layer} layer"), env), state, layer, "change", None)

    def _prepare(self, layer: str, body: bytes, base: LoadedConfig, env: Mapping[str, str],
                 signed: Signed | None) -> Prepared:
        groups = groups_of(base.document, self.state.layers)
        if layer != DEVICE_LAYER and layer.partition(":")[2] not in groups:
            raise _reject(f"this device is not in {layer} (device.groups: {groups or 'none'})")
        action = _action(body)
        if action == "rollback":
            try:
                state = self.state.rolled_back(None if layer == DEVICE_LAYER else layer)
            except LookupError as exc:
                raise _reject(str(exc)) from None
            lines: dict = {}
        else:
            patch = parse_yaml(body, SOURCE)
            if layer != DEVICE_LAYER and "device" in patch.data and isinstance(patch.data["device"], dict) \
                    and {"id", "groups"} & set(patch.data["device"]):
                raise _reject("a group message cannot set device.id or device.groups (send it to the device)")
            state = self.state.changed(layer, patch.data, message_mode(body))
            lines = patch.lines
        doc = effective(base.document, state.layers, groups_of(base.document, state.layers))
        loaded = validate_document(Document(doc, lines, SOURCE), env)
        return Prepared(loaded, state, layer, action, signed)

    def _verify(self, payload: bytes, layer: str, settings: RemoteConfigConfig,
                env: Mapping[str, str]) -> Signed | None:
        target = f"group/{layer.partition(':')[2]}" if layer != DEVICE_LAYER else f"device/{self.device_id}"
        return verify_payload(payload, target, settings, env, self.guard)

    def commit(self, prepared: Prepared) -> None:
        """The prepared config runs: save its layers (atomic write) and record its serial."""
        self.store.save(prepared.state)
        self.state = prepared.state
        if self.guard is not None and prepared.signed is not None:
            self.guard.record(prepared.signed)


def verify_payload(payload: bytes, target: str, settings: RemoteConfigConfig, env: Mapping[str, str],
                   guard: ReplayGuard | None) -> Signed | None:
    """Signature and serial of a message that arrived on ``target``'s topic; None for an accepted unsigned one.

    The rules of docs/config.md: a present signature is always checked when the secret is known;
    with require_signature an unsigned message, or a missing secret, is rejected. Raises ConfigError
    (one line), or :class:`Duplicate` for a serial already applied.
    """
    secret = env.get(settings.secret_env, "")
    if not has_signature(payload):
        if settings.require_signature:
            raise _reject("unsigned message rejected: service.remote_config.require_signature is on")
        return None
    if not secret:
        if settings.require_signature:
            raise _reject(f"cannot check signatures: environment variable {settings.secret_env} is not set "
                          "on the device")
        return None
    try:
        signed = verify_message(payload, secret.encode(), target)
        if guard is not None and guard.check(signed) == "duplicate":
            raise Duplicate(signed)
    except SignatureError as exc:
        raise _reject(str(exc)) from None
    return signed


def _action(body: bytes) -> str:
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith(b"#"):
            break
        m = _ACTION.match(line)
        if m:
            if m.group(1) != b"rollback":
                raise _reject(f"unknown action {m.group(1).decode(errors='replace')!r} (only '# action: rollback')")
            return "rollback"
    return "change"


def _reject(reason: str) -> ConfigError:
    return ConfigError([Problem((), reason)], SOURCE)


def state_payload(version: str | None, error: str | None, serial: int | None = None, origin: str | None = None,
                  groups: list[str] | None = None, require_signature: bool = False,
                  status: str | None = None) -> dict:
    """The retained ``config/state`` (schema edge/schemas/config_state.schema.json).

    ``serial`` and ``origin`` say which message this answers (fer-edge fleet push matches on them),
    ``groups`` and ``require_signature`` let the operator's tool find group members and refuse an
    unsigned push before sending it.
    """
    payload = {"v": 1, "ok": error is None, "version": version, "error": error, "ts": iso_utc(time.time()),
               "groups": list(groups or []), "require_signature": require_signature}
    if serial is not None:
        payload["serial"] = serial
    if origin is not None:
        payload["origin"] = origin
    if status is not None:
        payload["status"] = status
    return payload


def config_state(loaded: LoadedConfig | None, base: LoadedConfig | None, layers: dict[str, dict[str, Any]],
                 error: str | None, **fields: Any) -> dict[str, Any]:
    """The retained ``config/state`` payload of a running service (edge/schemas/config_state.schema.json).

    ``fields``: status, serial, signer, target, origin of the message it answers; ``groups`` and
    ``require_signature`` let fleet tools find group members and refuse an unsigned push early.
    """
    payload: dict[str, Any] = {"v": 1, "ok": error is None, "version": loaded.version if loaded else None,
                               "error": error, "ts": iso_utc(time.time())}
    if base is not None:
        payload["groups"] = groups_of(base.document, layers)
    if loaded is not None:
        payload["require_signature"] = loaded.config.service.remote_config.require_signature
    payload.update({k: v for k, v in fields.items() if v is not None or k in ("serial", "signer", "target")})
    return payload


SECRET_KEYS = ("password", "secret", "token")


def redacted(value: Any, key: str = "") -> Any:
    """A config document safe to publish: passwords, secrets and tokens replaced, credentials cut out of URIs."""
    if isinstance(value, dict):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if any(word in key.lower() for word in SECRET_KEYS) and value not in (None, ""):
        return "***"
    if isinstance(value, str) and "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = value.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return value


def layers_payload(loaded: LoadedConfig | None, base: LoadedConfig | None,
                   layers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The retained ``config/layers``: the file's document and each remote layer (secrets redacted), lowest first,
    for `fer-edge fleet show` (the effective config per layer and its difference from the file)."""
    file = base.document if base is not None else {}
    groups = groups_of(file, layers)
    running = effective(file, layers, groups)
    # which layer set each key that differs from the file: the highest layer that mentions it
    order = layer_order(groups)
    changed = []
    for key, was, now in differences(redacted(file), redacted(running)):
        by = next((name for name in reversed(order) if key in flatten(layers.get(name) or {})), None) or next(
            (name for name in reversed(order) if key.split(".")[0] in (layers.get(name) or {})), None)
        changed.append({"key": key, "file": was, "now": now, "layer": by})
    return {"v": 1, "version": loaded.version if loaded else None, "ts": iso_utc(time.time()),
            "source": base.source if base is not None else None, "order": order, "file": redacted(file),
            "layers": {k: redacted(v) for k, v in layers.items()}, "effective": redacted(running), "changed": changed}
