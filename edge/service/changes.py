"""Remote config messages on a running service: check, apply, probation, save, and the config/state answer.

One message at a time, in the main thread (docs/config.md, "What happens to a message"):

1. a message over ``service.remote_config.max_payload_bytes`` was refused in paho's thread
   (:class:`TooLarge`), before it was copied or parsed;
2. :meth:`~edge.fleet.device.FleetConfig.prepare` checks signature and serial (replays, duplicates),
   changes the layer its topic names and validates the result over the local file;
3. an unsigned message may not turn on what sends images off the device (edge.security);
4. the service applies it; a change of the sink or the source then runs on probation
   (edge.service.probation) and is saved (``FleetConfig.commit``: the state directory, never the local
   file) only once it proved itself; otherwise the previous config comes back, running.

Every outcome is one retained ``config/state`` message with a ``status``: applied, probation,
duplicate, rejected or rolled_back.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edge.config import ConfigError, LoadedConfig
from edge.fleet.device import Duplicate, FleetConfig, Prepared
from edge.fleet.layers import LayerStore, default_layer_path
from edge.formatting import one_line
from edge.service.probation import PASSED, WAITING, Probation, failure_text, needs_for
from edge.security import image_keys_turned_on
from edge.service.parts import ApplyError
from edge.events import iso_utc
from edge.fleet.layers import groups_of
from edge.service.reconfigure import PersistError, apply_change, plan_change
from edge.service.remote_config import refuse_lockout
from edge.signing import REPLAY_FILE, ReplayGuard, Signed

log = logging.getLogger("edge.service")
STOPPED_DURING_PROBATION = "rolled back: the service stopped before the change proved itself"


class RollbackFailed(RuntimeError):
    """A change failed its probation and the previous config could not be put back: the service must restart."""


@dataclass(frozen=True)
class TooLarge:
    """A config message refused by size in paho's thread: only its length travels on."""

    size: int


class Host(Protocol):
    """What :class:`RemoteChanges` needs of the service (edge.service.supervisor.Service)."""

    base: LoadedConfig | None          # the local file
    loaded: LoadedConfig | None        # what runs
    sink: Any                          # EventSink: MqttSink has .connected and .last_error
    parts: Any                         # Parts: the source's stats say why no frame came

    @property
    def frames(self) -> int:
        """Frames processed so far."""

    def apply_config(self, new: LoadedConfig, origin: str, save: Callable[[], None] | None = None) -> list[str]:
        """Put ``new`` in place (ApplyError: the old one runs); ``save()`` after, undone on OSError."""

    def publish_config_state(self, error: str | None, **fields: Any) -> None:
        """The retained config/state answer."""


def open_remote_changes(host: Host, config_path: Path, device_id: str) -> tuple["RemoteChanges", str | None]:
    """The remote side of a service: layers and serial record in the state directory; a start-up problem, if any.

    A damaged layer file is moved aside (the local file runs alone) rather than keeping the device down.
    """
    layers = default_layer_path()
    problem = None
    try:
        LayerStore(layers).load()
    except ValueError as exc:
        problem = f"{exc}: moved aside as {layers.name}.damaged; running without remote changes"
        log.error("%s", problem)
        os.replace(layers, layers.with_name(layers.name + ".damaged"))
    guard = ReplayGuard(layers.parent / REPLAY_FILE)
    return RemoteChanges(host, FleetConfig(config_path, LayerStore(layers), device_id, guard), guard), problem


class RemoteChanges:
    """The remote-config side of one service: the fleet layers, the serial record, the change on probation."""

    def __init__(self, host: Host, fleet: FleetConfig, guard: ReplayGuard) -> None:
        self.host = host
        self.fleet = fleet
        self.guard = guard
        self.probation: Probation | None = None

    @property
    def busy(self) -> bool:
        """A change is on probation: further messages and reloads wait."""
        return self.probation is not None

    def recover(self) -> str | None:
        """At start-up: a change left on probation by a stop or crash was never saved; say so."""
        pending = self.guard.pending()
        for stream in pending:
            self.guard.set_outcome(stream, STOPPED_DURING_PROBATION)
        if pending:
            log.error("%s (%s); running the previous config", STOPPED_DURING_PROBATION, ", ".join(pending))
            return f"{STOPPED_DURING_PROBATION} ({', '.join(pending)})"
        return None

    # ---- one message ----

    def handle(self, payload: bytes | TooLarge, layer: str) -> None:
        """Check, apply (maybe on probation) and answer one message for ``layer`` (``device`` or ``group:<g>``)."""
        host = self.host
        assert host.loaded is not None and host.base is not None
        rc = host.loaded.config.service.remote_config
        if not rc.enabled:                              # turned off by an earlier message
            log.warning("config message ignored: service.remote_config.enabled is false")
            return
        if isinstance(payload, TooLarge):
            self._reject(f"config/set message: message too large: {payload.size} bytes > "
                         f"service.remote_config.max_payload_bytes ({rc.max_payload_bytes}); not read", None)
            return
        try:
            prepared = self.fleet.prepare(layer, payload, host.base, rc)
        except Duplicate as dup:
            log.info("config message: %s from %s already applied (serial %d): nothing to do",
                     dup.signed.target, dup.signed.signer, dup.signed.serial)
            host.publish_config_state(None, status="duplicate", **_ids(dup.signed), origin=layer)
            return
        except ConfigError as exc:
            self._reject(one_line(exc), getattr(exc, "signed", None), serial=getattr(exc, "serial", None),
                         origin=layer, detail=str(exc))
            return
        signed = prepared.signed
        old = host.loaded
        try:
            refuse_lockout(prepared.loaded)
        except ConfigError as exc:
            self._reject(one_line(exc), signed, origin=layer)
            return
        if signed is None:
            keys = image_keys_turned_on(old.config, prepared.loaded.config)
            if keys:
                self._reject(f"config/set message: refused unsigned: {', '.join(keys)} would send images off "
                             "the device; send it signed (fer-edge config sign)", None, origin=layer)
                return
        needs = needs_for(plan_change(old.config, prepared.loaded.config).changed)
        origin = f"config/set message ({layer})"
        try:
            host.apply_config(prepared.loaded, origin, None if needs else (lambda: self.fleet.commit(prepared)))
        except PersistError as exc:
            self._reject(f"not applied: cannot save it in the state directory: {exc.cause.strerror or exc.cause}",
                         signed, origin=layer)
            return
        except ApplyError as exc:
            self._reject(f"not applied: {exc}", signed, origin=layer)
            return
        if not needs:
            host.publish_config_state(None, status="applied", **_ids(signed), origin=layer)
            return
        self.probation = Probation(needs, time.monotonic(), rc.probation_s, host.frames, old,
                                   prepared.loaded.version, {"prepared": prepared, "layer": layer})
        if signed is not None:
            self.guard.record(signed, "probation")     # a copy arriving meanwhile is a duplicate
        log.info("config version %s on probation for up to %g s: it must show %s", prepared.loaded.version[:12],
                 rc.probation_s, " and ".join(w for w, n in (("a broker connection", needs.broker),
                                                             ("a processed frame", needs.frames)) if n))
        host.publish_config_state(None, status="probation", **_ids(signed), origin=layer)

    def tick(self, now: float) -> None:
        """The main loop's pass: end the probation when the change proved itself or its time is up."""
        p = self.probation
        if p is None:
            return
        sink = self.host.sink
        verdict = p.verdict(now, bool(getattr(sink, "connected", False)), self.host.frames)
        if verdict == WAITING:
            return
        self.probation = None
        prepared: Prepared = p.context["prepared"]
        layer = p.context["layer"]
        if verdict == PASSED:
            try:
                self.fleet.commit(prepared)
            except OSError as exc:
                self._roll_back(p, prepared, f"cannot save it in the state directory: {exc.strerror or exc}")
                return
            log.info("config version %s proved itself and is saved", p.version[:12])
            self.host.publish_config_state(None, status="applied", **_ids(prepared.signed), origin=layer)
            return
        source = self.host.parts.source if self.host.parts is not None else None
        self._roll_back(p, prepared, failure_text(p, verdict, getattr(sink, "last_error", None),
                                                  source.stats.last_error if source is not None else None))

    def _roll_back(self, p: Probation, prepared: Prepared, text: str) -> None:
        if not text.startswith("rolled back"):
            text = f"rolled back: {text}"
        log.error("config version %s: %s", p.version[:12], text)
        try:
            self.host.apply_config(p.previous, "rollback")
        except ApplyError as exc:
            # Nothing of the change was saved: a restart runs the previous config.
            raise RollbackFailed(f"the previous config could not be put back ({exc}); exiting so that "
                                 "systemd restarts the service with it (nothing of the change was saved)") from None
        if prepared.signed is not None:
            self.guard.record(prepared.signed, text)
        self.host.publish_config_state(text, status="rolled_back", **_ids(prepared.signed),
                                       origin=p.context["layer"])

    def _reject(self, error: str, signed: Signed | None, serial: int | None = None, origin: str | None = None,
                detail: str | None = None) -> None:
        log.error("config message rejected:\n%s", detail or error)
        ids = _ids(signed) if signed is not None else {"serial": serial}
        self.host.publish_config_state(error, status="rejected", **ids, origin=origin)


def _ids(signed: Signed | None) -> dict[str, Any]:
    if signed is None:
        return {"serial": None, "signer": None, "target": None}
    return {"serial": signed.serial, "signer": signed.signer, "target": signed.target}



def put_in_place(service: Any, new: LoadedConfig, origin: str, save: Callable[[], None] | None = None) -> list[str]:
    """Put ``new`` in place of ``service.loaded`` (a Reconfigurable service), then ``save()`` it; the actions.

    ApplyError: the previous config still runs (PersistError: it was put back after ``save`` failed).
    """
    old = service.loaded
    assert old is not None
    if new.version == old.version:
        log.info("config from %s is the one running (version %s): nothing to do", origin, new.version[:12])
        if save is not None:
            save()                        # the layers may differ while the result is the same
        return []
    actions = apply_change(service, old.config, new.config, save)
    service.loaded = new
    log.info("config version %s from %s applied: %s", new.version[:12], origin, ", ".join(actions) or "no change")
    return actions


def config_state(loaded: LoadedConfig | None, base: LoadedConfig | None, changes: RemoteChanges | None,
                 error: str | None, **fields: Any) -> dict[str, Any]:
    """The retained ``config/state`` payload (edge/schemas/config_state.schema.json).

    ``fields``: status, serial, signer, target, origin of the message it answers; ``groups`` and
    ``require_signature`` let fleet tools find group members and refuse an unsigned push early.
    """
    layers = changes.fleet.state.layers if changes is not None else {}
    payload: dict[str, Any] = {"v": 1, "ok": error is None, "version": loaded.version if loaded else None,
                               "error": error, "ts": iso_utc(time.time())}
    if base is not None:
        payload["groups"] = groups_of(base.document, layers)
    if loaded is not None:
        payload["require_signature"] = loaded.config.service.remote_config.require_signature
    payload.update({k: v for k, v in fields.items() if v is not None or k in ("serial", "signer", "target")})
    return payload
