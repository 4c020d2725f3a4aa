import json
import subprocess
import sys

import pytest
import torch

from kit.features import make_features
from kit.models import build_qa_model
from kit.train import TrainConfig, read_log, train


def _train(tiny, out, loss_fn=None, **kw):
    path, examples, tok, cfg, _ = tiny
    torch.manual_seed(0)
    model = build_qa_model(cfg)
    feats = make_features(examples, tok, 64, 16)
    tc = TrainConfig(out_dir=str(out), epochs=3, batch_size=4, lr=1e-3, warmup=0.1, log_every=1, **kw)
    extra = {"loss_fn": loss_fn} if loss_fn else {}
    train(model, feats, tc, pad_id=tok.pad_token_id, save_extra=tok.save_pretrained, **extra)
    return model


def test_unknown_training_option_is_an_error():
    with pytest.raises(ValueError, match="unknown training option.*'lr_rate'"):
        TrainConfig().replace(lr_rate=1)


def test_bf16_training_multiplies_in_bf16_and_keeps_fp32_weights(tiny, tmp_path, monkeypatch):
    # CPU autocast is what is checked: pinned to the CPU (kit.device), also on a GPU machine. A CPU without
    # native bf16 still runs bf16 autocast (emulated, slowly), so the loop can be checked anywhere.
    monkeypatch.setenv("KIT_DEVICE", "cpu")
    monkeypatch.setattr("kit.precision.bf16_supported", lambda *where: True)
    seen = []

    def recording_loss(model, batch):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        out = model(**batch)
        return out.loss, {}
    model = _train(tiny, tmp_path / "m", loss_fn=recording_loss, mixed_precision="bf16")
    assert seen and set(seen) == {(True, torch.bfloat16)}    # every loss ran under bf16 autocast
    assert {p.dtype for p in model.parameters()} == {torch.float32}   # master weights stay fp32
    _train(tiny, tmp_path / "fp32", loss_fn=recording_loss, mixed_precision="no")   # then fp32 in one process
    assert seen[-1][0] is False


def test_loss_goes_down_and_log_is_written(tiny, tmp_path):
    _train(tiny, tmp_path / "m")
    log = [e for e in read_log(tmp_path / "m") if e["kind"] == "train"]
    assert len(log) == 6                               # 8 windows / batch 4 = 2 updates x 3 epochs
    assert log[-1]["loss"] < log[0]["loss"]
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "tokenizer.json").exists()


def test_frozen_word_embeddings_stay_while_the_rest_trains(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_DEVICE", "cpu")   # exact equality of CPU weights (tests/test_cuda.py: the GPU's)
    _, _, _, cfg, _ = tiny
    torch.manual_seed(0)
    before = build_qa_model(cfg).state_dict()
    after = _train(tiny, tmp_path / "m", freeze_word_embeddings=True).state_dict()
    word = next(n for n in before if n.endswith("word_embeddings.weight"))
    assert torch.equal(before[word], after[word])
    changed = [n for n in before if n != word and not torch.equal(before[n], after[n])]
    assert any("position_embeddings" in n for n in changed) and any("qa_outputs" in n for n in changed)


def test_resumed_run_ends_with_the_same_weights(tiny, tmp_path, monkeypatch):
    # bit for bit on the CPU (pinned: on a GPU, kernels need not be deterministic; tests/test_cuda.py checks there)
    monkeypatch.setenv("KIT_DEVICE", "cpu")
    full = _train(tiny, tmp_path / "full")
    calls = {"n": 0}

    def crash_at_update_4(model, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt   # a user stopping the cell
        out = model(**batch)
        return out.loss, {}
    with pytest.raises(KeyboardInterrupt):
        _train(tiny, tmp_path / "cut", loss_fn=crash_at_update_4, save_every=1)
    state = json.loads((tmp_path / "cut" / "checkpoint-last" / "trainer_state.json").read_text())
    assert state["update"] == 3
    resumed = _train(tiny, tmp_path / "cut", save_every=1)
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), n


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kit", *args], capture_output=True, text=True)


def test_cli_predict_and_evaluate(tiny, tmp_path):
    path, examples, tok, cfg, _ = tiny
    _train(tiny, tmp_path / "m")
    r = run_cli("predict", "--model", str(tmp_path / "m"), "--data", str(path), "--out", str(tmp_path / "p.json"))
    assert r.returncode == 0, r.stderr
    preds = json.loads((tmp_path / "p.json").read_text())
    assert set(preds) == {e.id for e in examples}
    r = run_cli("evaluate", "--model", str(tmp_path / "m"), "--data", str(path))
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout.strip().splitlines()[-1])
    assert metrics["n"] == len(examples) and 0 <= metrics["f1"] <= 100 and "exact_match" in metrics


def test_cli_predicts_in_lower_precision(tiny, tmp_path):
    from kit.precision import bf16_supported
    path, examples, tok, cfg, _ = tiny
    _train(tiny, tmp_path / "m")
    answers = {}
    for precision in ("fp32", "int8") + (("bf16",) if bf16_supported() else ()):
        out = tmp_path / f"{precision}.json"
        r = run_cli("predict", "--model", str(tmp_path / "m"), "--data", str(path), "--out", str(out),
                    "--precision", precision)
        assert r.returncode == 0, r.stderr
        answers[precision] = json.loads(out.read_text())
    for precision, preds in answers.items():     # rounding moves logits a little, rarely the best span
        same = sum(preds[q] == answers["fp32"][q] for q in preds)
        assert same >= 0.75 * len(examples), (precision, same)
    r = run_cli("evaluate", "--model", str(tmp_path / "m"), "--data", str(path), "--precision", "fp16")
    assert r.returncode == 2 and "invalid choice: 'fp16'" in r.stderr


@pytest.mark.parametrize("args, words", [
    (["evaluate", "--model", "runs/does-not-exist", "--data", "x.json"], ["runs/does-not-exist", "no such model"]),
    (["evaluate", "--model", "MODEL", "--data", "nope.json"], ["nope.json", "no such file"]),
    (["train", "--model", "MODEL", "--train", "x.json", "--out", "o", "--mixed-precision", "fp8"],
     ["mixed_precision 'fp8'", "auto, no, fp16, bf16"]),
])
def test_cli_bad_input_is_one_paragraph_without_traceback(tiny, tmp_path, args, words):
    args = [str(tiny[4]) if a == "MODEL" else a for a in args]
    r = run_cli(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr


def test_cli_model_dir_without_weights(tmp_path, tiny):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    r = run_cli("evaluate", "--model", str(tmp_path / "empty"), "--data", str(tiny[0]))
    assert r.returncode == 2 and "no weights" in r.stderr and "Traceback" not in r.stderr


def test_the_loop_measures_its_updates_and_prints_the_eta(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KIT_DEVICE", "cpu")
    _train(tiny, tmp_path / "m", progress_every=0)        # 8 windows / batch 4 = 2 updates x 3 epochs; log every 1
    out = capsys.readouterr().out
    measured = [line for line in out.splitlines() if line.startswith("measured on cpu")]
    assert len(measured) == 1 and "(updates 2-4); 2 of 6 updates left: ETA" in measured[0]   # the first left out
    progress = [line for line in out.splitlines() if line.startswith("update ")]
    assert [line.split(":")[0].split(",")[0] for line in progress] == [f"update {u}/6" for u in range(1, 7)]
    assert all("s per update, ETA" in line for line in progress)
    log = [e for e in read_log(tmp_path / "m") if e["kind"] == "train"]
    for e in log:       # the ETA is the measured seconds per update times the updates left
        assert e["sec_per_update"] > 0
        assert e["eta_seconds"] == pytest.approx(e["sec_per_update"] * (6 - e["update"]), abs=0.06)
    _train(tiny, tmp_path / "quiet", progress_every=-1)
    assert "per update" not in capsys.readouterr().out   # many short runs (a sweep) print none


def test_durations_read_as_a_person_would():
    from kit.train import duration
    assert [duration(s) for s in (0.4, 45, 60, 192, 3599.6, 3600, 7530)] == \
        ["0 s", "45 s", "1 min 00 s", "3 min 12 s", "1 h 00 min", "1 h 00 min", "2 h 05 min"]
