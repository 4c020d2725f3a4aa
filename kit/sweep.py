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
the way one would choose the checkpoint to deploy. Whether it had converged: `status` (see `convergence`). A run
still rising after `rounds` rounds is trained again from the same start with twice the rounds, up to `max_rounds`
(`until_flat`): each run is trained until it is flat, or to the cap. Each run's row goes to `<out_dir>/sweep.json`.

    rows = label_sweep(teacher, features, cfg, "runs/demo", fractions=[0.05, 1.0], seeds=[0, 1, 2], layers=3,
                       rounds=3, max_rounds=6, pad_id=tok.pad_token_id, evaluate=score, validate=score_validation)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .device import device
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


def until_flat(train_rounds, rounds: int, max_rounds: int, flat: float = FLAT) -> tuple[list[dict], list[int]]:
    """Train a run until it is flat: train_rounds(r) trains the run for r rounds and returns its log. While the run
    is still rising (`convergence`), it is trained again, from the same start, with twice the rounds, never more than
    max_rounds (the cap); a run that peaked or flattened stops. Returns the last try's log and the rounds of every try:
    [3] for a run that settled in 3 rounds, [3, 6] for one still rising after 3 (with max_rounds 6 or more)."""
    tried = [rounds]
    log = train_rounds(rounds)
    while convergence(log, flat)["status"] == "still rising" and tried[-1] < max_rounds:
        tried.append(min(max_rounds, 2 * tried[-1]))
        log = train_rounds(tried[-1])
    return log, tried


def run_folder(name: str, rounds: int, first_rounds: int) -> str:
    """A try's folder: the first try keeps the run's name (sweep_name); a longer one adds its rounds
    (student_5pct_6rounds)."""
    return name if rounds == first_rounds else f"{name}_{rounds}rounds"


def train_arm(teacher, windows, cfg: TrainConfig, *, arm: str, seed: int, layers: int, copied: list[int],
              pad_id: int, validate, save_extra, dropout: float | None = None, **distill_options) -> list[dict]:
    """One try of one run: a fresh student, seeded so that both arms and every try start from the same weights, trained
    on `windows` for cfg.epochs rounds (with the teacher: kit.distill.distill; without: the task loss alone).
    `dropout`: the student's attention and hidden dropout (None: the teacher's)."""
    torch.manual_seed(seed)   # both arms start from the same weights
    rates = {} if dropout is None else dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = build_student(teacher, num_hidden_layers=layers, init="teacher_layers", teacher_layers=copied, **rates)
    if arm == "with teacher":
        return distill(teacher, model, windows, cfg, pad_id=pad_id, layer_map=LayerMap.copied(copied),
                       evaluate=validate, save_extra=save_extra, **distill_options)
    model.set_attn_implementation("sdpa")   # no maps needed without a teacher
    return train(model, windows, cfg, pad_id=pad_id, evaluate=validate, save_extra=save_extra)


def label_sweep(teacher, features, cfg: TrainConfig, out_dir, *, fractions, seeds, layers: int, rounds: int,
                pad_id: int, evaluate, validate, max_rounds: int = 0, on_run=None, save_extra=None,
                dropout: float | None = None, **distill_options) -> list[dict]:
    """Train and score both arms for every (share, seed); return one row per run, also written to
    out_dir/sweep.json.

    Each run trains `rounds` rounds and, while still rising, again with more, up to max_rounds (`until_flat`; 0: no
    more than `rounds`); its row is the last try's ("rounds", "updates", its validation F1 by round).
    evaluate(model) -> test metrics with "f1", scored once, on the run's best round by validation F1 (reloaded from
    its out_dir); validate(model) -> validation metrics with "f1", after every round. on_run(arm, fraction, seed,
    name, model, metrics, rounds) is called after each run with that model, its folder's name and its rounds
    (notebook 02 records the smallest share's first-seed pair in its summary). `dropout`: the students' attention and
    hidden dropout (None: the teacher's). distill_options go to kit.distill.distill (weights, temperature,
    attention)."""
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
                name = sweep_name(arm, fraction, seed, seeds[0])
                arm_cfg = lambda r: cfg.replace(out_dir=str(Path(out_dir) / run_folder(name, r, rounds)), epochs=r,
                                                max_updates=0, seed=seed, save_every=0, progress_every=-1)   # quiet
                log, tried = until_flat(
                    lambda r: train_arm(teacher, windows, arm_cfg(r), arm=arm, seed=seed, layers=layers, copied=copied,
                                        pad_id=pad_id, validate=validate, save_extra=save_extra, dropout=dropout,
                                        **distill_options),
                    rounds, max(rounds, max_rounds))
                # train() kept the best round by validation F1 in the run's folder: read the run there
                run_cfg = arm_cfg(tried[-1])
                model = load_qa_model(run_cfg.out_dir, attn_implementation="sdpa").to(device())   # where it trained
                metrics = evaluate(model)
                rows.append({"labelled share": fraction, "seed": seed, "arm": arm, "f1": round(metrics["f1"], 2),
                             "labelled questions": len({features.example_index[k] for k in labelled}),
                             "windows": len(data[arm]), "rounds": tried[-1], "passes": passes * tried[-1],
                             "updates": planned_updates(windows, run_cfg)[1], **convergence(log)})
                if on_run is not None:
                    on_run(arm, fraction, seed, run_folder(name, tried[-1], rounds), model, metrics, tried[-1])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "sweep.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


# ----------------------------------------------------------------------------- reading a sweep (notebook 02)
def share_summary(rows: list[dict]) -> dict[float, dict]:
    """Per labelled share (ascending): each arm's mean test F1 over seeds, the teacher's gain (the difference of the
    means) and the largest spread over seeds (max − min of one arm's F1, the larger of the two arms)."""
    f1 = {}
    for r in rows:
        f1.setdefault(r["labelled share"], {}).setdefault(r["arm"], []).append(r["f1"])
    out = {}
    for share in sorted(f1):
        mean = {arm: sum(v) / len(v) for arm, v in f1[share].items()}
        out[share] = {"F1 with teacher (mean)": mean["with teacher"], "F1 without (mean)": mean["without teacher"],
                      "gain from the teacher": mean["with teacher"] - mean["without teacher"],
                      "largest spread over seeds": max(max(v) - min(v) for v in f1[share].values())}
    return out


def convergence_report(rows: list[dict], rounds: int, max_rounds: int, flat: float = FLAT) -> str:
    """One paragraph on how the sweep's runs ended: how many were trained longer than `rounds` (`until_flat`), and
    how many peaked, flattened or were still rising (at the cap of max_rounds)."""
    count = lambda status: sum(r["status"] == status for r in rows)
    where = lambda r: f"{r['arm']} at {100 * r['labelled share']:g}%, seed {r['seed']}"
    longer = [r for r in rows if r["rounds"] > rounds]
    rising = [r for r in rows if r["status"] == "still rising"]
    text = (f"Convergence of {len(rows)} runs of {rounds} rounds, each still rising one trained again with twice the "
            f"rounds, up to {max(rounds, max_rounds)}: {len(longer)} trained longer"
            + "".join(f"{'; ' if i else ' ('}{where(r)}: {r['rounds']} rounds" for i, r in enumerate(longer))
            + (")" if longer else "") + f". In the end {count('peaked')} peaked (best round before the last: read "
            f"at it), {count('flat')} flat (last round their best, by less than {flat:g} F1), {len(rising)} still "
            "rising. ")
    if not rising:
        return text + "Every run had peaked or flattened."
    return (text + "Still rising at the cap, so their test F1 is a lower bound (raise sweep_max_rounds to see where "
            "they settle): " + ", ".join(f"{where(r)} ({r['last_change']:+.1f} in its last round)"
                                         for r in rising) + ".")


def gain_report(rows: list[dict]) -> list[str]:
    """The lines notebook 02 prints under the sweep's table: the teacher's gain at the smallest and the largest
    share, whether each share's gain is larger than the spread over seeds, and whether each arm rises with the share."""
    summary, seeds = share_summary(rows), {r["seed"] for r in rows}
    shares, low = sorted(summary), min(summary)
    gain = {s: v["gain from the teacher"] for s, v in summary.items()}
    spread = {s: v["largest spread over seeds"] for s, v in summary.items()}
    n_low = max(r["labelled questions"] for r in rows if r["labelled share"] == low)
    lines = [f"With {100 * low:g}% of the labels ({n_low} labelled questions) the teacher adds {gain[low]:+.1f} F1 "
             f"(spread over seeds at most {spread[low]:.1f}); with all of them, {gain[max(shares)]:+.1f}."]
    for s in shares:
        lines.append(f"  {100 * s:g}% of the labels: the teacher's gain {gain[s]:+.1f} is " + (
            "measured with one seed (no spread to judge it by)" if len(seeds) < 2 else
            ("larger than" if abs(gain[s]) > spread[s] else "within")
            + f" the largest spread over seeds ({spread[s]:.1f})"))
    for arm, key in (("with teacher", "F1 with teacher (mean)"), ("without teacher", "F1 without (mean)")):
        m = [summary[s][key] for s in shares]
        lines.append(f"{arm}: F1 " + " → ".join(f"{v:.1f}" for v in m) + " as the labelled share grows: " + (
            "rises at every step (monotone)." if all(b - a > 0 for a, b in zip(m, m[1:])) else
            "does not rise at every step: see the spread over seeds and the last rounds' changes above."))
    return lines
