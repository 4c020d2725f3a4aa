"""kit.sweep: the budget rule (rounds of the same size, small labelled sets passed over many times), the
convergence record, the until-flat rule (a run still rising is trained again with more rounds, up to a cap), and
runs/<profile>/sweep.json with one row per share, arm and seed; and the report notebook 02 prints from its rows."""
import json

import pytest
import torch

from kit.sweep import (convergence, convergence_report, gain_report, label_sweep, round_passes, run_folder,
                       share_summary, until_flat)


def test_a_round_is_whole_passes_of_at_least_the_round_size():
    assert round_passes(400, 400) == 1          # the teacher's arm: one pass over every window
    assert round_passes(20, 400) == 20          # 5% of 400 questions: 20 passes make up one round
    assert round_passes(30, 400) == 14          # 14 × 30 = 420 ≥ 400 (13 passes would be 390)
    assert round_passes(500, 400) == 1
    assert round_passes(0, 400) == 400          # never a division by zero


def test_convergence_reads_the_eval_lines_of_a_log():
    log = [{"kind": "train", "loss": 3.0}, {"kind": "eval", "f1": 40.0}, {"kind": "train", "loss": 2.0},
           {"kind": "eval", "f1": 61.234}, {"kind": "eval", "f1": 62.0}]
    assert convergence(log) == {"validation_f1": [40.0, 61.23, 62.0], "last_change": 0.77, "best_round": 3,
                                "status": "flat"}
    assert convergence(log[:2]) == {"validation_f1": [40.0], "last_change": None, "best_round": 1,
                                    "status": "still rising"}     # one round says nothing about flattening


def test_convergence_status_peaked_flat_or_still_rising():
    evals = lambda *f1: [{"kind": "eval", "f1": v} for v in f1]
    assert convergence(evals(40.0, 55.0, 49.5))["status"] == "peaked"          # best at round 2 of 3
    assert convergence(evals(40.0, 55.0, 49.5))["best_round"] == 2
    assert convergence(evals(40.0, 55.0, 55.0))["best_round"] == 2             # the first of equal rounds (keep_best)
    assert convergence(evals(40.0, 55.0, 56.9))["status"] == "flat"            # +1.9 < 2
    assert convergence(evals(40.0, 55.0, 57.0))["status"] == "still rising"    # +2.0: not flat
    assert convergence(evals(40.0, 55.0, 57.0), flat=3.0)["status"] == "flat"
    assert convergence([{"kind": "train", "loss": 1.0}]) == {"validation_f1": [], "last_change": None,
                                                             "best_round": None, "status": None}


def test_sweep_writes_one_row_per_share_arm_and_seed(tiny, tmp_path):
    from kit.features import make_features
    from kit.models import load_qa_model
    from kit.train import TrainConfig
    _, examples, tok, _, model_dir = tiny
    teacher = load_qa_model(model_dir)
    feats = make_features(examples, tok, 64, 16)
    calls = []
    validate = lambda m: calls.append("val") or {"f1": 10.0 * len(calls)}
    score = lambda m: {"f1": 50.0}
    cfg = TrainConfig(out_dir="", batch_size=4, lr=1e-3, log_every=1, resume=False, progress_every=0)
    rows = label_sweep(teacher, feats, cfg, tmp_path, fractions=[0.25, 1.0], seeds=[0, 1], layers=1, rounds=2,
                       pad_id=tok.pad_token_id, evaluate=score, validate=validate)
    assert json.loads((tmp_path / "sweep.json").read_text()) == rows
    assert [(r["labelled share"], r["seed"], r["arm"]) for r in rows] == [
        (f, s, arm) for f in (0.25, 1.0) for s in (0, 1) for arm in ("with teacher", "without teacher")]
    assert len(calls) == 2 * len(rows)                                   # validation after each of the 2 rounds
    by = {(r["labelled share"], r["seed"], r["arm"]): r for r in rows}
    small = by[(0.25, 0, "without teacher")]
    assert small["labelled questions"] == small["windows"] == 2          # 25% of 8 one-window questions
    assert small["passes"] == 2 * 4 and small["updates"] == 2 * 2       # 4 passes of 2 windows a round: 2 updates
    full = by[(1.0, 0, "with teacher")]
    assert full["windows"] == 8 and full["passes"] == 2 and full["updates"] == 4   # the same updates as the small arm
    assert all(len(r["validation_f1"]) == 2 and r["last_change"] == 10.0 and r["f1"] == 50.0 for r in rows)
    assert all(r["best_round"] == 2 and r["status"] == "still rising" for r in rows)   # +10 F1 in the last round
    assert all(r["rounds"] == 2 for r in rows)                          # max_rounds left at 0: never trained longer
    assert (tmp_path / "student_25pct" / "config.json").exists() and (tmp_path / "sweep" / "without_teacher_100pct_seed1").exists()


def test_each_run_is_scored_at_its_best_validation_round(tiny, tmp_path):
    """A run whose validation F1 falls in its last round is scored (test F1) with the weights of its best round,
    and on_run gets that model: the one kit.train kept in the run's folder."""
    from kit.features import make_features
    from kit.models import load_qa_model
    from kit.train import TrainConfig
    _, examples, tok, _, model_dir = tiny
    teacher = load_qa_model(model_dir)
    feats = make_features(examples, tok, 64, 16)
    seen = []                                              # (weights at each validation) per call
    head = lambda m: m.qa_outputs.weight.detach().cpu().clone()

    def validate(m):                                       # rounds 1, 2, 3 of each run: 30, 45, 20 F1
        seen.append(head(m))
        return {"f1": (30.0, 45.0, 20.0)[(len(seen) - 1) % 3]}

    scored, handed = [], []
    score = lambda m: scored.append(head(m)) or {"f1": 50.0}
    on_run = lambda arm, fraction, seed, name, model, metrics, rounds: handed.append(head(model))
    cfg = TrainConfig(out_dir="", batch_size=4, lr=1e-2, log_every=1, resume=False, progress_every=0)
    rows = label_sweep(teacher, feats, cfg, tmp_path, fractions=[1.0], seeds=[0], layers=1, rounds=3,
                       pad_id=tok.pad_token_id, evaluate=score, validate=validate, on_run=on_run)
    assert [r["validation_f1"] for r in rows] == [[30.0, 45.0, 20.0]] * 2
    assert all(r["best_round"] == 2 and r["status"] == "peaked" and r["last_change"] == -25.0 for r in rows)
    for run in range(2):
        best, last = seen[3 * run + 1], seen[3 * run + 2]
        assert not torch.equal(best, last)                 # the third round did change the weights
        assert torch.equal(scored[run], best) and torch.equal(handed[run], best)


def scripted(scores_by_rounds: dict):
    """A stand-in for training: train(r) "trains" a run for r rounds and returns a log with the hand-made validation
    F1 of each round for that many rounds; it records every r it was asked for."""
    asked = []

    def train(r):
        asked.append(r)
        return [{"kind": "eval", "f1": f} for f in scores_by_rounds[r]]
    return train, asked


def test_a_run_still_rising_is_trained_again_with_twice_the_rounds():
    train, asked = scripted({3: [40.0, 50.0, 55.0], 6: [40.0, 50.0, 55.0, 58.0, 59.0, 59.5]})
    log, tried = until_flat(train, 3, 6)
    assert tried == asked == [3, 6]                                    # +5 in round 3: rising, so 6 rounds
    assert convergence(log)["status"] == "flat" and len(log) == 6      # +0.5 in round 6: flat, stops


def test_a_flat_or_peaked_run_stops_at_its_first_try():
    train, asked = scripted({3: [40.0, 50.0, 51.0]})                   # +1 < 2: flat
    assert until_flat(train, 3, 6) == ([{"kind": "eval", "f1": f} for f in (40.0, 50.0, 51.0)], [3]) and asked == [3]
    train, asked = scripted({3: [40.0, 55.0, 50.0]})                   # best round 2: peaked
    assert until_flat(train, 3, 6)[1] == [3] and asked == [3]


def test_the_cap_holds():
    rising = {r: [10.0 * (i + 1) for i in range(r)] for r in (2, 3, 4, 5, 6, 8)}   # +10 every round, forever
    train, asked = scripted(rising)
    log, tried = until_flat(train, 2, 8)
    assert tried == asked == [2, 4, 8] and convergence(log)["status"] == "still rising"   # stopped at the cap
    train, asked = scripted(rising)
    assert until_flat(train, 3, 5)[1] == [3, 5]                        # twice 3 is 6: capped at 5
    train, asked = scripted(rising)
    assert until_flat(train, 3, 3)[1] == [3] and asked == [3]          # cap = rounds: the fixed budget of before
    assert run_folder("student_5pct", 3, 3) == "student_5pct" and run_folder("student_5pct", 6, 3) == "student_5pct_6rounds"


def test_the_sweep_trains_a_rising_run_again_in_its_own_folder(tiny, tmp_path):
    from kit.features import make_features
    from kit.models import load_qa_model
    from kit.train import TrainConfig
    _, examples, tok, _, model_dir = tiny
    teacher = load_qa_model(model_dir)
    feats = make_features(examples, tok, 64, 16)
    calls = []
    validate = lambda m: calls.append("val") or {"f1": 10.0 * len(calls)}   # always rising
    handed = []
    on_run = lambda arm, fraction, seed, name, model, metrics, rounds: handed.append((arm, name, rounds))
    cfg = TrainConfig(out_dir="", batch_size=4, lr=1e-3, log_every=1, resume=False, progress_every=0)
    rows = label_sweep(teacher, feats, cfg, tmp_path, fractions=[1.0], seeds=[0], layers=1, rounds=1, max_rounds=2,
                       pad_id=tok.pad_token_id, evaluate=lambda m: {"f1": 50.0}, validate=validate, on_run=on_run)
    assert len(calls) == 2 * (1 + 2)                                     # each arm: a 1-round try, then a 2-round one
    assert [(r["rounds"], r["updates"], r["passes"], len(r["validation_f1"])) for r in rows] == [(2, 4, 2, 2)] * 2
    assert all(r["status"] == "still rising" for r in rows)             # still rising at the cap
    assert handed == [("with teacher", "student_100pct_2rounds", 2), ("without teacher", "baseline_100pct_2rounds", 2)]
    assert (tmp_path / "student_100pct" / "config.json").exists()        # the first try stays, beside the longer one
    assert (tmp_path / "student_100pct_2rounds" / "config.json").exists()


ROWS = [{"labelled share": share, "arm": arm, "seed": seed, "f1": f1, "labelled questions": n}
        for share, n, arm, f1s in ((0.05, 5, "with teacher", (50.0, 52.0)), (0.05, 5, "without teacher", (16.0, 19.0)),
                                   (1.0, 100, "with teacher", (55.0, 50.0)), (1.0, 100, "without teacher", (51.0, 52.0)))
        for seed, f1 in zip((0, 1), f1s)]


def test_share_summary_means_gain_and_spread():
    assert share_summary(ROWS) == {
        0.05: {"F1 with teacher (mean)": 51.0, "F1 without (mean)": 17.5, "gain from the teacher": 33.5,
               "largest spread over seeds": 3.0},
        1.0: {"F1 with teacher (mean)": 52.5, "F1 without (mean)": 51.5, "gain from the teacher": 1.0,
              "largest spread over seeds": 5.0}}


def test_gain_report_lines():
    assert gain_report(ROWS) == [
        "With 5% of the labels (5 labelled questions) the teacher adds +33.5 F1 (spread over seeds at most 3.0); "
        "with all of them, +1.0.",
        "  5% of the labels: the teacher's gain +33.5 is larger than the largest spread over seeds (3.0)",
        "  100% of the labels: the teacher's gain +1.0 is within the largest spread over seeds (5.0)",
        "with teacher: F1 51.0 → 52.5 as the labelled share grows: rises at every step (monotone).",
        "without teacher: F1 17.5 → 51.5 as the labelled share grows: rises at every step (monotone)."]
    one_seed = [r for r in ROWS if r["seed"] == 0]
    assert gain_report(one_seed)[1] == "  5% of the labels: the teacher's gain +34.0 is measured with one seed (no spread to judge it by)"


def test_convergence_report_names_the_runs_trained_longer_and_those_still_rising():
    rows = [{**r, "rounds": 3, "status": "peaked", "last_change": -1.0} for r in ROWS[:3]]
    rows[1] = {**rows[1], "rounds": 6, "status": "flat"}
    assert convergence_report(rows, 3, 6) == (
        "Convergence of 3 runs of 3 rounds, each still rising one trained again with twice the rounds, up to 6: "
        "1 trained longer (with teacher at 5%, seed 1: 6 rounds). In the end 2 peaked (best round before the last: "
        "read at it), 1 flat (last round their best, by less than 2 F1), 0 still rising. "
        "Every run had peaked or flattened.")
    rows[2] = {**rows[2], "rounds": 6, "status": "still rising", "last_change": 4.25}
    assert convergence_report(rows, 3, 6).endswith(
        "2 trained longer (with teacher at 5%, seed 1: 6 rounds; without teacher at 5%, seed 0: 6 rounds). In the end "
        "1 peaked (best round before the last: read at it), 1 flat (last round their best, by less than 2 F1), 1 still "
        "rising. Still rising at the cap, so their test F1 is a lower bound (raise sweep_max_rounds to see where they "
        "settle): without teacher at 5%, seed 0 (+4.2 in its last round).")


def test_the_sweep_students_take_the_dropout_they_are_given(tiny, tmp_path):
    from kit.features import make_features
    from kit.models import load_qa_model
    from kit.train import TrainConfig
    _, examples, tok, _, model_dir = tiny
    teacher = load_qa_model(model_dir)
    feats = make_features(examples, tok, 64, 16)
    cfg = TrainConfig(out_dir="", batch_size=4, lr=1e-3, log_every=1, resume=False, progress_every=0)
    rates = lambda folder: {k: json.loads((folder / "config.json").read_text())[k]
                            for k in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    teacher_rates = {k: getattr(teacher.config, k) for k in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    assert set(teacher_rates.values()) != {0.0}       # else the two runs below could not tell the rates apart
    for dropout, out in ((0.0, tmp_path / "none"), (None, tmp_path / "teachers")):
        label_sweep(teacher, feats, cfg, out, fractions=[1.0], seeds=[0], layers=1, rounds=1, pad_id=tok.pad_token_id,
                    evaluate=lambda m: {"f1": 0.0}, validate=lambda m: {"f1": 0.0}, dropout=dropout)
        for folder in (out / "student_100pct", out / "baseline_100pct"):   # both arms
            assert rates(folder) == (teacher_rates if dropout is None else
                                     {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
