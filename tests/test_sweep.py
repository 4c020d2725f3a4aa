"""kit.sweep: the budget rule (rounds of the same size, small labelled sets passed over many times), the
convergence record, and runs/<profile>/sweep.json with one row per share, arm and seed."""
import json

import pytest
import torch

from kit.sweep import convergence, label_sweep, round_passes


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
    on_run = lambda arm, fraction, seed, name, model, metrics: handed.append(head(model))
    cfg = TrainConfig(out_dir="", batch_size=4, lr=1e-2, log_every=1, resume=False, progress_every=0)
    rows = label_sweep(teacher, feats, cfg, tmp_path, fractions=[1.0], seeds=[0], layers=1, rounds=3,
                       pad_id=tok.pad_token_id, evaluate=score, validate=validate, on_run=on_run)
    assert [r["validation_f1"] for r in rows] == [[30.0, 45.0, 20.0]] * 2
    assert all(r["best_round"] == 2 and r["status"] == "peaked" and r["last_change"] == -25.0 for r in rows)
    for run in range(2):
        best, last = seen[3 * run + 1], seen[3 * run + 2]
        assert not torch.equal(best, last)                 # the third round did change the weights
        assert torch.equal(scored[run], best) and torch.equal(handed[run], best)
