"""The CUDA tier: what only a GPU can check. Every test is marked `gpu` and skipped where torch sees no CUDA GPU
(tests/conftest.py); on a GPU machine: `python -m pytest -m gpu tests`. The paper rehearsal on CUDA is in
tests/test_paper_rehearsal.py (marked `gpu` too).

"The same weights" on a GPU: its kernels need not be bitwise deterministic (atomic adds in the embeddings' backward
add in any order, fp16 rounds each), so a resumed run must end within a small tolerance of the uninterrupted one,
its loss log equal to 3 significant digits; on the CPU the suite asks for bit-equality (tests/test_train_cli.py).
"""
import json
import os
import subprocess
import sys

import pytest
import torch

from kit.device import device, model_device
from kit.features import make_features
from kit.inference import evaluate_model
from kit.models import build_qa_model, load_qa_model
from kit.precision import bf16_supported
from kit.train import CLOCK_FIELDS, TrainConfig, read_log, train
from test_train_cli import _train   # the same tiny run as the CPU tests (tests/ is on sys.path, as for conftest)

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def on_cuda(monkeypatch):
    monkeypatch.delenv("KIT_DEVICE", raising=False)   # the kit's own choice: the GPU


def test_fp16_training_scales_the_loss_and_keeps_fp32_weights_on_the_gpu(tiny, tmp_path):
    seen = []

    def recording_loss(model, batch):
        seen.append((batch["input_ids"].device.type, torch.is_autocast_enabled("cuda"),
                     torch.get_autocast_dtype("cuda")))
        out = model(**batch)
        return out.loss, {}
    model = _train(tiny, tmp_path / "m", loss_fn=recording_loss, mixed_precision="auto")   # auto = fp16 on CUDA
    assert device().type == "cuda" and model_device(model).type == "cuda"
    assert set(seen) == {("cuda", True, torch.float16)}
    assert {p.dtype for p in model.parameters()} == {torch.float32}     # master weights stay fp32
    assert (tmp_path / "m" / "checkpoint-last" / "scaler.pt").exists()   # the GradScaler's state is checkpointed
    log = [e for e in read_log(tmp_path / "m") if e["kind"] == "train"]
    assert log[-1]["loss"] < log[0]["loss"] and all(e["sec_per_update"] > 0 for e in log)


def test_a_resumed_gpu_run_ends_within_tolerance_of_the_uninterrupted_one(tiny, tmp_path):
    full = _train(tiny, tmp_path / "full", save_every=1)
    calls = {"n": 0}

    def crash_at_update_4(model, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return model(**batch).loss, {}
    with pytest.raises(KeyboardInterrupt):
        _train(tiny, tmp_path / "cut", loss_fn=crash_at_update_4, save_every=1)
    resumed = _train(tiny, tmp_path / "cut", save_every=1)
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=n)
    full_log, cut_log = read_log(tmp_path / "full"), read_log(tmp_path / "cut")
    assert [(e["kind"], e["update"]) for e in full_log] == [(e["kind"], e["update"]) for e in cut_log]
    assert set(full_log[0]) - set(CLOCK_FIELDS) == set(cut_log[0]) - set(CLOCK_FIELDS)
    for a, b in zip(full_log, cut_log):
        if "loss" in a:
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-3)


def test_predict_evaluate_and_bench_run_on_the_gpu(tiny, tmp_path):
    path, examples, tok, cfg, _ = tiny
    _train(tiny, tmp_path / "m")
    model = load_qa_model(tmp_path / "m", attn_implementation="sdpa")
    gpu, _ = evaluate_model(model, tok, examples, max_length=64, stride=16)
    assert model_device(model).type == "cuda"                       # scoring placed it (kit.device's rule)
    run = lambda *args, **env: subprocess.run([sys.executable, "-m", "kit", *args], capture_output=True, text=True,
                                              env={**os.environ, **env})
    for where in ("cuda", "cpu"):
        r = run("evaluate", "--model", str(tmp_path / "m"), "--data", str(path), KIT_DEVICE=where)
        assert r.returncode == 0, r.stderr
        metrics = json.loads(r.stdout.strip().splitlines()[-1])
        assert metrics["f1"] == pytest.approx(gpu["f1"], abs=1.0), where   # same answers, up to rounding
    r = run("predict", "--model", str(tmp_path / "m"), "--data", str(path), "--out", str(tmp_path / "p.json"),
            "--precision", "int8")
    assert r.returncode == 0, r.stderr                                      # int8: a CPU copy, said on stderr
    assert set(json.loads((tmp_path / "p.json").read_text())) == {e.id for e in examples}
    r = run("bench", "--model", str(tmp_path / "m"), "--batch-sizes", "1", "--seq-lens", "64", "--rounds", "3",
            "--int8", "--out", str(tmp_path / "bench.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["device"] == "cuda" and "int8 runs on the CPU only" in r.stderr
    assert [m["variant"] for m in report["models"]] == ["fp32"] + ["bf16"] * bf16_supported()   # no int8


def test_distillation_and_its_heatmap_inputs_follow_the_models(tiny, tmp_path):
    from kit.device import batch_to
    from kit.distill import DistillLoss, use_attention_maps
    from kit.student import build_student
    path, examples, tok, cfg, _ = tiny
    teacher = build_qa_model(cfg)
    student = build_student(teacher, num_hidden_layers=1, init="teacher_layers")
    feats = make_features(examples, tok, 64, 16)
    train(student, feats, TrainConfig(out_dir=str(tmp_path / "s"), epochs=1, batch_size=4), pad_id=tok.pad_token_id,
          loss_fn=DistillLoss(teacher, student))
    assert model_device(student).type == "cuda" and model_device(teacher).type == "cuda"   # the loss moved it
    enc = tok(examples[0].question, examples[0].context, return_tensors="pt")
    with torch.no_grad():
        maps = use_attention_maps(student)(**batch_to(enc, student), output_attentions=True).attentions
    assert maps[0].device.type == "cuda"
