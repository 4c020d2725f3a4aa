"""kit.device's rule on any machine: KIT_DEVICE is read and checked, models move where they run (int8 stays on the
CPU), batches follow their model, and the inference, timing and training paths follow the rule. The `meta`
device stands in for a second device: moving to it and back needs no GPU."""
import pytest
import torch

import kit.device
from kit.device import batch_to, device, model_device, place
from kit.int8 import quantize_int8
from kit.models import build_qa_model, qa_config


def _model():
    torch.manual_seed(0)
    return build_qa_model(qa_config("roberta", vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=4, intermediate_size=64, max_length=64)).eval()


def test_kit_device_is_read_and_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("KIT_DEVICE", raising=False)
    assert device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device() == torch.device("cuda")                     # a visible GPU is the default
    monkeypatch.setenv("KIT_DEVICE", "CPU")
    assert device() == torch.device("cpu")                      # pinned: the CPU on a GPU machine
    monkeypatch.setenv("KIT_DEVICE", "cuda:1")
    with pytest.raises(ValueError, match="KIT_DEVICE='cuda:1': choose cpu or cuda .CUDA_VISIBLE_DEVICES"):
        device()
    monkeypatch.setenv("KIT_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="KIT_DEVICE=cuda but torch sees no CUDA GPU.*set it to cpu"):
        device()


def test_models_move_where_they_run_and_batches_follow_them():
    model = _model()
    assert place(model, "meta") is model and model_device(model).type == "meta"   # moved in place
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long), "task": "qa"}
    moved = batch_to(batch, model)
    assert moved["input_ids"].device.type == "meta" and moved["task"] == "qa"      # other values as they are
    assert batch["input_ids"].device.type == "cpu"                                 # the caller's batch untouched
    assert place(model, "meta") is model                                           # already there: nothing to do


def test_an_int8_copy_stays_on_the_cpu():
    q = quantize_int8(_model())
    assert getattr(q, "kit_cpu_only", False)
    assert place(q, "meta") is q and model_device(q).type == "cpu"


def test_scoring_and_timing_place_their_models(monkeypatch, tiny):
    from kit.bench import interleaved_times, random_batch
    from kit.features import make_features
    from kit.inference import window_logits
    placed = []
    real_place = kit.device.place

    def recording_place(model, target=None):
        placed.append(model)
        return real_place(model, target)
    monkeypatch.setattr("kit.inference.place", recording_place)
    monkeypatch.setattr("kit.bench.place", recording_place)
    path, examples, tok, cfg, _ = tiny
    model = build_qa_model(cfg)
    window_logits(model, make_features(examples, tok, 64, 16), tok.pad_token_id)
    interleaved_times({"m": model}, {1: random_batch(cfg.vocab_size, 1, 16)}, rounds=1)
    assert placed == [model, model]


def test_training_is_told_the_device(monkeypatch):
    import kit.train
    told = []
    monkeypatch.setattr(kit.train, "Accelerator", lambda **kw: told.append(kw["cpu"]))
    monkeypatch.setattr(kit.train, "set_seed", lambda seed: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)     # a GPU machine
    cfg = kit.train.TrainConfig(mixed_precision="no")
    monkeypatch.setenv("KIT_DEVICE", "cpu")
    kit.train.make_accelerator(cfg, multitask=False)
    monkeypatch.delenv("KIT_DEVICE")
    kit.train.make_accelerator(cfg, multitask=False)
    assert told == [True, False]    # pinned: the CPU, said explicitly (accelerate would take the GPU); else the GPU
