"""A label sweep: how much does the teacher help when only a share of the questions keep their gold answer?

For each share and seed, the training questions are split (kit.features.split_by_question); two students of the
same shape and the same initial weights then train for the same number of updates:
    with teacher       every window, the unlabelled ones with the distillation terms only (no task term)
    without teacher    the labelled windows alone, task loss only
and both are scored. Notebook 02 draws the result; the spread over seeds says how much of a gap is noise.

    rows = label_sweep(teacher, features, cfg, "runs/demo", fractions=[0.02, 1.0], seeds=[0, 1], layers=3,
                       updates=40, pad_id=tok.pad_token_id, evaluate=score)
"""
from __future__ import annotations

from pathlib import Path

import torch

from .distill import distill
from .features import split_by_question
from .layermap import LayerMap
from .student import build_student
from .train import TrainConfig, train

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


def label_sweep(teacher, features, cfg: TrainConfig, out_dir, *, fractions, seeds, layers: int, updates: int,
                pad_id: int, evaluate, on_run=None, save_extra=None, **distill_options) -> list[dict]:
    """Train and score both arms for every (share, seed); return one row per run.

    evaluate(model) -> metrics with "f1"; on_run(arm, fraction, seed, name, model, metrics) is called after each
    run (notebook 02 records the smallest share's first-seed pair in its summary). distill_options go to
    kit.distill.distill (weights, temperature, attention)."""
    copied = sweep_layers_for(teacher, layers)
    rows = []
    for fraction in fractions:
        for seed in seeds:
            labelled, unlabelled = split_by_question(features, fraction, seed=seed)
            data = {"with teacher": features.select(labelled) + features.select(unlabelled).without_labels(),
                    "without teacher": features.select(labelled)}
            run_cfg = cfg.replace(max_updates=updates, seed=seed, save_every=0)
            for arm in ARMS:
                torch.manual_seed(seed)   # both arms start from the same weights
                model = build_student(teacher, num_hidden_layers=layers, init="teacher_layers", teacher_layers=copied)
                name = sweep_name(arm, fraction, seed, seeds[0])
                arm_cfg = run_cfg.replace(out_dir=str(Path(out_dir) / name))
                if arm == "with teacher":
                    distill(teacher, model, data[arm], arm_cfg, pad_id=pad_id, layer_map=LayerMap.copied(copied),
                            save_extra=save_extra, **distill_options)
                else:
                    model.set_attn_implementation("sdpa")   # no maps needed without a teacher
                    train(model, data[arm], arm_cfg, pad_id=pad_id, save_extra=save_extra)
                model.set_attn_implementation("sdpa")       # maps were for training only
                metrics = evaluate(model)
                rows.append({"labelled share": fraction, "seed": seed, "arm": arm, "f1": metrics["f1"],
                             "labelled questions": len({features.example_index[k] for k in labelled})})
                if on_run is not None:
                    on_run(arm, fraction, seed, name, model, metrics)
    return rows
