"""Re-runs never silently mix two runs: a resume checks what it continues, the log and clock carry over,
gradient accumulation follows the big batch, reproduce reruns what is stale, -p values keep their type,
make test starts clean."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import conftest
import torch

from kit.checkpoint import Checkpointer, ResumeRefused
from kit.distill import DistillLoss, DistillWeights
from kit.features import Features, make_features
from kit.models import build_qa_model, load_qa_model, qa_config
from kit.runner import reproduce, typed_parameters
from kit.student import build_student
from kit.train import CLOCK_FIELDS, TrainConfig, read_log, task_loss, train

ROOT = Path(__file__).resolve().parents[1]


class Killed(Exception):
    """Stands for a kill: raised from inside the loss, so nothing after it runs (no save, no log)."""


def killed_at(loss_fn, call: int, pause: float = 0.0):
    """`loss_fn` that raises Killed at its call number `call` (sleeping `pause` s per call: distinct seconds)."""
    calls = {"n": 0}

    def forward(model, batch):
        calls["n"] += 1
        time.sleep(pause)
        if calls["n"] == call:
            raise Killed
        return loss_fn(model, batch)
    return forward


# ----------------------------------------------------------------------------- 1. a resume checks the run
def test_a_resume_with_another_learning_rate_data_or_teacher_is_refused_naming_them(tiny, tmp_path, capsys):
    _, examples, tok, cfg, model_dir = tiny
    feats = make_features(examples, tok, 64, 16)
    run = TrainConfig(out_dir=str(tmp_path / "m"), epochs=1, batch_size=4, lr=1e-3, log_every=1)
    train(load_qa_model(model_dir), feats, run, pad_id=tok.pad_token_id)
    folder = tmp_path / "m" / "checkpoint-last"
    with pytest.raises(ResumeRefused) as refused:
        train(load_qa_model(model_dir), feats, run.replace(lr=3e-4, epochs=2), pad_id=tok.pad_token_id)
    message = str(refused.value)
    assert str(folder) in message and "epochs 1 -> 2" in message and "lr 0.001 -> 0.0003" in message
    assert "--fresh" in message and "resume=False" in message and "run.json" in message
    with pytest.raises(ResumeRefused, match="the training data"):
        train(load_qa_model(model_dir), feats.select(range(len(feats) - 1)), run, pad_id=tok.pad_token_id)
    # a log interval and a thread count may change: said, not refused; the run is finished, so nothing trains
    capsys.readouterr()
    train(load_qa_model(model_dir), feats, run.replace(log_every=5, num_threads=1), pad_id=tok.pad_token_id)
    out = capsys.readouterr().out
    assert "resuming with log_every 5 (was 1)" in out and "resuming from" in out
    # resume=False starts again from scratch, and records the new settings
    train(load_qa_model(model_dir), feats, run.replace(lr=3e-4, resume=False), pad_id=tok.pad_token_id)
    assert json.loads((folder / "run.json").read_text())["config"]["lr"] == 3e-4


def test_a_student_resumed_with_another_teacher_or_loss_is_refused(tiny, tmp_path):
    _, examples, tok, cfg, model_dir = tiny
    feats = make_features(examples, tok, 64, 16)
    teacher = load_qa_model(model_dir)
    run = TrainConfig(out_dir=str(tmp_path / "s"), epochs=1, batch_size=4)

    def distil(teacher, init="random", **loss):
        torch.manual_seed(0)
        student = build_student(teacher, num_hidden_layers=1, hidden_size=16)
        train(student, feats, run, pad_id=tok.pad_token_id, loss_fn=DistillLoss(teacher, student, **loss),
              inputs={"init": init})
    distil(teacher)
    assert json.loads((tmp_path / "s" / "checkpoint-last" / "run.json").read_text())["inputs"] == {"init": "random"}
    with pytest.raises(ResumeRefused, match="init"):     # what the caller says decides the student is checked too
        distil(teacher, init="teacher_layers")
    other = load_qa_model(model_dir)
    with torch.no_grad():
        other.qa_outputs.weight.add_(0.01)
    with pytest.raises(ResumeRefused, match=r"the loss's frozen weights \(a student's teacher\)"):
        distil(other)
    with pytest.raises(ResumeRefused, match="loss temperature 1.0 -> 2.0"):
        distil(teacher, temperature=2.0)
    distil(teacher)      # the same teacher and loss: accepted (the finished run is simply continued)


# ----------------------------------------------------------------------------- 2. the log and its clock
def test_a_kill_between_two_saves_leaves_one_log_that_reads_as_an_uninterrupted_run(tiny, tmp_path):
    _, examples, tok, cfg, model_dir = tiny
    feats = make_features(examples, tok, 64, 16)      # dropout on: the checkpoint's RNG state must be restored
    run = TrainConfig(out_dir=str(tmp_path / "whole"), epochs=3, batch_size=2, lr=1e-3, log_every=3, save_every=2)
    train(load_qa_model(model_dir), feats, run, pad_id=tok.pad_token_id, loss_fn=killed_at(task_loss, 0, 0.05))
    whole = read_log(tmp_path / "whole")
    assert [e["update"] for e in whole] == [3, 6, 9, 12]

    cut = run.replace(out_dir=str(tmp_path / "cut"))
    with pytest.raises(Killed):   # killed in update 10: update 9 was logged, the last save was at update 8
        train(load_qa_model(model_dir), feats, cut, pad_id=tok.pad_token_id, loss_fn=killed_at(task_loss, 10, 0.05))
    assert [e["update"] for e in read_log(tmp_path / "cut")] == [3, 6, 9]
    train(load_qa_model(model_dir), feats, cut, pad_id=tok.pad_token_id, loss_fn=killed_at(task_loss, 0, 0.05))
    log = read_log(tmp_path / "cut")
    steps = [e for e in log if e["kind"] == "train"]
    assert all(a["update"] < b["update"] and a["seconds"] < b["seconds"] for a, b in zip(steps, steps[1:]))
    strip = lambda entries: [{k: v for k, v in e.items() if k not in CLOCK_FIELDS} for e in entries]
    assert strip(log) == strip(whole)     # same entries, same values (the open log interval's sums carried over)
    assert steps[-1]["seconds"] >= 0.05 * 12        # the clock covers the whole run, not the part after the resume


def test_an_old_log_with_redone_updates_and_a_restarted_clock_is_read_as_one_run(tmp_path):
    entries = [{"kind": "train", "update": 20, "seconds": 100.0, "loss": 3.0},
               {"kind": "train", "update": 40, "seconds": 200.0, "loss": 2.0},   # then killed; saved at 30
               {"kind": "train", "update": 40, "seconds": 60.0, "loss": 2.0},    # the resumed process's clock
               {"kind": "eval", "update": 40, "epoch": 1, "f1": 10.0},
               {"kind": "train", "update": 60, "seconds": 130.0, "loss": 1.5},
               {"kind": "train", "update": 80, "seconds": 20.0, "loss": 1.4}]    # resumed exactly at update 60
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    log = read_log(tmp_path)
    assert [(e["kind"], e["update"]) for e in log] == [("train", 20), ("train", 40), ("eval", 40), ("train", 60),
                                                       ("train", 80)]
    assert [e["seconds"] for e in log if e["kind"] == "train"] == [100.0, 160.0, 230.0, 250.0]
    committed = read_log(ROOT / "results" / "es-local" / "student_4ep.log.jsonl")
    steps = [e for e in committed if e["kind"] == "train"]
    assert all(a["update"] < b["update"] and a["seconds"] < b["seconds"] for a, b in zip(steps, steps[1:]))


# ----------------------------------------------------------------------------- 3. gradient accumulation
def equal_length_windows(n: int, vocab: int, length: int = 12) -> Features:
    g = torch.Generator().manual_seed(1)
    ids = [[0] + torch.randint(5, vocab, (length - 2,), generator=g).tolist() + [2] for _ in range(n)]
    starts = torch.randint(1, length - 3, (n,), generator=g).tolist()
    return Features(ids, list(range(n)), [[None] * length for _ in range(n)], starts, [s + 2 for s in starts])


def test_accumulating_two_batches_of_8_follows_batches_of_16_across_epoch_ends_and_a_kill(tiny, tmp_path):
    _, _, tok, cfg, _ = tiny
    # dropout off and the task loss off: the loss is then a window mean that micro-batches reproduce exactly
    teacher = build_qa_model(qa_config("roberta", vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=4, intermediate_size=64, max_length=64,
                                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    feats = equal_length_windows(17, len(tok))           # odd: each epoch ends with an update of one window

    def run(out, batch, accum, kill_at=0):
        torch.manual_seed(0)
        student = build_student(teacher, num_hidden_layers=1, hidden_size=16)
        loss = DistillLoss(teacher, student, weights=DistillWeights(task=0.0))
        loss.forward = killed_at(loss.forward, kill_at)
        cfg = TrainConfig(out_dir=str(tmp_path / out), epochs=2, batch_size=batch, grad_accum=accum, lr=1e-2,
                          log_every=1, save_every=1, mixed_precision="no")
        train(student, feats, cfg, pad_id=tok.pad_token_id, loss_fn=loss)
        return [e for e in read_log(tmp_path / out) if e["kind"] == "train"], student

    big, big_model = run("big", 16, 1)
    small, small_model = run("small", 8, 2)
    with pytest.raises(Killed):    # calls 1-2 update 1, 3 update 2, 4-5 update 3: killed between its micro-batches
        run("cut", 8, 2, kill_at=5)
    cut, cut_model = run("cut", 8, 2)
    assert [e["update"] for e in big] == [1, 2, 3, 4]       # 2 updates per epoch, as for one batch of 16
    for log in (small, cut):
        assert [e["update"] for e in log] == [1, 2, 3, 4]
        for term in ("loss", "logits", "attention", "hidden"):
            assert [e[term] for e in log] == pytest.approx([e[term] for e in big], rel=1e-5), term
    assert big[-1]["loss"] < big[0]["loss"]
    # Every weight agrees but the QA bias: a softmax over positions ignores a shift of all of them, so its gradient
    # is float noise, which Adam's normalisation turns into steps of lr size (the same in the DDP tests).
    for model in (small_model, cut_model):
        a, b = big_model.state_dict(), model.state_dict()
        bad = {k: float((a[k] - b[k]).abs().max()) for k in a
               if k != "qa_outputs.bias" and not torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6)}
        assert not bad, bad


# ----------------------------------------------------------------------------- 4. reproduce reruns what is stale
def write_notebook(path, body):
    conftest.write_notebook(path, body, 'profile = "demo"\nresume = True\nlabel = "a"')


def test_rerunning_a_notebook_reruns_every_later_one_from_scratch_and_says_why(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbs").mkdir()
    stems = ["01_a", "02_b", "03_c"]
    for stem in stems:   # each notebook appends "<stem>:<resume>" to ran.txt
        write_notebook(tmp_path / "nbs" / f"{stem}.ipynb", f'open("ran.txt", "a").write(f"{stem}:{{resume}} ")')
    go = lambda overrides=None, **kw: reproduce("demo", overrides, notebooks_dir=tmp_path / "nbs", notebooks=stems, **kw)
    ran = lambda: (tmp_path / "ran.txt").read_text().split()
    go()
    assert ran() == ["01_a:True", "02_b:True", "03_c:True"]
    capfd.readouterr()
    go()                                                   # nothing changed: all skipped, and said why
    assert len(ran()) == 3
    assert capfd.readouterr().out.count("skipped: it finished before with these cells, parameters and kit source") == 3
    go({"01_a": {"label": "b"}})                           # notebook 01 with a new parameter: everything after it too
    assert ran()[3:] == ["01_a:False", "02_b:False", "03_c:False"]
    out = capfd.readouterr().out
    assert "01_a: running again (parameters changed (label))" in out
    assert "02_b: running again (01_a ran again before it)" in out
    monkeypatch.setattr("kit.runner.kit_source_digest", lambda: "another kit")
    go({"01_a": {"label": "b"}})                           # a change in kit/ reruns them all
    assert len(ran()) == 9 and "the kit's source changed" in capfd.readouterr().out


# ----------------------------------------------------------------------------- 5. -p keeps the default's type
def test_command_line_values_take_the_type_of_the_notebooks_default():
    nb02 = ROOT / "notebooks" / "02_dense_distillation.ipynb"
    typed = typed_parameters(nb02, {"teacher_layers": "0,2,4", "epochs": "0.5", "batch_size": "16",
                                    "baseline": "true", "learning_rate": "1e-3", "w_task": "0", "profile": "1"})
    assert typed == {"teacher_layers": "0,2,4", "epochs": 0.5, "batch_size": 16, "baseline": True,
                     "learning_rate": 0.001, "w_task": 0.0, "profile": "1"}
    assert type(typed["w_task"]) is float and type(typed["batch_size"]) is int
    with pytest.raises(ValueError, match=r"parameter epochs = 'two': expected a number, as its default 1"):
        typed_parameters(nb02, {"epochs": "two"})
    with pytest.raises(ValueError, match="expected True or False"):
        typed_parameters(nb02, {"baseline": "maybe"})
    nb04 = ROOT / "notebooks" / "04_speed_benchmarks.ipynb"
    assert typed_parameters(nb04, {"batch_sizes": "[1, 8]"})["batch_sizes"] == [1, 8]


def test_a_bad_value_is_refused_on_the_command_line_before_any_notebook_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kit", "reproduce", "--profile", "demo", "-p", "02_dense_distillation",
                        "epochs", "two"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "expected a number" in r.stderr
    assert r.stdout == ""                                  # nothing ran, not even the first notebook's line


# ----------------------------------------------------------------------------- 6, 7. a clean smoke run, one restorer
def test_make_test_removes_the_previous_smoke_run_before_the_tests():
    # the smoke run's folder is under the runs root: runs/, or the folder $KIT_RUNS names
    r = subprocess.run(["make", "-n", "test"], capture_output=True, text=True, cwd=ROOT)
    removes = 'rm -rf "${KIT_RUNS:-runs}/smoke"'
    lines = [l for l in r.stdout.splitlines() if removes in l or "pytest" in l]
    assert r.returncode == 0 and len(lines) == 2 and removes in lines[0] and "pytest" in lines[1]


class FakeAccelerator:
    device = "cpu"

    def __init__(self, main):
        self.is_main_process, self.waits = main, 0

    def wait_for_everyone(self):
        self.waits += 1

    def print(self, *args):
        pass

    def load_state(self, folder):
        pass


def test_only_the_main_process_puts_back_an_interrupted_swap_and_the_others_wait(tmp_path):
    folder, old = tmp_path / "checkpoint-last", tmp_path / "checkpoint-last.old"
    old.mkdir()
    (old / "trainer_state.json").write_text('{"epoch": 0, "batch": 3, "update": 3}')
    other = FakeAccelerator(main=False)
    assert Checkpointer(other, folder, torch.nn.Module(), {}).resume() is None
    assert old.exists() and not folder.exists() and other.waits == 1       # untouched, after a barrier
    main = FakeAccelerator(main=True)
    assert Checkpointer(main, folder, torch.nn.Module(), {}).resume()["update"] == 3
    assert folder.exists() and not old.exists() and main.waits == 1
