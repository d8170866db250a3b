"""The control plane of one service: which config runs, and every change to it.

:class:`ControlPlane` holds the local file's config (``base``), the config that runs (``running``:
the file with the remote layers on top), the layers and the serial record in the state directory,
the inbox of config messages and the change on probation; model updates are its
:class:`~edge.control.model_updates.ModelUpdates`. It changes the running service only through
:class:`~edge.control.runtime.Runtime` (build parts, swap them, reopen the sink, reconfigure the
processor), and it answers every change with one retained ``config/state``.

One message at a time, in the main thread (docs/config.md, "What happens to a message"):

1. a message over ``service.remote_config.max_payload_bytes`` was refused in paho's thread
   (:class:`TooLarge`), before it was copied or parsed;
2. :meth:`~edge.control.messages.FleetConfig.prepare` checks signature and serial (replays, duplicates),
   changes the layer its topic names and validates the result over the local file;
3. an unsigned message may not change what decides who may change the device or what leaves it
   (edge.security.PROTECTED_KEYS: remote config, MQTT destination and credentials, snapshots, preview, model);
4. the change is applied (edge.control.reconfigure); a change of the sink or the source then runs on
   probation (edge.control.probation) and is saved (``FleetConfig.commit``: the state directory,
   never the local file) only once it proved itself; otherwise the previous config comes back, running.

Every outcome is one retained ``config/state`` message with a ``status``: applied, probation,
duplicate, rejected or rolled_back.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from edge.config import AppConfig, ConfigError, LoadedConfig, load_file, load_text
from edge.control.inbox import ConfigInbox
from edge.control.layers import DEVICE_LAYER, LayerStore, default_layer_path
from edge.control.messages import Duplicate, FleetConfig, Prepared, config_state, layers_payload
from edge.control.model_updates import ModelUpdates
from edge.control.patch import refuse_lockout
from edge.control.probation import PASSED, WAITING, Probation, failure_text, needs_for
from edge.control.reconfigure import PersistError, apply_change, plan_change
from edge.control.runtime import ApplyError, Runtime
from edge.control.signing import REPLAY_FILE, ReplayGuard, Signed
from edge.control.storage import load_with_fallback
from edge.formatting import one_line
from edge.publish import EventSink
from edge.security import protected_keys_changed

log = logging.getLogger("edge.service")
STOPPED_DURING_PROBATION = "rolled back: the service stopped before the change proved itself"
DEFAULTS = "built-in defaults"   # where the config comes from when there is no file (`fer-edge run --demo`)
MAX_PENDING_MESSAGES = 8      # config messages waiting to be applied; more are rejected as 'busy'


class RollbackFailed(RuntimeError):
    """A change failed its probation and the previous config could not be put back: the service must restart."""


@dataclass(frozen=True)
class TooLarge:
    """A config message refused by size in paho's thread: only its length travels on."""

    size: int


class ControlPlane:
    """The configs of one service (file, running), its remote layers and serial record, and their changes."""

    def __init__(self, path: str | Path | None, runtime: Runtime, wake: Callable[[], None] = lambda: None) -> None:
        self.path = Path(path) if path is not None else None      # None: the built-in defaults, no file
        self.runtime = runtime
        self.wake = wake                             # the main loop: a message is waiting
        self.base: LoadedConfig | None = None        # the local file
        self.running: LoadedConfig | None = None     # what runs: the file + the remote layers
        self.fleet: FleetConfig | None = None
        self.guard: ReplayGuard | None = None
        self.probation: Probation | None = None
        self.models: ModelUpdates | None = None      # from the first subscription on
        self.inbox = ConfigInbox(MAX_PENDING_MESSAGES)
        self._sink: EventSink | None = None          # the sink last listened on

    @property
    def config(self) -> AppConfig:
        """The running config."""
        assert self.running is not None
        return self.running.config

    @property
    def busy(self) -> bool:
        """A change is on probation: further messages and reloads wait."""
        return self.probation is not None

    # ---- start-up ----

    def load(self) -> str | None:
        """Load the file, or else its newest good backup (then: why, as one line). ConfigError when none is usable.

        Until :meth:`open`, the file's config runs alone.
        """
        if self.path is None:
            self.base, error = load_text("", DEFAULTS), None
        else:
            self.base, error = load_with_fallback(self.path)
        self.running = self.base
        return error

    def open(self) -> str | None:
        """Put the saved remote layers on top of the loaded file; a start-up problem with them, if any.

        A damaged layer file is moved aside (the local file runs alone) rather than keeping the device down.
        """
        assert self.base is not None
        layers = default_layer_path()
        problem = None
        try:
            LayerStore(layers).load()
        except ValueError as exc:
            problem = f"{exc}: moved aside as {layers.name}.damaged; running without remote changes"
            log.error("%s", problem)
            os.replace(layers, layers.with_name(layers.name + ".damaged"))
        self.guard = ReplayGuard(layers.parent / REPLAY_FILE)
        self.fleet = FleetConfig(self.path or Path(DEFAULTS), LayerStore(layers), self.base.config.device.id, self.guard)
        self.running = self.fleet.running(self.base)
        return self._recover() or problem

    def _recover(self) -> str | None:
        """A change left on probation by a stop or crash was never saved; say so."""
        assert self.guard is not None
        pending = self.guard.pending()
        for stream in pending:
            self.guard.set_outcome(stream, STOPPED_DURING_PROBATION)
        if pending:
            log.error("%s (%s); running the previous config", STOPPED_DURING_PROBATION, ", ".join(pending))
            return f"{STOPPED_DURING_PROBATION} ({', '.join(pending)})"
        return None

    # ---- the transport ----

    def listen(self, sink: EventSink, cfg: AppConfig) -> None:
        """Take config messages and model updates from ``sink`` when ``cfg`` enables remote config."""
        self._sink = sink
        if not cfg.service.remote_config.enabled:
            return
        if not sink.remote:
            log.warning("service.remote_config.enabled, but MQTT is not configured (mqtt.host): "
                        "remote config is off")
            return
        assert self.fleet is not None and self.guard is not None
        for topic, layer in self.fleet.topics(cfg.mqtt.prefix, cfg.device.id, cfg.device.groups).items():
            sink.subscribe_topic(topic, partial(self.on_message, layer=layer))
        if self.models is None:
            self.models = ModelUpdates(cfg, default_layer_path().parent, self.guard, lambda: self.config.model,
                                       self._apply_model, self._publish_model_state)
        self.models.listen(sink, cfg)

    def on_message(self, payload: bytes, layer: str = DEVICE_LAYER) -> None:
        """paho's thread: hand a message for ``layer`` over (a too-large one unread); publishing here could deadlock."""
        too_large = len(payload) > self.config.service.remote_config.max_payload_bytes
        self.inbox.put(layer, TooLarge(len(payload)) if too_large else bytes(payload))
        self.wake()

    def _publish_model_state(self, payload: dict[str, Any]) -> None:
        # From paho's and the update thread too: straight to the sink, never under the service's sink
        # lock (a sink being closed under that lock waits for paho's thread).
        sink = self._sink
        if sink is not None and sink.remote:
            sink.publish_retained("model/state", payload)

    def publish_state(self, error: str | None, **fields: Any) -> None:
        """Retained ``config/state``: the running version, the last error (or null), and ``fields``."""
        layers = self.fleet.state.layers if self.fleet is not None else {}
        self.runtime.publish_retained("config/state", config_state(self.running, self.base, layers, error, **fields))
        # the file and each layer (secrets redacted) for `fer-edge fleet show` and the rollback report
        self.runtime.publish_retained("config/layers", layers_payload(self.running, self.base, layers))

    # ---- the main loop ----

    def handle_pending(self) -> None:
        """Apply the waiting config messages, one at a time (they wait while a change is on probation)."""
        dropped = self.inbox.dropped()
        if dropped:
            log.error("%d config messages dropped: more than %d were waiting", dropped, MAX_PENDING_MESSAGES)
            self.publish_state(f"busy: {dropped} config message(s) dropped unread; send again later",
                               status="rejected")
        while not self.busy:
            item = self.inbox.next()
            if item is None:
                return
            self.handle(item[1], item[0])

    def tick(self, now: float) -> None:
        """Switch to a model update that passed; end the probation when the change proved itself or its time is up.

        Raises RollbackFailed when a failed change cannot be undone.
        """
        if self.models is not None:
            self.models.tick()
        p = self.probation
        if p is None:
            return
        progress = self.runtime.progress()
        verdict = p.verdict(now, progress.connected, progress.frames)
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
            self.publish_state(None, status="applied", **_ids(prepared.signed), origin=layer)
            return
        self._roll_back(p, prepared, failure_text(p, verdict, progress.sink_error, progress.source_error))

    def reload(self) -> bool:
        """SIGHUP: load the file again; on any problem keep running what runs now. True when the new one runs."""
        assert self.running is not None and self.fleet is not None
        if self.path is None:
            log.warning("reload (SIGHUP): there is no config file (running the built-in defaults)")
            return False
        try:
            base = load_file(self.path)
            loaded = self.fleet.running(base)
        except ConfigError as exc:
            log.error("reload (SIGHUP) rejected, still running version %s:\n%s", self.running.version[:12], exc)
            self.publish_state(one_line(exc), status="rejected", origin="file")
            return False
        self.base = base
        origin = f"{self.path} (SIGHUP)"
        try:
            self.apply(loaded, origin)
            self.publish_state(None, status="applied", origin="file")
        except ApplyError as exc:
            log.error("config from %s not applied, still running version %s: %s", origin, self.running.version[:12],
                      exc)
            self.publish_state(f"not applied: {exc}", status="rejected", origin="file")
        return self.running is loaded

    # ---- one change ----

    def apply(self, new: LoadedConfig, origin: str, save: Callable[[], None] | None = None) -> list[str]:
        """Put ``new`` in place of what runs, then ``save()`` it (when given); the actions taken.

        ApplyError: the previous config still runs (PersistError: it was put back after ``save`` failed).
        """
        old = self.running
        assert old is not None and self.fleet is not None
        if new.version == old.version:
            log.info("config from %s is the one running (version %s): nothing to do", origin, new.version[:12])
            if save is not None:
                save()                        # the layers may differ while the result is the same
            actions: list[str] = []
        else:
            actions = apply_change(self.runtime, old.config, new.config, save)
            self.running = new
            log.info("config version %s from %s applied: %s", new.version[:12], origin,
                     ", ".join(actions) or "no change")
        self.fleet.device_id = new.config.device.id
        self.runtime.config_applied(new.config)
        return actions

    def _apply_model(self, patch: dict[str, Any], origin: str) -> None:
        # The switch is a change of the device's own layer (model.path, model.card), applied and saved
        # like any other: if the analyzer cannot be rebuilt with it, ApplyError and the old model runs.
        assert self.base is not None and self.fleet is not None
        prepared = self.fleet.prepare_local(DEVICE_LAYER, patch, self.base)
        self.apply(prepared.loaded, origin, save=partial(self.fleet.commit, prepared))
        self.publish_state(None, status="applied", origin="model update")

    def handle(self, payload: bytes | TooLarge, layer: str) -> None:
        """Check, apply (maybe on probation) and answer one message for ``layer`` (``device`` or ``group:<g>``)."""
        assert self.running is not None and self.base is not None and self.fleet is not None
        rc = self.running.config.service.remote_config
        if not rc.enabled:                              # turned off by an earlier message
            log.warning("config message ignored: service.remote_config.enabled is false")
            return
        if isinstance(payload, TooLarge):
            self._reject(f"config/set message: message too large: {payload.size} bytes > "
                         f"service.remote_config.max_payload_bytes ({rc.max_payload_bytes}); not read", None)
            return
        try:
            prepared = self.fleet.prepare(layer, payload, self.base, rc)
        except Duplicate as dup:
            log.info("config message: %s from %s already applied (serial %d): nothing to do",
                     dup.signed.target, dup.signed.signer, dup.signed.serial)
            self.publish_state(None, status="duplicate", **_ids(dup.signed), origin=layer)
            return
        except ConfigError as exc:
            self._reject(one_line(exc), getattr(exc, "signed", None), serial=getattr(exc, "serial", None),
                         origin=layer, detail=str(exc))
            return
        signed = prepared.signed
        old = self.running
        try:
            refuse_lockout(prepared.loaded)
        except ConfigError as exc:
            self._reject(one_line(exc), signed, origin=layer)
            return
        if signed is None:
            keys = protected_keys_changed(old.config, prepared.loaded.config)
            if keys:
                self._reject(f"config/set message: refused unsigned: it changes {', '.join(keys)}, which decide "
                             "who may change the device or what leaves it; send it signed (fer-edge config sign)",
                             None, origin=layer)
                return
        needs = needs_for(plan_change(old.config, prepared.loaded.config).changed)
        origin = f"config/set message ({layer})"
        try:
            self.apply(prepared.loaded, origin, None if needs else (lambda: self.fleet.commit(prepared)))
        except PersistError as exc:
            self._reject(f"not applied: cannot save it in the state directory: {exc.cause.strerror or exc.cause}",
                         signed, origin=layer)
            return
        except ApplyError as exc:
            self._reject(f"not applied: {exc}", signed, origin=layer)
            return
        if not needs:
            self.publish_state(None, status="applied", **_ids(signed), origin=layer)
            return
        self.probation = Probation(needs, time.monotonic(), rc.probation_s, self.runtime.progress().frames, old,
                                   prepared.loaded.version, {"prepared": prepared, "layer": layer})
        if signed is not None:
            self.guard.record(signed, "probation")     # a copy arriving meanwhile is a duplicate
        log.info("config version %s on probation for up to %g s: it must show %s", prepared.loaded.version[:12],
                 rc.probation_s, " and ".join(w for w, n in (("a broker connection", needs.broker),
                                                             ("a processed frame", needs.frames)) if n))
        self.publish_state(None, status="probation", **_ids(signed), origin=layer)

    def _roll_back(self, p: Probation, prepared: Prepared, text: str) -> None:
        if not text.startswith("rolled back"):
            text = f"rolled back: {text}"
        log.error("config version %s: %s", p.version[:12], text)
        try:
            self.apply(p.previous, "rollback")
        except ApplyError as exc:
            # Nothing of the change was saved: a restart runs the previous config.
            raise RollbackFailed(f"the previous config could not be put back ({exc}); exiting so that "
                                 "systemd restarts the service with it (nothing of the change was saved)") from None
        if prepared.signed is not None:
            self.guard.record(prepared.signed, text)
        self.publish_state(text, status="rolled_back", **_ids(prepared.signed), origin=p.context["layer"])

    def _reject(self, error: str, signed: Signed | None, serial: int | None = None, origin: str | None = None,
                detail: str | None = None) -> None:
        log.error("config message rejected:\n%s", detail or error)
        ids = _ids(signed) if signed is not None else {"serial": serial}
        self.publish_state(error, status="rejected", **ids, origin=origin)


def _ids(signed: Signed | None) -> dict[str, Any]:
    if signed is None:
        return {"serial": None, "signer": None, "target": None}
    return {"serial": signed.serial, "signer": signed.signer, "target": signed.target}
