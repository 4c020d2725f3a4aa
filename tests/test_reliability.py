"""Interruptions and several processes: a killed run resumes to the same result; 2 CPU processes
follow the same loss trajectory as 1 process with the same global batch."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kit.models import train_tokenizer
from kit.checkpoint import restore_interrupted_swap
from kit.train import read_log

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "ddp_train.py"
# CPU behaviour (gloo process groups, bit-equal resumes, one thread): pinned to the CPU, also on a GPU machine, where
# two processes on one GPU would need NCCL, which refuses to put two ranks on one device (kit.device)
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "KIT_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}


def train_cmd(tiny, out):
    # batch 1: 8 updates per epoch; a checkpoint after every update, so the kill lands mid-epoch
    path, model_dir = tiny[0], tiny[4]
    return [sys.executable, "-m", "kit", "train", "--model", str(model_dir), "--train", str(path),
            "--eval", str(path), "--out", str(out), "--max-length", "64", "--stride", "16",
            "--epochs", "12", "--batch-size", "1", "--lr", "1e-3", "--save-every", "1", "--threads", "1"]


def evals(out):
    return [(e["epoch"], e["exact_match"], e["f1"]) for e in read_log(out) if e["kind"] == "eval"]


def test_a_killed_run_resumes_to_the_same_metrics_and_weights(tiny, tmp_path):
    full = subprocess.run(train_cmd(tiny, tmp_path / "full"), env=ENV, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-2000:]

    cut = tmp_path / "cut"
    proc = subprocess.Popen(train_cmd(tiny, cut), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = cut / "checkpoint-last" / "trainer_state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state_file.read_text())["update"] >= 21:   # epoch 3 of 12, mid-epoch
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)   # a real kill: no cleanup, possibly in the middle of a save
    proc.wait()

    resumed = subprocess.run(train_cmd(tiny, cut), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    assert evals(cut) == evals(tmp_path / "full") and len(evals(cut)) == 12
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_between_the_two_renames_keeps_the_previous_checkpoint(tmp_path):
    ckpt, old, tmp = tmp_path / "checkpoint-last", tmp_path / "checkpoint-last.old", tmp_path / "checkpoint-last.tmp"
    old.mkdir()
    (old / "trainer_state.json").write_text('{"update": 7}')
    tmp.mkdir()                          # a new checkpoint that was still being written: never used
    (tmp / "model.safetensors").write_bytes(b"half")
    restore_interrupted_swap(ckpt)
    assert json.loads((ckpt / "trainer_state.json").read_text())["update"] == 7 and not old.exists()


def run_helper(launcher, out, batch, mode="task"):
    r = subprocess.run([*launcher, str(HELPER), str(out), str(batch), mode], env=ENV, capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return [e for e in read_log(out) if e["kind"] == "train"]


def test_two_cpu_processes_follow_one_process_with_the_same_global_batch(tmp_path):
    one = run_helper([sys.executable], tmp_path / "one", 4)
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    two = run_helper(accelerate, tmp_path / "two", 2)
    assert [e["update"] for e in two] == [e["update"] for e in one] == list(range(1, 9))
    assert [e["lr"] for e in two] == pytest.approx([e["lr"] for e in one], rel=1e-9)
    assert [e["loss"] for e in two] == pytest.approx([e["loss"] for e in one], rel=1e-5)
    assert one[-1]["loss"] < one[0]["loss"] - 0.3        # it learned something worth comparing
    # each process saved its own RNG state in the checkpoint
    assert {p.name for p in (tmp_path / "two" / "checkpoint-last").glob("random_states_*.pkl")} == \
        {"random_states_0.pkl", "random_states_1.pkl"}
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    # Weight matrices agree; biases whose gradient is float noise (the QA bias shifts every position's logit
    # alike, so the loss ignores it) are pushed by Adam's normalised noise, which differs between the runs.
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a if a[k].ndim == 2)


def test_teacher_and_student_tokenizers_must_be_the_same():
    from kit.distill import check_same_tokenizer
    texts = ["Ana nació en Sevilla.", "¿Dónde nació Ana?"] * 5
    a = train_tokenizer(texts, vocab_size=300, min_frequency=1)
    b = train_tokenizer(texts + ["Luis trabaja en Quito."] * 5, vocab_size=300, min_frequency=1)
    check_same_tokenizer(a, a)
    with pytest.raises(ValueError, match="tokenizers differ.*build_student"):
        check_same_tokenizer(a, b)


def test_a_nan_loss_stops_with_the_update_number_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    from kit.features import make_features
    from kit.models import load_qa_model
    from kit.train import TrainConfig, task_loss, train
    _, examples, tok, _, model_dir = tiny
    model = load_qa_model(model_dir)
    calls = {"n": 0}

    def diverges_at_update_6(m, batch):
        calls["n"] += 1
        loss, terms = task_loss(m, batch)
        return (loss * float("nan") if calls["n"] == 6 else loss), terms
    cfg = TrainConfig(out_dir=str(tmp_path / "m"), epochs=2, batch_size=1, save_every=2, seed=0)
    with pytest.raises(FloatingPointError, match=r"nan at update 5 \(epoch 1, batch 5\).*checkpoint-last"):
        train(model, make_features(examples, tok, 64, 16), cfg, pad_id=tok.pad_token_id, loss_fn=diverges_at_update_6)
    state = json.loads((tmp_path / "m" / "checkpoint-last" / "trainer_state.json").read_text())
    assert state["update"] == 4                       # the last checkpoint before the bad step
    weights = load_file(tmp_path / "m" / "checkpoint-last" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_the_distillation_projection_is_checkpointed_without_pickle(tiny, tmp_path):
    from kit.distill import DistillLoss
    from kit.features import make_features
    from kit.models import load_qa_model
    from kit.student import build_student
    from kit.train import TrainConfig, train
    _, examples, tok, _, model_dir = tiny
    teacher = load_qa_model(model_dir)
    feats = make_features(examples, tok, 64, 16)
    cfg = TrainConfig(out_dir=str(tmp_path / "s"), epochs=1, batch_size=4, lr=1e-2)
    torch.manual_seed(0)
    student = build_student(teacher, num_hidden_layers=1, hidden_size=16)
    first = DistillLoss(teacher, student)
    train(student, feats, cfg, pad_id=tok.pad_token_id, loss_fn=first)
    ckpt = tmp_path / "s" / "checkpoint-last"
    assert not list(ckpt.glob("*.pkl")) or {p.name for p in ckpt.glob("*.pkl")} == {"random_states_0.pkl"}
    saved = load_file(ckpt / "loss_state.safetensors")
    assert set(saved) == {"projections.0.weight", "projections.0.bias"}
    # a new loss (fresh random projection) resumed from the finished run gets the trained projection back
    second = DistillLoss(teacher, student)
    assert not torch.equal(second.projections[0].weight, first.projections[0].weight)
    train(student, feats, cfg, pad_id=tok.pad_token_id, loss_fn=second)
    assert torch.equal(second.projections[0].weight, first.projections[0].weight)


def test_an_unknown_notebook_parameter_is_refused_with_the_valid_names(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kit", "run", "notebooks/04_speed_benchmarks.ipynb", "-p", "repeat", "3"],
                       capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no parameter 'repeat'" in r.stderr and "repeats" in r.stderr and "batch_sizes" in r.stderr
    r = subprocess.run([sys.executable, "-m", "kit", "run", "notebooks/04_speed_benchmarks.ipynb", "--profile", "../x"],
                       capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert r.returncode == 2 and "stay under runs/" in r.stderr


def test_every_parameter_name_is_found_even_with_quotes_in_its_comment(tmp_path):
    import nbformat
    from kit.runner import check_parameters, notebook_parameters
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('teacher_dir = ""   # "" = the run\'s teacher\nw_a, w_b = 1.0, 2.0\nx: int = 3')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("y = 1"), cell]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert notebook_parameters(tmp_path / "n.ipynb") == ["teacher_dir", "w_a", "w_b", "x"]
    check_parameters(tmp_path / "n.ipynb", {"teacher_dir": "t", "w_b": 0.0})   # accepted, no error
    with pytest.raises(ValueError, match="no parameter 'y'"):
        check_parameters(tmp_path / "n.ipynb", {"y": 2})
    assert "teacher_dir" in notebook_parameters(ROOT / "notebooks" / "02_dense_distillation.ipynb")


def test_parameter_values_are_read_as_python_literals():
    from kit.runner import parse_value
    assert [parse_value(v) for v in ["3", "1e-3", "True", "[1, 8]", "es-local"]] == [3, 0.001, True, [1, 8], "es-local"]


def test_two_cpu_processes_train_multitask_like_one(tmp_path):
    one = run_helper([sys.executable], tmp_path / "one", 4, "multitask")
    two = run_helper([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                      "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
                     tmp_path / "two", 2, "multitask")
    assert [e["update"] for e in two] == [e["update"] for e in one]
    for term in ("loss", "qa/task", "answerability/ce"):   # each task's batches, every process on the same task
        seen_one, seen_two = [(e["update"], e[term]) for e in one if term in e], [(e["update"], e[term]) for e in two if term in e]
        assert [u for u, _ in seen_two] == [u for u, _ in seen_one] and len(seen_one) >= 8, term
        assert [v for _, v in seen_two] == pytest.approx([v for _, v in seen_one], rel=1e-4), term
    a = load_file(tmp_path / "one" / "task_heads.safetensors")
    b = load_file(tmp_path / "two" / "task_heads.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a if k.endswith("weight"))


def test_two_cpu_processes_distil_like_one_projection_included(tmp_path):
    one = run_helper([sys.executable], tmp_path / "one", 4, "distill")
    two = run_helper([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                      "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
                     tmp_path / "two", 2, "distill")
    for term in ("loss", "hidden", "attention", "logits"):
        assert [e[term] for e in two] == pytest.approx([e[term] for e in one], rel=1e-4), term
    p1 = load_file(tmp_path / "one" / "checkpoint-last" / "loss_state.safetensors")
    p2 = load_file(tmp_path / "two" / "checkpoint-last" / "loss_state.safetensors")
    assert torch.allclose(p1["projections.0.weight"], p2["projections.0.weight"], atol=1e-5)
