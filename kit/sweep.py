"""A label sweep: how much does the teacher help when only a share of the questions keep their gold answer?

For each share and seed, the training questions are split (kit.features.split_by_question); two students of the
same shape and the same initial weights then train:
    with teacher       every window, the unlabelled ones with the distillation terms only (no task term)
    without teacher    the labelled windows alone, task loss only
and both are scored. Notebook 02 draws the result; the spread over seeds says how much of a gap is noise.

The budget: every arm trains for `rounds` rounds of the same size, each about as many windows as there are
training windows (`len(features)`): one pass over them for the teacher's arm (and for the arm without a teacher at
100%), and as many whole passes over its few labelled windows as make up that size for the arm without a teacher at
a small share (`round_passes`). So both arms take about the same number of updates; validation F1 is measured after
every round (`validate`). The run's test F1 is that of its best round by validation F1 (`best_round`; the model
kit.train.train keeps in its out_dir), so a run that starts to overfit its few labelled windows is read at its peak,
the way one would choose the checkpoint to deploy. Whether it had converged: `status` (see `convergence`). Each
run's row goes to `<out_dir>/sweep.json`.

    rows = label_sweep(teacher, features, cfg, "runs/demo", fractions=[0.05, 1.0], seeds=[0, 1, 2], layers=3,
                       rounds=4, pad_id=tok.pad_token_id, evaluate=score, validate=score_validation)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .distill import distill
from .features import split_by_question
from .layermap import LayerMap
from .models import load_qa_model
from .student import build_student
from .train import TrainConfig, planned_updates, train

ARMS = ("with teacher", "without teacher")


def sweep_layers_for(teacher, layers: int) -> list[int]:
    """The teacher layers the sweep's students copy: the top layer of each of `layers` equal blocks."""
    n = teacher.config.num_hidden_layers
    return [round((i + 1) * n / layers) - 1 for i in range(layers)]


def sweep_name(arm: str, fraction: float, seed: int, first_seed: int) -> str:
    """The run's folder: the first seed's pair is named as summary entries (student_2pct, baseline_2pct)."""
    pct = f"{100 * fraction:g}pct"
    if seed == first_seed:
        return f"{'student' if arm == 'with teacher' else 'baseline'}_{pct}"
    return f"sweep/{arm.replace(' ', '_')}_{pct}_seed{seed}"


def round_passes(n_windows: int, round_size: int) -> int:
    """Whole passes over an arm's `n_windows` windows that make up one round of at least `round_size` windows."""
    return max(1, math.ceil(round_size / max(1, n_windows)))


FLAT = 2.0   # F1: a last round that moves validation F1 less than this has flattened (100 validation questions
            # move by a few F1 between two checkpoints of the same run; the sweep's seeds spread about as much)


def convergence(log: list[dict], flat: float = FLAT) -> dict:
    """Validation F1 after each round of a run's log; its change over the last round (None: one round); the best
    round (1-based, the first of equal ones, as kit.train.keep_best saves it); and the run's status:
        peaked          its best round came before the last: more rounds did not help (the run is read at its best round)
        flat            the last round was its best and moved validation F1 by less than `flat`
        still rising    the last round added `flat` or more: its score is a lower bound (more rounds would tell)
    """
    raw = [e["f1"] for e in log if e.get("kind") == "eval"]
    f1 = [round(v, 2) for v in raw]
    if not raw:
        return {"validation_f1": [], "last_change": None, "best_round": None, "status": None}
    best = raw.index(max(raw)) + 1
    change = round(f1[-1] - f1[-2], 2) if len(f1) > 1 else None
    status = ("peaked" if best < len(raw) else "flat" if change is not None and abs(change) < flat
              else "still rising")
    return {"validation_f1": f1, "last_change": change, "best_round": best, "status": status}


def label_sweep(teacher, features, cfg: TrainConfig, out_dir, *, fractions, seeds, layers: int, rounds: int,
                pad_id: int, evaluate, validate, on_run=None, save_extra=None, **distill_options) -> list[dict]:
    """Train and score both arms for every (share, seed); return one row per run, also written to
    out_dir/sweep.json.

    evaluate(model) -> test metrics with "f1", scored once, on the run's best round by validation F1 (reloaded from
    its out_dir); validate(model) -> validation metrics with "f1", after every round. on_run(arm, fraction, seed,
    name, model, metrics) is called after each run with that model (notebook 02 records the smallest share's
    first-seed pair in its summary). distill_options go to kit.distill.distill (weights, temperature, attention)."""
    copied = sweep_layers_for(teacher, layers)
    rows = []
    for fraction in fractions:
        for seed in seeds:
            labelled, unlabelled = split_by_question(features, fraction, seed=seed)
            data = {"with teacher": features.select(labelled) + features.select(unlabelled).without_labels(),
                    "without teacher": features.select(labelled)}
            for arm in ARMS:
                passes = round_passes(len(data[arm]), len(features))
                windows = data[arm].select(list(range(len(data[arm]))) * passes)   # one round: `passes` passes
                torch.manual_seed(seed)   # both arms start from the same weights
                model = build_student(teacher, num_hidden_layers=layers, init="teacher_layers", teacher_layers=copied)
                name = sweep_name(arm, fraction, seed, seeds[0])
                arm_cfg = cfg.replace(out_dir=str(Path(out_dir) / name), epochs=rounds, max_updates=0, seed=seed,
                                      save_every=0, progress_every=-1)   # many short runs: no ETA lines
                if arm == "with teacher":
                    log = distill(teacher, model, windows, arm_cfg, pad_id=pad_id, layer_map=LayerMap.copied(copied),
                                  evaluate=validate, save_extra=save_extra, **distill_options)
                else:
                    model.set_attn_implementation("sdpa")   # no maps needed without a teacher
                    log = train(model, windows, arm_cfg, pad_id=pad_id, evaluate=validate, save_extra=save_extra)
                # train() kept the best round by validation F1 in the run's folder: read the run there
                model = load_qa_model(arm_cfg.out_dir, attn_implementation="sdpa").to(next(model.parameters()).device)
                metrics = evaluate(model)
                rows.append({"labelled share": fraction, "seed": seed, "arm": arm, "f1": round(metrics["f1"], 2),
                             "labelled questions": len({features.example_index[k] for k in labelled}),
                             "windows": len(data[arm]), "passes": passes * rounds,
                             "updates": planned_updates(windows, arm_cfg)[1], **convergence(log)})
                if on_run is not None:
                    on_run(arm, fraction, seed, name, model, metrics)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "sweep.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows
