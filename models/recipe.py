"""One recipe, one command: every step that makes a shipped model, from a committed YAML file.

    python -m models.train --recipe models/recipes/3.0.yaml [--resume] [--time-budget MIN] [--ship]

Steps, each skipped when its output exists and ``--resume`` is given:

1. ``pack``: the training pack (models.pack): FER+ training and validation faces, CK+, and the
   teachers' soft labels (computed once, cached);
2. one step per ``stages:`` entry (models.fit), each of its ``variants`` trained in turn, or side
   by side with ``--parallel N``; the variant with the best validation score is the stage's winner;
3. ``interpolate`` (when the recipe has ``interpolate: {alphas: [...]}``): WiSE-FT, the weights of
   the last stage's winner mixed with those it started from, ``(1 - alpha) x start + alpha x
   tuned``; among the alphas whose FER+ validation accuracy is at most ``max_valid_drop`` below the
   start's (alpha 0: fine-tuning for degraded faces must not cost the clean ones), the one with the
   best stage score (FER+, held-out CK+, degraded FER+ validation) wins and the later steps use it
   (Wortsman et al. 2022: fine-tuning keeps more of the start's strengths this way). With
   ``soup: [stage, ...]`` the tuned weights are the uniform average of those stages' winners (a
   model soup, Wortsman et al. 2022: fine-tunes of one network from one start, e.g. one on clean and
   one on camera-degraded faces; 3.0.yaml). With
   ``choose_on: odd_performers`` alpha is instead chosen together with tau: the best accuracy on the
   odd-numbered Taiwanese performers among the (alpha, tau) within ``max_valid_drop`` of the start
   on FER+ validation (2.0.0's rule; models/recipes/2.0.yaml);
4. ``prior``: the prior-correction strength tau, chosen on the odd-numbered Taiwanese performers
   among taus within ``prior.floor`` of tau 0 on FER+ validation (skipped where the interpolate
   step chose it); alpha and tau are the only scalars the odd performers choose;
5. ``export``: int8 and float TFLite with tau in the output bias (models.export);
6. ``evaluate``: every card figure on held-out data into RUN/card.json, printed beside the shipped
   model's card (the reproduction check: FER+ validation within 0.5 points, Taiwanese all within 1.5);
7. ``ship`` (with ``--ship``): evaluate, then install the model and its card into edge/model/.

The training stages run under any Keras 3 backend; export needs TensorFlow (the ``train`` extra).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from models import fit, pack

STEPS = ("pack", "stages", "interpolate", "prior", "export", "evaluate", "ship")
_TOP_KEYS = {"name", "version", "seed", "teachers", "stages", "interpolate", "prior", "export"}
INTERPOLATED = "interpolated.weights.h5"     # in the run folder, written by the interpolate step
#: How the interpolate step chooses alpha: on validation (the stage score), or together with the
#: prior correction tau on the odd-numbered Taiwanese performers (2.0.0's rule).
CHOOSE_ON = ("validation", "odd_performers")


@dataclass
class Recipe:
    """A parsed recipe file."""

    path: Path
    name: str
    version: str
    seed: int
    teachers: tuple[str, ...]
    stages: list[fit.Stage]
    variants: dict[str, list[dict]]
    prior: dict
    export: dict
    interpolate: dict | None = None

    def candidates(self, stage: fit.Stage) -> list[tuple[str, fit.Stage]]:
        """(folder name, stage) of each variant: the stage as written first, then each override."""
        out = [(stage.name if not self.variants.get(stage.name) else f"{stage.name}@0", stage)]
        for i, over in enumerate(self.variants.get(stage.name, []), start=1):
            merged = _merge(fit.stage_dict(stage), over)
            out.append((f"{stage.name}@{i}", fit.Stage.from_dict(merged)))
        return out


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "weights" else v
    return out


def load(path: Path) -> Recipe:
    """Parse and check a recipe file; unknown keys are errors that name the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not a readable recipe ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list) or not raw["stages"]:
        raise ValueError(f"{path}: a recipe needs a 'stages:' list")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    stages, variants = [], {}
    for entry in raw["stages"]:
        entry = dict(entry)
        over = entry.pop("variants", None) or []
        try:
            st = fit.Stage.from_dict(entry)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        stages.append(st)
        variants[st.name] = over
    names = [s.name for s in stages]
    for st in stages:
        if st.kd_from and st.kd_from not in names[: names.index(st.name)]:
            raise ValueError(f"{path}: stage {st.name!r} distils from {st.kd_from!r}, which is not an earlier stage")
    interpolate = raw.get("interpolate")
    if interpolate is not None:
        alphas = interpolate.get("alphas") if isinstance(interpolate, dict) else None
        if set(interpolate if isinstance(interpolate, dict) else ()) - {"alphas", "max_valid_drop", "choose_on", "soup"} \
                or not alphas or not all(isinstance(a, (int, float)) and 0.0 <= a <= 1.0 for a in alphas):
            raise ValueError(f"{path}: interpolate: give {{alphas: [...], max_valid_drop: D}}, each alpha between 0 "
                             "(the start) and 1 (tuned)")
        if interpolate.get("choose_on", CHOOSE_ON[0]) not in CHOOSE_ON:
            raise ValueError(f"{path}: interpolate: choose_on is one of {', '.join(CHOOSE_ON)}")
        if not stages[-1].init:
            raise ValueError(f"{path}: interpolate needs a last stage that starts from a model (init)")
        _check_soup(path, interpolate.get("soup"), stages)
    recipe = Recipe(path, str(raw.get("name", "fer-edge-emotion")), str(raw.get("version", "0.0.0")),
                    int(raw.get("seed", 7)), tuple(raw.get("teachers") or ("A", "B", "ref")), stages, variants,
                    raw.get("prior") or {}, raw.get("export") or {}, interpolate)
    _check_teachers(recipe)
    return recipe


def _check_teachers(recipe: Recipe) -> None:
    """Every teacher a stage (or variant) learns from is in ``teachers:``: the pack holds only those."""
    for st in recipe.stages:
        for name, cand in recipe.candidates(st):
            missing = [t for t in fit.SOURCES[1:] if cand.weights.get(t, 0) > 0 and t not in recipe.teachers]
            if missing:
                raise ValueError(f"{recipe.path}: stage {name!r} learns from teacher(s) {', '.join(missing)}, which "
                                 f"'teachers:' does not list (the training pack holds only {', '.join(recipe.teachers)})")


def _check_soup(path: Path, soup, stages: list[fit.Stage]) -> None:
    """A soup names earlier stages of the last stage's network and start (weights can only be averaged there)."""
    if soup is None:
        return
    by_name = {s.name: s for s in stages}
    if not isinstance(soup, list) or len(soup) < 2 or not all(isinstance(n, str) for n in soup):
        raise ValueError(f"{path}: interpolate: soup is a list of two or more stage names")
    last = stages[-1]
    for name in soup:
        st = by_name.get(name)
        if st is None:
            raise ValueError(f"{path}: interpolate: soup names {name!r}, which is not a stage")
        if (st.widths, st.batchnorm, st.init) != (last.widths, last.batchnorm, last.init):
            raise ValueError(f"{path}: interpolate: soup stage {name!r} must have the last stage's widths, "
                             "batchnorm and init (only fine-tunes of one start can be averaged)")


def soup_stages(recipe: Recipe) -> list[fit.Stage]:
    """The stages whose winners the interpolate step averages (default: the last stage alone)."""
    names = (recipe.interpolate or {}).get("soup") or [recipe.stages[-1].name]
    return [next(s for s in recipe.stages if s.name == n) for n in names]


def _finished(folder: Path) -> bool:
    log = folder / "log.json"
    return log.exists() and json.loads(log.read_text()).get("finished", False)


def winner(run: Path, recipe: Recipe, stage: fit.Stage) -> tuple[str, fit.Stage, dict]:
    """The variant of a finished stage with the best validation score: (folder, stage, its best epoch)."""
    best = None
    for folder, st in recipe.candidates(stage):
        log_path = run / folder / "log.json"
        if not log_path.exists():
            continue
        row = json.loads(log_path.read_text())["best"]
        if row and (best is None or row["score"] > best[2]["score"]):
            best = (folder, st, row)
    if best is None:
        raise FileNotFoundError(f"stage {stage.name!r} has no trained variant under {run}")
    return best


def selection_text(recipe: Recipe, run: Path) -> str:
    """How each stage whose weights the model holds chose its epoch (the souped stages, else the last one)."""
    parts = []
    for stage in soup_stages(recipe):
        folder, st, best = winner(run, recipe, stage)
        n = len(json.loads((run / folder / "log.json").read_text())["epochs"])
        parts.append(f"{stage.name + ': ' if len(recipe.stages) > 1 else ''}epoch {best['epoch']} of {n}: best FER+ "
                     f"validation accuracy + {st.ck_weight} x held-out CK+ accuracy + {st.degraded_weight} x accuracy "
                     "on camera-degraded FER+ validation faces")
    return ("; ".join(parts) + " (the FER+ test split and the Taiwanese photographs are never used for training or "
            "selection)")


def train_stages(recipe: Recipe, run: Path, pack_dir: Path, *, resume: bool, budget_s: float, parallel: int,
                 workers: int, only: str | None = None, limit_val: int = 0) -> None:
    """Train every stage (or only ``only``, e.g. one variant in a child process)."""
    the_pack = pack.read(pack_dir)
    run.mkdir(parents=True, exist_ok=True)
    for st in recipe.stages:
        cands = recipe.candidates(st)
        stage_budget = budget_s * st.share if budget_s else 0.0
        todo = [(f, s) for f, s in cands if (only is None or f == only) and not (resume and _finished(run / f))]
        if todo and only is None and parallel > 1 and len(todo) > 1:
            _train_side_by_side(recipe, run, pack_dir, todo, resume, stage_budget, max(1, workers // len(todo)),
                                limit_val)
        elif todo:
            kd_net = _kd_net(recipe, run, st)
            share = stage_budget if only is not None else stage_budget / max(1, len(todo))
            for folder, cand in todo:
                fit.run_stage(cand, the_pack, run / folder, seed=recipe.seed, kd_net=kd_net, time_budget_s=share,
                              resume=resume, workers=workers, limit_val=limit_val)
        if only is None:
            folder, _, row = winner(run, recipe, st)
            (run / f"{st.name}.winner.json").write_text(json.dumps({"variant": folder, "best": row}, indent=2))
            print(f"stage {st.name}: winner {folder} (FER+ val {row['val_acc']:.4f}, CK+ val {row['ck_val_acc']:.4f}, "
                  f"score {row['score']:.4f})", flush=True)
        elif any(f == only for f, _ in cands):
            return


def _kd_net(recipe: Recipe, run: Path, st: fit.Stage):
    """The winner of the stage ``st`` distils from, or None (then the stage trains without it)."""
    if not st.kd_from:
        return None
    kd_stage = next(s for s in recipe.stages if s.name == st.kd_from)
    try:
        folder, kd_st, _ = winner(run, recipe, kd_stage)
        return fit.load_net(kd_st, run / folder / "best.weights.h5")
    except (FileNotFoundError, OSError, ValueError) as exc:   # a failed teacher must not cost the student
        print(f"stage {st.name}: no {st.kd_from} to distil from ({exc}); training without it", flush=True)
        return None


def _train_side_by_side(recipe: Recipe, run: Path, pack_dir: Path, todo, resume: bool, budget_s: float,
                        workers: int, limit_val: int) -> None:
    import keras

    policy = keras.config.dtype_policy().name
    precision = policy if policy != "float32" else None
    """Each variant in its own process (a GPU is mostly idle under one small network's Python loop)."""
    procs = []
    for folder, _ in todo:
        cmd = [sys.executable, "-m", "models.train", "--recipe", str(recipe.path), "--run", str(run),
               "--steps", "stages", "--only", folder, "--pack", str(pack_dir),
               "--time-budget", str(budget_s / 60.0), "--workers", str(workers)]
        cmd += ["--resume"] if resume else []
        cmd += ["--val-limit", str(limit_val)] if limit_val else []
        cmd += ["--precision", precision] if precision else []
        with open(run / f"{folder}.stdout.log", "w") as log:   # the child keeps its own copy of the descriptor
            procs.append((folder, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())))
    for folder, proc in procs:
        if proc.wait() != 0:
            print(f"variant {folder} failed (exit {proc.returncode}); see {run / (folder + '.stdout.log')}", flush=True)


def final_weights(recipe: Recipe, run: Path) -> tuple[fit.Stage, Path]:
    """(stage, weights file) of the model the prior, export and ship steps use: the interpolated one, if any."""
    folder, st, _ = winner(run, recipe, recipe.stages[-1])
    if recipe.interpolate:
        path = run / INTERPOLATED
        if not path.exists():
            raise FileNotFoundError(f"{path}: the recipe interpolates; run its 'interpolate' step first")
        return st, path
    return st, run / folder / "best.weights.h5"


def interpolate_step(recipe: Recipe, run: Path, pack_dir: Path, limit_val: int = 0, data_dir: Path | None = None) -> dict:
    """WiSE-FT: score each alpha of the recipe, save the chosen mixture (see the module docstring).

    ``choose_on: odd_performers`` chooses alpha together with tau (written to prior.json) on the
    odd-numbered Taiwanese performers, as 2.0.0 was made; ``data_dir`` is then the shared data folder.
    """
    folder, st, _ = winner(run, recipe, recipe.stages[-1])
    if not st.init:
        raise ValueError(f"{recipe.path}: interpolate needs a last stage that starts from a model (init)")
    the_pack = pack.read(pack_dir)
    start_net, _ = fit.build(st)
    fit.uncorrect_start(start_net, st, the_pack.prior)       # the very weights training started from
    start = start_net.get_weights()
    net = fit.load_net(st, run / folder / "best.weights.h5")
    soup, parts = [], []
    for part in soup_stages(recipe):
        part_folder, part_st, _ = winner(run, recipe, part)
        soup.append(part_folder)
        parts.append(fit.load_net(part_st, run / part_folder / "best.weights.h5").get_weights())
    tuned = [sum(ws[1:], ws[0]) / len(ws) for ws in zip(*parts)]     # one stage: its own weights
    alphas = sorted(set(recipe.interpolate["alphas"]) | {0.0})       # the start is the yardstick
    drop = float(recipe.interpolate.get("max_valid_drop", 0.0))
    if recipe.interpolate.get("choose_on") == "odd_performers":
        rows, best, rule = _alpha_tau_on_odd(recipe, net, start, tuned, alphas, drop, data_dir, limit_val)
        (run / "prior.json").write_text(json.dumps({"tau": best["tau"], "rule": rule, "chosen_with": "interpolate"},
                                                   indent=2))
    else:
        rows, best, rule = _alpha_on_validation(recipe, the_pack, st, net, start, tuned, alphas, drop, limit_val)
    net.set_weights(_mix(start, tuned, best["alpha"]))
    net.save_weights(run / INTERPOLATED)
    chosen = {"from": folder, "soup": soup, "start": str(st.init), "rows": rows, "alpha": best["alpha"], "best": best, "rule": rule}
    (run / "interpolate.json").write_text(json.dumps(chosen, indent=2))
    print(f"interpolate: alpha {best['alpha']} ({rule}) -> {run / INTERPOLATED}", flush=True)
    return chosen


def _mix(start: list, tuned: list, alpha: float) -> list:
    return [(1.0 - alpha) * a + alpha * b for a, b in zip(start, tuned)]


def _alpha_on_validation(recipe, the_pack, st, net, start, tuned, alphas, drop, limit_val):
    """(rows, best, rule): the best stage score among alphas within ``drop`` of the start's FER+ validation."""
    _, _, (ck_x, ck_y) = fit.training_set(the_pack, st)
    val = (the_pack.valid[:limit_val], the_pack.valid_labels[:limit_val]) if limit_val else \
        (the_pack.valid, the_pack.valid_labels)
    val_deg = fit.degraded_copy(val[0], fit.Augment()) if st.degraded_weight else None
    rows = []
    for alpha in alphas:
        net.set_weights(_mix(start, tuned, alpha))
        rows.append({"alpha": float(alpha), **fit.stage_score(net, st, val, (ck_x, ck_y), val_deg)})
        r = rows[-1]
        print(f"interpolate alpha {alpha:.2f}: FER+ val {r['val_acc']:.4f} CK+ val {r['ck_val_acc']:.4f}"
              + (f" degraded {r['val_degraded_acc']:.4f}" if r["val_degraded_acc"] is not None else "")
              + f" score {r['score']:.4f}", flush=True)
    floor = rows[0]["val_acc"] - drop
    best = max([r for r in rows if r["val_acc"] >= floor - 1e-9], key=lambda r: r["score"])
    rule = ("best stage score (FER+ validation + ck_weight x held-out CK+ + degraded_weight x degraded "
            f"FER+ validation) among the alphas with FER+ validation >= the start's - max_valid_drop ({floor:.4f})")
    return rows, best, rule


def _alpha_tau_on_odd(recipe, net, start, tuned, alphas, drop, data_dir, limit_val):
    """(rows, best, rule): the best (alpha, tau) on the odd-numbered Taiwanese performers among those whose
    FER+ validation (majority protocol, prior-corrected by tau) is within ``drop`` of the start's (alpha 0, tau 0)."""
    from models import ferplus, taiwanese
    from models.card import training_prior

    data_dir = data_dir or ferplus.default_data_dir()
    prior = np.array([training_prior(data_dir)[c] for c in ferplus.CLASSES], np.float32)
    x_val, y_val = ferplus.majority_subset(ferplus.load_split("valid", data_dir))
    if limit_val:
        x_val, y_val = x_val[:limit_val], y_val[:limit_val]
    photos = taiwanese.load_photos(data_dir / "faces" / "taiwanese_fed")
    found = [c for c in photos.crops if c is not None]
    taus = tuple(sorted({0.0, *(float(t) for t in recipe.prior.get("taus", taiwanese.TAUS))}))
    rows = []
    for alpha in alphas:
        net.set_weights(_mix(start, tuned, alpha))
        val_scores, odd_scores = fit.KerasScores(net).scores(list(x_val)), fit.KerasScores(net).scores(found)
        for tau in taus:
            rows.append({"alpha": float(alpha), "tau": tau,
                         "val_acc": taiwanese.corrected_accuracy(val_scores, y_val, prior, tau),
                         "odd_acc": taiwanese.odd_accuracy(odd_scores, photos, prior, tau)})
            print(f"interpolate alpha {alpha:.2f} tau {tau:.2f}: FER+ val {rows[-1]['val_acc']:.4f} "
                  f"odd performers {rows[-1]['odd_acc']:.4f}", flush=True)
    best, floor = choose_on_odd(rows, drop)
    rule = ("best accuracy on the odd-numbered Taiwanese performers among (alpha, tau) with FER+ validation "
            f">= the start's - max_valid_drop ({floor:.4f}); tau {best['tau']} chosen with it")
    return rows, best, rule


def choose_on_odd(rows: list[dict], drop: float) -> tuple[dict, float]:
    """(the chosen row, the validation floor): among rows (alpha, tau, val_acc, odd_acc) whose FER+ validation is
    at least the start's (alpha 0, tau 0) minus ``drop``, the best odd-performer accuracy; ties: better validation."""
    start = next(r for r in rows if r["alpha"] == 0.0 and r["tau"] == 0.0)
    floor = start["val_acc"] - drop
    best = max([r for r in rows if r["val_acc"] >= floor - 1e-9], key=lambda r: (r["odd_acc"], r["val_acc"]))
    return best, floor


def choose_prior(recipe: Recipe, run: Path, data_dir: Path, net) -> dict:
    """tau: best on the odd-numbered Taiwanese performers, within prior.floor of tau 0 on FER+ validation."""
    from models import ferplus, taiwanese
    from models.card import training_prior

    prior = np.array([training_prior(data_dir)[c] for c in ferplus.CLASSES], np.float32)
    va = ferplus.load_split("valid", data_dir)
    x_val, y_val = ferplus.majority_subset(va)
    val_scores = fit.KerasScores(net).scores(list(x_val))
    photos = taiwanese.load_photos(data_dir / "faces" / "taiwanese_fed")
    saved = taiwanese.TAUS
    taus = tuple(float(t) for t in recipe.prior.get("taus", saved))
    taiwanese.TAUS = taus
    try:
        tau = taiwanese.tune_prior(fit.KerasScores(net), photos, prior, valid=(val_scores, y_val),
                                   max_valid_drop=float(recipe.prior.get("floor", 0.01)))
    finally:
        taiwanese.TAUS = saved
    return {"tau": tau, "taus": list(taus), "floor": recipe.prior.get("floor", 0.01),
            "rule": "best accuracy on the odd-numbered Taiwanese performers among taus whose FER+ validation "
                    "accuracy is at most `floor` below tau 0's"}


def export_step(recipe: Recipe, run: Path, data_dir: Path, tau: float) -> dict[str, Path]:
    """int8 and float TFLite of the last stage's winner with tau in the output bias (needs TensorFlow)."""
    from models import export
    from models.card import base_card

    st, weights = final_weights(recipe, run)
    folder = weights.parent.name if weights.name == "best.weights.h5" else weights.name
    net = fit.load_net(st, weights)
    if tau:
        export.fold_prior_correction(net, tau, data_dir)
    model = export.inference_model(net, ("id",))
    paths = {"float": run / "model_float.tflite", "int8": run / "model_int8.tflite"}
    paths["float"].write_bytes(export.convert(model, int8=False))
    reps = export.representative_images(data_dir, n=int(recipe.export.get("calibration_faces", 500)))
    paths["int8"].write_bytes(export.convert(model, int8=True, representative=reps))
    for path in paths.values():
        path.with_suffix(".json").write_text(json.dumps(base_card(path, ("id",), recipe.version), indent=2))
    print(f"exported {paths['int8']} ({paths['int8'].stat().st_size / 1e6:.2f} MB) from {folder}, tau {tau}", flush=True)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m models.train --recipe FILE``: every step of a recipe (see the module docstring)."""
    import argparse

    from models import ferplus, teachers

    p = argparse.ArgumentParser(prog="python -m models.train --recipe FILE", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", type=Path, required=True, help="recipe file, e.g. models/recipes/3.0.yaml")
    p.add_argument("--run", type=Path, default=None, help="run folder (default models/runs/<recipe name>)")
    p.add_argument("--data", type=Path, default=ferplus.default_data_dir(), help="shared data folder (../shared/data)")
    p.add_argument("--teachers", type=Path, default=None, help="folder with the teacher files (else fetched, pinned)")
    p.add_argument("--pack", type=Path, default=None, help="training pack folder (default RUN/pack; built if missing)")
    p.add_argument("--steps", default="pack,stages,interpolate,prior,export,evaluate", help=f"comma-separated, of {', '.join(STEPS)}")
    p.add_argument("--ship", action="store_true", help="also evaluate, write the card and install into edge/model/")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last finished epoch")
    p.add_argument("--time-budget", type=float, default=0.0, metavar="MINUTES",
                   help="training time for all stages together (each stage gets its share; 0: by epochs)")
    p.add_argument("--parallel", type=int, default=1, help="train a stage's variants side by side (GPU machines)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)     # one variant, in a child process
    p.add_argument("--limit", type=int, default=0, help="tiny runs: first N FER+ faces only")
    p.add_argument("--val-limit", type=int, default=0, help="tiny runs: first N FER+ validation faces only")
    p.add_argument("--tau", type=float, default=None, help="skip the prior step and use this tau")
    p.add_argument("--precision", default=None, help="Keras dtype policy for training, e.g. mixed_bfloat16 on a GPU")
    args = p.parse_args(argv)
    if args.precision:
        import keras

        keras.config.set_dtype_policy(args.precision)
    try:
        recipe = load(args.recipe)
    except ValueError as exc:
        print(f"models.train: {exc}", file=sys.stderr)
        return 2
    steps = set(args.steps.split(",")) | ({"ship"} if args.ship else set())
    bad = steps - set(STEPS)
    if bad:
        print(f"models.train: unknown step(s) {', '.join(sorted(bad))} (steps: {', '.join(STEPS)})", file=sys.stderr)
        return 2
    run = args.run or Path("models/runs") / f"{recipe.name}-{recipe.version}"
    run.mkdir(parents=True, exist_ok=True)
    pack_dir = args.pack or run / "pack"
    if "pack" in steps and not (pack_dir / "pack.json").exists():
        pack.write(pack_dir, args.data, args.teachers, teachers.CACHE_DIR, limit=args.limit, use=recipe.teachers)
    if "stages" in steps:
        train_stages(recipe, run, pack_dir, resume=args.resume, budget_s=60 * args.time_budget,
                     parallel=args.parallel, workers=args.workers, only=args.only,
                     limit_val=args.val_limit)
        if args.only:
            return 0
    if "interpolate" in steps and recipe.interpolate and not (args.resume and (run / INTERPOLATED).exists()):
        interpolate_step(recipe, run, pack_dir, limit_val=args.val_limit, data_dir=args.data)
    tau = args.tau
    tau_with_alpha = bool(recipe.interpolate and recipe.interpolate.get("choose_on") == "odd_performers")
    if "prior" in steps and tau is None and not tau_with_alpha:
        st, weights = final_weights(recipe, run)
        chosen = choose_prior(recipe, run, args.data, fit.load_net(st, weights))
        (run / "prior.json").write_text(json.dumps(chosen, indent=2))
        tau = chosen["tau"]
    elif tau is None and (run / "prior.json").exists():
        tau = json.loads((run / "prior.json").read_text())["tau"]
    paths = None
    if "export" in steps:
        paths = export_step(recipe, run, args.data, float(tau or 0.0))
    if "evaluate" in steps or "ship" in steps:
        from models import card

        paths = paths or {"float": run / "model_float.tflite", "int8": run / "model_int8.tflite"}
        shipped = json.loads(card.SHIPPED_MODEL.with_suffix(".json").read_text())
        made, cards, report = card.recipe_card(recipe, run, paths, args.data, float(tau or 0.0),
                                              winner(run, recipe, recipe.stages[-1]), selection_text(recipe, run))
        (run / "card.json").write_text(json.dumps(made, indent=1))
        lines, _ = card.compare_cards(made, shipped)
        print("\n".join(lines), flush=True)
        if "ship" in steps:
            card.install(made, paths, cards, report)
    return 0
