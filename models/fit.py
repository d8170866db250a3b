"""One training stage of a recipe, in plain Keras 3: TensorFlow here, PyTorch on a GPU machine.

A stage trains one network of models.student's family on a training pack (models.pack):

- targets per face: the FER+ vote distribution (CK+: the posed label, one-hot), the soft labels of
  teachers A, B and ref (each compared over the classes it has, the student's softmax renormalised
  over them), and optionally an earlier stage's network run live on the same augmented face
  (``kd``: knowledge distillation at temperature ``kd_temperature``; with ``kd_view: clean`` the
  teacher reads the same view without the camera degradation, so a degraded face is taught what the
  clean one shows);
- augmentation on the CPU (models.augment), seeded per batch;
- AdamW, warm-up then cosine decay over the stage's progress (steps, or seconds with a time budget);
- selection: the epoch with the best FER+ validation accuracy + ``ck_weight`` x held-out CK+ accuracy.

After every epoch the stage writes a checkpoint (weights, optimizer state, log); ``resume`` continues
from the last finished epoch and, without a time budget, ends with the same weights as a run that
was never interrupted. The maths is ``keras.ops`` only (no TensorFlow or PyTorch call).
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models import ckplus, ferplus, teachers
from models.augment import Augment, augment_batch
from models.pack import Pack

SOURCES = ("votes", "A", "B", "ref", "v2")
KD_VIEWS = ("same", "clean")
N_CLASSES = len(ferplus.CLASSES)


@dataclass
class Stage:
    """A recipe's ``stages:`` entry."""

    name: str
    widths: tuple[int, ...] = (32, 64, 128, 256)
    batchnorm: bool = True
    dropout: float = 0.4
    epochs: int = 30
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    weights: dict[str, float] = field(default_factory=lambda: {"votes": 1.0})
    kd_from: str | None = None           # name of an earlier stage whose network teaches live
    kd_temperature: float = 2.0
    kd_view: str = "same"                # "clean": the live teacher reads the face without the camera degradation
    ckplus_repeat: int = 8
    ck_vote_weight: float = 2.0
    ck_weight: float = 0.25
    degraded_weight: float = 0.0         # selection: + this x accuracy on degraded FER+ validation faces
    ck_seed: int = 0
    share: float = 1.0                   # this stage's share of a run's time budget
    init: str | None = None              # start weights: a float fer-edge .tflite (TensorFlow) or .weights.h5
    init_prior_correction: float = 0.0   # tau in the init model's output bias, taken out before training
    augment: Augment = field(default_factory=Augment)

    @classmethod
    def from_dict(cls, d: dict) -> Stage:
        d = dict(d)
        aug = d.pop("augment", {}) or {}
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        if "widths" in d:
            d["widths"] = tuple(d["widths"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"stage {d.get('name')!r}: unknown key(s) {', '.join(sorted(unknown))}")
        if d.get("kd_view", "same") not in KD_VIEWS:
            raise ValueError(f"stage {d.get('name')!r}: kd_view must be one of {', '.join(KD_VIEWS)}, not {d['kd_view']!r}")
        return cls(**d, augment=Augment(**aug))


def stage_dict(st: Stage) -> dict:
    """A stage as the plain dict a recipe file holds."""
    return asdict(st) | {"augment": asdict(st.augment)}


def training_set(pack: Pack, st: Stage) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Faces, (N, sources + 1, 8) targets (last row: is-CK+ flag) and the held-out CK+ faces."""
    ck = ckplus.CKPlus(pack.ckplus, pack.ckplus_labels, pack.ckplus_subjects)
    _, ck_va = ckplus.subject_split(ck, seed=st.ck_seed)
    rows = np.nonzero(~np.isin(pack.ckplus_subjects, np.unique(ck_va.subjects)))[0]
    rows = np.tile(rows, st.ckplus_repeat)
    n_fer = len(pack.train)
    y = np.zeros((n_fer + len(rows), len(SOURCES) + 1, N_CLASSES), np.float32)
    y[:n_fer, 0] = pack.train_votes
    y[n_fer:, 0] = np.eye(N_CLASSES, dtype=np.float32)[pack.ckplus_labels[rows]]
    for s, t in enumerate(SOURCES[1:], start=1):
        if st.weights.get(t, 0) > 0:
            y[:n_fer, s] = pack.soft[f"train_{t}"]
            y[n_fer:, s] = pack.soft[f"ckplus_{t}"][rows]
    y[n_fer:, -1, 0] = 1.0
    x = np.concatenate([pack.train, pack.ckplus[rows]])
    return x, y, (ck_va.images, ck_va.labels)


def make_loss(st: Stage):
    """Weighted cross-entropies over the sources (+ live distillation), in keras.ops."""
    from keras import ops

    masks = np.stack([np.ones(N_CLASSES, np.float32)] + [teachers.mask(t) for t in SOURCES[1:]])
    log_mask = np.where(masks > 0, 0.0, -1e9).astype(np.float32)          # (S, 8)
    w = np.array([st.weights.get(s, 0.0) for s in SOURCES], np.float32)
    kd_w = float(st.weights.get("kd", 0.0)) if st.kd_from else 0.0
    temp = float(st.kd_temperature)

    def loss(y_true, y_pred):
        log_mask_t, w_t = ops.convert_to_tensor(log_mask), ops.convert_to_tensor(w)   # on the backend's device
        y_pred = ops.cast(y_pred, "float32")
        logits = y_pred[:, :N_CLASSES]
        targets, is_ck = y_true[:, :-1], y_true[:, -1, 0]
        logp = ops.log_softmax(logits[:, None, :] + log_mask_t[None], axis=-1)        # (B, S, 8)
        ce = -ops.sum(targets * ops.where(log_mask_t[None] < 0, 0.0, logp), axis=-1)   # (B, S)
        sw = w_t[None] * ops.cast(ops.sum(targets, axis=-1) > 0, "float32")
        boost = ops.where(is_ck > 0.5, st.ck_vote_weight, 1.0)   # CK+'s FACS-validated label weighs more
        sw = ops.concatenate([sw[:, :1] * boost[:, None], sw[:, 1:]], axis=1)
        total = ops.sum(ce * sw, axis=1)
        norm = ops.sum(sw, axis=1)
        if kd_w:
            t_logits = y_pred[:, N_CLASSES:]
            p_t = ops.softmax(t_logits / temp, axis=-1)
            kd = -ops.sum(p_t * ops.log_softmax(logits / temp, axis=-1), axis=-1) * temp * temp
            total = total + kd_w * kd
            norm = norm + kd_w
        return ops.mean(total / ops.maximum(norm, 1e-6))

    return loss


_DATA: dict = {}


def _make_batch(epoch: int, s: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``s`` of an epoch, augmented with its own seed."""
    rng = np.random.default_rng([_DATA["seed"], epoch, s])
    return augment_batch(_DATA["x"][idx], rng, _DATA["augment"], clean_view=_DATA["clean_view"]), _DATA["y"][idx]


def degraded_copy(faces: np.ndarray, a: Augment, seed: int = 123) -> np.ndarray:
    """Validation faces as a shop camera would give them (models.augment.degrade, fixed seed)."""
    from models.augment import degrade

    rng = np.random.default_rng(seed)
    return np.stack([degrade(f.astype(np.float32), rng, a) for f in faces]).astype(np.uint8)


def _seed_generators(model) -> list:
    import keras

    gens = []
    for layer in model._flatten_layers():
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                gens.append(value)
    return gens


def _reseed(model, seed: int) -> None:
    """Dropout's random state from (seed, epoch), so that a resumed epoch draws what it drew before."""
    for i, gen in enumerate(_seed_generators(model)):
        gen.state.assign(np.array([seed, i], dtype=gen.state.dtype))


def accuracy(net, faces: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a float network on 48x48 uint8 faces."""
    if len(faces) == 0:
        return 0.0
    logits = net.predict(faces[..., None].astype(np.float32), batch_size=1024, verbose=0)
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())


def build(st: Stage, kd_net=None):
    """(network, model that training fits): with a live teacher the model outputs both logits."""
    import keras

    from models.student import build_student

    if st.init and str(st.init).endswith(".tflite"):     # a shipped model's float parent, BN folded (TensorFlow)
        from models.warmstart import student_from_tflite

        net = student_from_tflite(Path(st.init), dropout=st.dropout)
    else:
        net = build_student(st.widths, dropout=st.dropout, name=f"fer_{st.name}", batchnorm=st.batchnorm)
        if st.init:
            net.load_weights(st.init)
    if kd_net is None:
        return net, net
    kd_net.trainable = False
    if kd_net.name == net.name:     # both warm-started from a .tflite ("fer_warm"): one model needs unique names
        kd_net.name = f"{kd_net.name}_teacher"
    if st.kd_view == "clean":   # channel 0: the student's (degraded) view, 1: the same face clean, for the teacher
        inp = keras.Input((48, 48, 2), name="pixels_and_clean")
        student_in, teacher_in = inp[..., :1], inp[..., 1:]
    else:
        inp = keras.Input((48, 48, 1), name="pixels")
        student_in = teacher_in = inp
    both = keras.layers.Concatenate(name="with_teacher")(
        [net(student_in), keras.ops.stop_gradient(kd_net(teacher_in, training=False))])
    return net, keras.Model(inp, both, name=f"{st.name}_kd")


def uncorrect_start(net, st: Stage, prior: np.ndarray) -> None:
    """Take the start model's in-graph prior correction out: training runs on calibrated targets from a calibrated start."""
    if st.init and st.init_prior_correction:
        dense = net.get_layer("logits")
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel, bias + st.init_prior_correction * np.log(np.maximum(prior, 1e-4))])


def stage_score(net, st: Stage, val: tuple[np.ndarray, np.ndarray], ck: tuple[np.ndarray, np.ndarray],
                val_degraded: np.ndarray | None) -> dict:
    """The stage's selection score of ``net``: FER+ validation + ck_weight x CK+ + degraded_weight x degraded validation."""
    acc = accuracy(net, *val)
    ck_acc = accuracy(net, *ck)
    deg_acc = accuracy(net, val_degraded, val[1]) if val_degraded is not None else None
    score = acc + st.ck_weight * ck_acc + (st.degraded_weight * deg_acc if deg_acc is not None else 0.0)
    return {"val_acc": acc, "ck_val_acc": ck_acc, "val_degraded_acc": deg_acc, "score": score}


def _save_optimizer(opt, path: Path) -> None:
    np.savez(path, *[np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in opt.variables])


def _load_optimizer(opt, variables, path: Path) -> None:
    opt.build(variables)
    with np.load(path) as d:
        saved = [d[f"arr_{i}"] for i in range(len(d.files))]
    if len(saved) != len(opt.variables):
        raise ValueError(f"optimizer checkpoint {path} does not match this stage ({len(saved)} vs {len(opt.variables)} variables)")
    for var, value in zip(opt.variables, saved):
        var.assign(value)


def run_stage(st: Stage, pack: Pack, out: Path, seed: int, kd_net=None, time_budget_s: float = 0.0,
              resume: bool = False, workers: int = 4, limit_val: int = 0, log_every: int = 20) -> dict:
    """Train one stage into ``out`` (checkpoints, ``best.weights.h5``, ``log.json``); return the log.

    ``time_budget_s``: the first epoch's duration sets how many epochs fit the budget (at most
    ``st.epochs``); the schedule is then by steps, and the log records the epochs, so a rerun with
    that many epochs and no budget follows the same schedule. Augmentation runs in ``workers``
    threads (OpenCV releases the GIL; forked processes deadlock under the PyTorch backend).
    """
    import keras

    from models.student import count_macs

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "torch":   # fixed 48x48 shapes: let cuDNN pick its fastest kernels once
        import torch

        torch.backends.cudnn.benchmark = True
    x, y, (ck_x, ck_y) = training_set(pack, st)
    val_x, val_y = pack.valid, pack.valid_labels
    if limit_val:
        val_x, val_y = val_x[:limit_val], val_y[:limit_val]
    val_deg = degraded_copy(val_x, Augment()) if st.degraded_weight else None
    if kd_net is None and st.kd_from:
        st = Stage.from_dict(stage_dict(st) | {"kd_from": None})
    net, model = build(st, kd_net)
    steps = int(np.ceil(len(x) / st.batch))
    opt = keras.optimizers.AdamW(learning_rate=st.lr, weight_decay=st.weight_decay)
    model.compile(optimizer=opt, loss=make_loss(st))
    state_path, log_path = out / "state.json", out / "log.json"
    log: dict = {"stage": asdict(st) | {"augment": asdict(st.augment)}, "backend": keras.backend.backend(),
                 "params": int(net.count_params()), "macs_per_face": count_macs(net), "train_faces": len(x),
                 "epochs_planned": st.epochs, "epochs": [], "best": None}
    start_epoch, done, elapsed = 1, 0, 0.0
    uncorrect_start(net, st, pack.prior)
    if resume and state_path.exists():
        state = json.loads(state_path.read_text())
        net.load_weights(out / "last.weights.h5")
        _load_optimizer(opt, model.trainable_variables, out / "last.optimizer.npz")
        log, done, elapsed = state["log"], state["steps_done"], state["elapsed_s"]
        start_epoch = state["epoch"] + 1
        print(f"{st.name}: resuming after epoch {state['epoch']} ({done} steps)", flush=True)
    print(f"{st.name}: {st.widths} {log['params']:,} parameters, {log['macs_per_face'] / 1e6:.1f} M MACs per face, "
          f"{len(x)} training faces, backend {log['backend']}", flush=True)
    best = log["best"]["score"] if log["best"] else -1.0
    started = time.time() - elapsed
    warm = max(1, int(st.warmup_epochs * steps))

    def lr_at(step: int) -> float:
        if step < warm:
            return st.lr * (step + 1) / warm
        total = steps * log["epochs_planned"]
        frac = min(1.0, (step - warm) / max(1, total - warm))
        return st.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * frac)))

    _DATA.update(x=x, y=y, augment=st.augment, seed=seed, clean_view=kd_net is not None and st.kd_view == "clean")
    pool = ThreadPoolExecutor(max(1, workers))
    epoch = start_epoch - 1
    while epoch < log["epochs_planned"]:     # a while: the budget sets epochs_planned after epoch 1
        epoch += 1
        t0 = time.time()
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        _reseed(model, seed * 1000 + epoch)
        ahead: dict[int, object] = {}
        losses: list[float] = []
        for s in range(steps):
            for k in range(s, min(steps, s + 2 * workers + 2)):
                if k not in ahead:
                    ahead[k] = pool.submit(_make_batch, epoch, k, order[k * st.batch:(k + 1) * st.batch])
            if time_budget_s and time.time() - started > 1.15 * time_budget_s:
                break       # a hard stop: the estimate after epoch 1 was too optimistic
            xb, yb = ahead.pop(s).result()
            opt.learning_rate = lr_at(done)
            losses.append(float(np.asarray(model.train_on_batch(xb, yb))))
            done += 1
            if s % log_every == 0 or s == steps - 1:
                bar = "#" * int(30 * (s + 1) / steps)
                print(f"\r{st.name} epoch {epoch}/{log['epochs_planned']} [{bar:<30}] loss {np.mean(losses):.4f} "
                      f"lr {lr_at(done):.1e} {time.time() - started:.0f}s", end="", flush=True)
        for f in ahead.values():
            f.cancel()
        if time_budget_s and epoch == 1 and start_epoch == 1:
            fit = int(time_budget_s // max(time.time() - started, 1e-3))
            log["epochs_planned"] = max(2, min(st.epochs, fit))
            print(f"\n{st.name}: {time.time() - started:.0f}s per epoch: {fit} epochs fit the {time_budget_s:.0f}s "
                  f"budget, {log['epochs_planned']} planned" + (" (at least 2; the budget's hard stop ends it)"
                                                                 if fit < 2 else ""), flush=True)
        scored = stage_score(net, st, (val_x, val_y), (ck_x, ck_y), val_deg)
        acc, ck_acc, deg_acc, score = (scored[k] for k in ("val_acc", "ck_val_acc", "val_degraded_acc", "score"))
        row = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None, **scored,
               "seconds": time.time() - t0, "steps_done": done}
        log["epochs"].append(row)
        print(f"\r{st.name} epoch {epoch}/{log['epochs_planned']} loss {row['loss'] or 0:.4f} FER+ val {acc:.4f} "
              f"CK+ val {ck_acc:.4f}" + (f" degraded {deg_acc:.4f}" if deg_acc is not None else "") +
              f" ({row['seconds']:.0f}s, {time.time() - started:.0f}s in all)", flush=True)
        if score > best:
            best = score
            net.save_weights(out / "best.weights.h5")
            log["best"] = row
        net.save_weights(out / "last.weights.h5")
        _save_optimizer(opt, out / "last.optimizer.npz")
        log_path.write_text(json.dumps(log, indent=2))
        state_path.write_text(json.dumps({"epoch": epoch, "steps_done": done, "elapsed_s": time.time() - started,
                                          "log": log}))
        if time_budget_s and time.time() - started > 1.15 * time_budget_s:
            break
    pool.shutdown(cancel_futures=True)
    log["finished"] = True
    log_path.write_text(json.dumps(log, indent=2))
    return log


class KerasScores:
    """A Keras logits model as models.taiwanese wants it: ``scores(crops)`` -> softmax rows."""

    def __init__(self, model):
        self.model = model

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        logits = self.model.predict(np.stack(crops).astype(np.float32)[..., None], batch_size=256, verbose=0)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def load_net(st: Stage, weights: Path):
    """The stage's network with saved weights (any backend wrote them)."""
    net, _ = build(st)
    net.load_weights(weights)
    return net
