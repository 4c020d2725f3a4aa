"""kit.sweep: the budget rule (rounds of the same size, small labelled sets passed over many times), the
convergence record, and runs/<profile>/sweep.json with one row per share, arm and seed."""
import json

import pytest

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
    assert convergence(log) == {"validation_f1": [40.0, 61.23, 62.0], "last_change": 0.77}
    assert convergence(log[:2]) == {"validation_f1": [40.0], "last_change": None}


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
    assert (tmp_path / "student_25pct" / "config.json").exists() and (tmp_path / "sweep" / "without_teacher_100pct_seed1").exists()
