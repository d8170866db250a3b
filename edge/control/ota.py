"""Model updates over the air, device side: download, check, self-test, then commit or roll back.

Transport (chunked over MQTT: nothing but the broker is needed, which suits sites with no other
way in). The operator (edge/ops/fleet/model_push.py) first publishes the model file, and optionally a
self-test set, as retained chunks on ``<prefix>/model/blob/<sha256>/<index>``, then a signed
manifest on ``<prefix>/<device>/model/set`` or ``<prefix>/group/<group>/model/set``::

    {"v": 1, "card": {...the model card...}, "model": {"sha256": ..., "size": ..., "chunks": 5},
     "selftest": {"sha256": ..., "size": ..., "chunks": 1}, "min_agreement": 0.8}

The manifest is signed like a config message (edge.control.signing: serial per signer and target), and it
names every blob by its sha256, so the chunks need no signature of their own. The device:

1. checks the signature and serial, and the card against the running model: same classes in the
   same order (events and dashboards depend on them), a sha256 equal to the blob's;
2. downloads the chunks (its own short-lived MQTT connection) and checks size and sha256;
3. writes model and card atomically into ``<state dir>/models/`` beside the models it had;
4. loads it (the card's sha256, input shape and class count are checked by EmotionModel);
5. runs the self-test (edge.control.selftest) against the running model on the same faces;
6. only then switches ``model.path`` (a change of the device's config layer, applied by the
   service: if the pipeline cannot be rebuilt with it, the running model stays).

The running model is never touched before step 6 and stays on disk after it, so a failure at any
step leaves the device classifying with the model it had. Every step is reported on the retained
``<prefix>/<device>/model/state`` (status downloading, testing, applied, rejected, rolled_back).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.classify import EmotionModel
from edge.config import ConfigError, RemoteConfigConfig
from edge.config.model import ModelConfig
from edge.config.mqtt import MqttConfig
from edge.events import iso_utc
from edge.control.messages import Duplicate, verify_payload
from edge.control.selftest import MIN_AGREEMENT, Faces, SelfTestError, run as run_selftest
from edge.interpreter import ModelError
from edge.publish.mqtt_client import make_client
from edge.publish.topics import Topics
from edge.control.signing import ReplayGuard, Signed

log = logging.getLogger("edge.fleet")
CHUNK_TIMEOUT_S = 120.0
MAX_MODEL_BYTES = 64 << 20
SELFTEST_FILE = "selftest.npz"


class UpdateError(RuntimeError):
    """An update that is refused or rolled back; ``status`` says which."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Blob:
    """One file of an update, named by its sha256."""

    sha256: str
    size: int
    chunks: int

    @classmethod
    def parse(cls, d: Any, what: str) -> "Blob":
        try:
            blob = cls(str(d["sha256"]).lower(), int(d["size"]), int(d["chunks"]))
        except (KeyError, TypeError, ValueError):
            raise UpdateError("rejected", f"manifest: {what} needs sha256, size and chunks") from None
        if len(blob.sha256) != 64 or not 0 < blob.size <= MAX_MODEL_BYTES or not 0 < blob.chunks <= 4096:
            raise UpdateError("rejected", f"manifest: {what} has a bad sha256, size or chunk count")
        return blob


@dataclass
class Manifest:
    card: dict[str, Any]
    model: Blob
    selftest: Blob | None
    min_agreement: float = MIN_AGREEMENT

    @classmethod
    def parse(cls, body: bytes) -> "Manifest":
        text = b"\n".join(line for line in body.splitlines() if not line.lstrip().startswith(b"#"))
        try:
            d = json.loads(text)
            card = d["card"]
            if not isinstance(card, dict):
                raise TypeError("card is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise UpdateError("rejected", f"manifest is not a model update ({exc})") from None
        model = Blob.parse(d.get("model"), "model")
        if str(card.get("sha256", "")).lower() != model.sha256:
            raise UpdateError("rejected", "manifest: the card's sha256 is not the model's")
        selftest = Blob.parse(d["selftest"], "selftest") if d.get("selftest") else None
        asked = d.get("min_agreement", MIN_AGREEMENT)
        if isinstance(asked, bool) or not isinstance(asked, (int, float)) or not 0.0 <= asked <= 1.0:
            raise UpdateError("rejected", "manifest: min_agreement must be a number from 0 to 1")
        # the device's own floor holds: a manifest can only make the self-test stricter
        return cls(card, model, selftest, max(MIN_AGREEMENT, float(asked)))


def download(cfg: MqttConfig, device: str, blob: Blob, timeout: float = CHUNK_TIMEOUT_S) -> bytes:
    """Fetch ``blob``'s retained chunks over a separate connection; UpdateError when incomplete or corrupt."""
    topics = Topics(cfg.prefix, device)
    client = make_client(cfg.model_copy(update={"client_id": f"fer-edge-{device}-ota"}), device, topics)
    client.will_clear()           # this connection says nothing about the device being online
    chunks: dict[int, bytes] = {}
    done = threading.Event()
    pattern = f"{cfg.prefix}/model/blob/{blob.sha256}/+"

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            c.subscribe(pattern, qos=1)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        try:
            index = int(msg.topic.rsplit("/", 1)[1])
        except ValueError:
            return
        if 0 <= index < blob.chunks and msg.payload:
            chunks[index] = bytes(msg.payload)
            if len(chunks) == blob.chunks:
                done.set()

    client.on_connect, client.on_message = on_connect, on_message
    client.connect_async(cfg.host, cfg.port or (8883 if cfg.tls.enabled else 1883), cfg.keepalive_s)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    if len(chunks) < blob.chunks:
        raise UpdateError("rejected", f"download incomplete: {len(chunks)} of {blob.chunks} chunks of "
                                      f"{blob.sha256[:12]} within {timeout:g} s (are they still retained?)")
    data = b"".join(chunks[i] for i in range(blob.chunks))
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != blob.size or digest != blob.sha256:
        raise UpdateError("rejected", f"download corrupt: {len(data)} bytes, sha256 {digest[:12]}, expected "
                                      f"{blob.size} bytes {blob.sha256[:12]}")
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Ready:
    """An update that passed every check: the service switches to it in its main loop."""

    patch: dict[str, Any]
    model_id: str
    signed: Signed | None
    selftest: dict[str, Any]
    faces: Faces
    started: float = field(default_factory=time.monotonic)


class ModelUpdater:
    """Receives model updates for one device; :meth:`tick` (main loop) switches to one that passed."""

    def __init__(self, device: str, mqtt: MqttConfig, state_dir: Path, settings: RemoteConfigConfig,
                 running: Callable[[], ModelConfig], apply: Callable[[dict[str, Any], str], None],
                 publish_state: Callable[[dict[str, Any]], None], guard: ReplayGuard | None = None,
                 env: Mapping[str, str] | None = None, chunk_timeout_s: float = CHUNK_TIMEOUT_S) -> None:
        self.device, self.mqtt, self.settings = device, mqtt, settings
        self.dir = Path(state_dir) / "models"
        self.running, self.apply, self.publish_state = running, apply, publish_state
        self.guard, self.env = guard, os.environ if env is None else env
        self.chunk_timeout_s = chunk_timeout_s
        self._model_id: str | None = None     # of the running model, as the update thread last loaded it
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(4)
        self._ready: queue.Queue[Ready] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="model-update", daemon=True)
        self._thread.start()

    def topics(self, groups: list[str]) -> dict[str, str]:
        """model/set topic -> signed target, for the device and each of its groups."""
        prefix = self.mqtt.prefix
        out = {f"{prefix}/{self.device}/model/set": f"device/{self.device}"}
        out.update({f"{prefix}/group/{g}/model/set": f"group/{g}" for g in groups})
        return out

    def on_message(self, target: str, payload: bytes) -> None:
        """paho's thread: hand the manifest to the update thread (a full inbox is refused)."""
        try:
            self._inbox.put_nowait((target, bytes(payload)))
        except queue.Full:
            self._state("rejected", error="busy: another model update is in progress; send it again later")

    def publish_running(self) -> None:
        """The retained model/state at start-up: which model runs."""
        self._state("running", model=self._running_id())

    # ---- the update thread ----

    def _work(self) -> None:
        while True:
            target, payload = self._inbox.get()
            signed = None
            try:
                signed = verify_payload(payload, target, self.settings.model_copy(update={"require_signature": True}),
                                        self.env, self.guard)     # model updates: signed only, whatever config says
                assert signed is not None
                self._ready.put(self._prepare(signed.body, signed))
            except Duplicate as dup:
                self._state("duplicate", serial=dup.signed.serial, model=self._running_id())
            except ConfigError as exc:
                reason = "; ".join(p.reason for p in exc.problems).replace(
                    "unsigned message rejected: service.remote_config.require_signature is on",
                    "unsigned model update rejected: model updates are accepted signed only "
                    "(fer-edge fleet push-model signs them), whatever require_signature says")
                log.error("model/set message rejected: %s", reason)
                self._state("rejected", error=f"model/set message: {reason}", serial=signed.serial if signed else None,
                            model=self._running_id())
            except UpdateError as exc:
                log.error("model update %s: %s", exc.status, exc)
                self._state(exc.status, error=f"{'rolled back: ' if exc.status == 'rolled_back' else ''}{exc}",
                            serial=signed.serial if signed else None, model=self._running_id())
            except Exception as exc:       # never let the update thread die: the device keeps its model
                log.exception("model update failed")
                self._state("rejected", error=f"internal error: {exc}", serial=signed.serial if signed else None)

    def _running_id(self) -> str | None:
        if self._model_id is None:
            try:
                self._model_id = self._load_running().model_id
            except (ModelError, OSError, ValueError):
                return None
        return self._model_id

    def _load_running(self) -> EmotionModel:
        # Its own copy: the pipeline thread's interpreter must not be called from this thread.
        model = EmotionModel.from_config(self.running())
        self._model_id = model.model_id
        return model

    def _prepare(self, body: bytes, signed: Signed | None) -> Ready:
        manifest = Manifest.parse(body)
        current = self._load_running()
        card = manifest.card
        if tuple(card.get("classes", ())) != current.classes:
            raise UpdateError("rejected", f"the card's classes {card.get('classes')} differ from the running "
                                          f"model's {list(current.classes)}")
        name = f"{_safe(card.get('name', 'model'), 'name')}-{_safe(card.get('version', '0'), 'version')}-" \
               f"{manifest.model.sha256[:12]}"
        path = self.dir / f"{name}.tflite"
        card_path = path.with_suffix(".json")
        if path.resolve().parent != self.dir.resolve():     # belt and braces: nothing outside <state>/models/
            raise UpdateError("rejected", f"the card's name {name!r} would leave the models folder")
        if path.resolve() == Path(current.path).resolve():     # never write over (or delete) what runs
            raise UpdateError("rejected", f"{name} is the model running already")
        serial = signed.serial if signed else None
        self._state("downloading", serial=serial, model=self._running_id())
        data = download(self.mqtt, self.device, manifest.model, self.chunk_timeout_s)
        faces = self._faces(manifest)
        write_atomic(card_path, (json.dumps(card, indent=1) + "\n").encode())
        write_atomic(path, data)
        self._state("testing", serial=serial, model=self._running_id())
        try:
            candidate = EmotionModel(path, card_path)
        except (ModelError, OSError, ValueError) as exc:
            _remove(path, card_path)
            raise UpdateError("rejected", f"the new model does not load: {exc}") from None
        result = run_selftest(candidate, faces, current, manifest.min_agreement)
        if not result.passed:
            _remove(path, card_path)
            raise UpdateError("rolled_back", f"{result.problem()}; still running {self._running_id()}")
        return Ready({"model": {"path": str(path), "card": str(card_path)}}, candidate.model_id, signed,
                     result.as_dict(), faces)

    def _faces(self, manifest: Manifest) -> Faces:
        kept = self.dir / SELFTEST_FILE
        try:
            if manifest.selftest is not None:
                return Faces.from_bytes(download(self.mqtt, self.device, manifest.selftest, self.chunk_timeout_s))
            if kept.exists():
                return Faces.from_bytes(kept.read_bytes())
        except SelfTestError as exc:
            raise UpdateError("rejected", str(exc)) from None
        raise UpdateError("rejected", "no self-test faces: send them with the update "
                                      "(fer-edge fleet push-model --selftest) the first time")

    # ---- the main loop ----

    def tick(self) -> None:
        """Switch to an update that passed (main thread: the service rebuilds its analyzer)."""
        while True:
            try:
                ready = self._ready.get_nowait()
            except queue.Empty:
                return
            serial = ready.signed.serial if ready.signed else None
            before = self._running_id()
            try:
                self.apply(ready.patch, "model update")
            except Exception as exc:        # ApplyError and anything else: the old model still runs
                _remove(Path(ready.patch["model"]["path"]), Path(ready.patch["model"]["card"]))
                self._state("rolled_back", error=f"rolled back: the pipeline could not switch: {exc}",
                            serial=serial, model=before)
                continue
            if self.guard is not None and ready.signed is not None:
                self.guard.record(ready.signed, "applied")
            write_atomic(self.dir / SELFTEST_FILE, ready.faces.to_bytes())    # the built-in set from now on
            self._model_id = ready.model_id
            self._state("applied", serial=serial, model=ready.model_id, previous=before, selftest=ready.selftest)
            log.info("model update applied: %s (was %s), self-test %s", ready.model_id, before, ready.selftest)

    def _state(self, status: str, **fields: Any) -> None:
        payload = {"v": 1, "ok": status not in ("rejected", "rolled_back"), "status": status, "error": None,
                   "ts": iso_utc(time.time()), "device": self.device}
        payload.update({k: v for k, v in fields.items() if v is not None})
        try:
            self.publish_state(payload)
        except Exception:                    # reporting must never stop an update or the service
            log.exception("cannot publish model/state")


_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def _safe(value: Any, what: str) -> str:
    """A card name or version usable in a file name: letters, digits, ``._+-``, no ``..``; else rejected."""
    text = str(value)
    if not _SAFE.fullmatch(text) or ".." in text:
        raise UpdateError("rejected", f"the card's {what} {text[:40]!r} is not a plain name (letters, digits, "
                                      f"'._+-', at most 64, no '/' or '..')")
    return text


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
