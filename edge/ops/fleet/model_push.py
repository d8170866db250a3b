"""`fer-edge fleet push-model`: send a model, its card and self-test faces; show what each device did.

The files go as retained chunks on ``<prefix>/model/blob/<sha256>/<index>`` (so a device that
subscribes a moment later still gets them), then a signed manifest naming them by sha256 goes to
the device or group (edge/control/ota.py has the device's side). When every device answered, or the
timeout passed, the chunks are cleared from the broker (``--keep-blobs`` leaves them).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

from edge.ops.fleet.operator import Fleet, FleetError
from edge.ops.fleet.push import check_signing, report, send_and_wait, sign_body, target_of, targets, topic_of

CHUNK_BYTES = 256 * 1024


def blob_topic(prefix: str, sha256: str, index: int) -> str:
    """Where chunk ``index`` of the file with this sha256 is retained."""
    return f"{prefix}/model/blob/{sha256}/{index}"


def publish_blob(fleet: Fleet, data: bytes) -> dict:
    """Publish ``data`` as retained chunks; return its manifest entry (sha256, size, chunks)."""
    sha = hashlib.sha256(data).hexdigest()
    n = max(1, math.ceil(len(data) / CHUNK_BYTES))
    for i in range(n):
        fleet.conn.publish(blob_topic(fleet.prefix, sha, i), data[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES],
                           qos=1, retain=True)
    return {"sha256": sha, "size": len(data), "chunks": n}


def clear_blob(fleet: Fleet, entry: dict) -> None:
    """Remove a blob's retained chunks (an empty retained message deletes one)."""
    for i in range(entry["chunks"]):
        fleet.conn.publish(blob_topic(fleet.prefix, entry["sha256"], i), b"", qos=1, retain=True)


def read_update(model_path: str, card_path: str | None) -> tuple[bytes, dict]:
    """The model bytes and its card, checked against each other; FleetError names the problem."""
    try:
        data = Path(model_path).read_bytes()
    except OSError as exc:
        raise FleetError(f"cannot read {model_path}: {exc.strerror}") from None
    card_file = Path(card_path) if card_path else Path(model_path).with_suffix(".json")
    try:
        card = json.loads(card_file.read_text())
    except OSError as exc:
        raise FleetError(f"cannot read the model card {card_file}: {exc.strerror} (every model needs its card)") from None
    except ValueError as exc:
        raise FleetError(f"model card {card_file} is not JSON: {exc}") from None
    missing = [k for k in ("name", "version", "sha256", "classes", "input", "preprocessing") if k not in card]
    if missing:
        raise FleetError(f"model card {card_file} lacks {', '.join(missing)}")
    digest = hashlib.sha256(data).hexdigest()
    if card["sha256"] != digest:
        raise FleetError(f"{model_path}: sha256 {digest[:12]}... is not its card's ({str(card['sha256'])[:12]}...)")
    return data, card


def push_model(fleet: Fleet, args: argparse.Namespace, secret: str) -> int:
    """Publish the update, wait for model/state answers, print them; exit 1 unless every device applied it."""
    devices = targets(fleet, args.device, args.group)
    check_signing(fleet, devices, secret, args.secret_env)
    data, card = read_update(args.file, args.card)
    blobs = [publish_blob(fleet, data)]
    manifest: dict = {"v": 1, "card": card, "model": blobs[0]}
    if args.selftest:
        try:
            faces = Path(args.selftest).read_bytes()
        except OSError as exc:
            raise FleetError(f"cannot read {args.selftest}: {exc.strerror}") from None
        blobs.append(publish_blob(fleet, faces))
        manifest["selftest"] = blobs[-1]
    body = (json.dumps(manifest) + "\n").encode()
    payload, serial = sign_body(body, secret, target_of(args.device, args.group))
    try:
        answers = send_and_wait(fleet, topic_of(fleet, args.device, args.group, "model/set"),
                                        payload, devices, serial, args.timeout, kind="model/state")
    finally:
        if not getattr(args, "keep_blobs", False):
            for entry in blobs:
                clear_blob(fleet, entry)
    return report(answers, args.json, f"model {card['name']} {card['version']}")
