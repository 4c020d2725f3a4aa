import pytest
import torch

import kit.precision
from kit.models import build_qa_model, qa_config
from kit.inference import with_precision
from kit.precision import (MIXED_PRECISIONS, bf16_supported, forget_accelerate_precision, int8_matmul,
                           resolve_mixed_precision, to_bf16)


def _model():
    torch.manual_seed(0)
    return build_qa_model(qa_config("roberta", vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, max_length=64)).eval()


def _batch():
    ids = torch.randint(5, 100, (2, 32), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_mixed_precision_is_checked_against_the_hardware(monkeypatch):
    monkeypatch.delenv("KIT_DEVICE", raising=False)
    assert MIXED_PRECISIONS == ("auto", "no", "fp16", "bf16")
    with pytest.raises(ValueError, match="'fp8': choose one of auto, no, fp16, bf16"):
        resolve_mixed_precision("fp8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)          # the CPU rules, on any machine
    assert resolve_mixed_precision("no") == "no"              # the same fp32 numbers on every CPU
    with pytest.raises(ValueError, match="'fp16' needs a CUDA GPU and none is visible.*: on a CPU use 'no'"):
        resolve_mixed_precision("fp16")
    monkeypatch.setattr(kit.precision, "bf16_supported", lambda *where: False)
    assert resolve_mixed_precision("auto") == "no"            # emulated bf16 would be slower: fp32
    with pytest.raises(ValueError, match="no native bfloat16.*use 'no'"):
        resolve_mixed_precision("bf16")
    monkeypatch.setattr(kit.precision, "bf16_supported", lambda *where: True)
    assert resolve_mixed_precision("auto") == "bf16" and resolve_mixed_precision("bf16") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_mixed_precision("auto") == "fp16" and resolve_mixed_precision("fp16") == "fp16"
    monkeypatch.setenv("KIT_DEVICE", "cpu")                 # a GPU machine pinned to the CPU trains as a CPU does
    assert resolve_mixed_precision("auto") == "bf16"
    with pytest.raises(ValueError, match="'fp16' needs a CUDA GPU"):
        resolve_mixed_precision("fp16")


def test_bf16_supported_asks_the_device_models_run_on(monkeypatch):
    monkeypatch.delenv("KIT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert bf16_supported() is True                          # a GPU that computes bf16 natively
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert bf16_supported() is False                         # a T4 emulates it: not "fast"
    cpu_answer = kit.precision.native_cpu_bf16()
    assert bf16_supported("cpu") is cpu_answer               # a CPU model on a GPU machine: the CPU's answer
    monkeypatch.setenv("KIT_DEVICE", "cpu")                  # pinned to the CPU on a GPU machine
    assert bf16_supported() is cpu_answer
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("KIT_DEVICE")
    assert bf16_supported() is cpu_answer


def test_forget_accelerate_precision_only_when_it_changes():
    pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState
    saved = dict(AcceleratorState._shared_state)
    try:
        AcceleratorState._shared_state["_mixed_precision"] = "no"
        forget_accelerate_precision("no")                   # the same precision: nothing forgotten
        assert AcceleratorState._shared_state.get("_mixed_precision") == "no"
        forget_accelerate_precision("bf16")                 # another one: the state is forgotten
        assert "_mixed_precision" not in AcceleratorState._shared_state
    finally:
        AcceleratorState._shared_state.clear()
        AcceleratorState._shared_state.update(saved)


def test_int8_matmul_is_exact():
    a = torch.randint(-128, 128, (5, 64), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    b = torch.randint(-128, 128, (64, 8), dtype=torch.int8, generator=torch.Generator().manual_seed(1))
    out = int8_matmul(a, b)
    assert out.dtype == torch.int32 and torch.equal(out, a.int() @ b.int())


def test_with_precision_int8_is_close_to_fp32_and_leaves_the_original_alone():
    model, batch = _model(), _batch()
    with pytest.raises(ValueError, match="choose one of \\('fp32', 'bf16', 'int8'\\)"):
        with_precision(model, "fp16")
    assert with_precision(model, "fp32") is model
    quantized = with_precision(model, "int8")
    with torch.no_grad():
        ref, q = model(**batch), quantized(**batch)
    assert type(model.roberta.encoder.layer[0].intermediate.dense) is torch.nn.Linear    # the original untouched
    err = (q.start_logits - ref.start_logits).abs().max() / ref.start_logits.abs().max()
    assert 0 < err < 0.05                 # rounded to 8 bits: close, not equal


def test_bf16_copy_is_close_to_fp32_or_refused_where_emulated(monkeypatch):
    model, batch = _model(), _batch()
    if bf16_supported():
        half = with_precision(model, "bf16")
        assert model.qa_outputs.weight.dtype == torch.float32 and half.qa_outputs.weight.dtype == torch.bfloat16
        with torch.no_grad():
            ref, h = model(**batch), half(**batch)
        err = (h.start_logits.float() - ref.start_logits).abs().max() / ref.start_logits.abs().max()
        assert 0 < err < 0.05                 # rounded to 8 bits of mantissa: close, not equal
    monkeypatch.setattr(kit.precision, "bf16_supported", lambda *where: False)
    with pytest.raises(RuntimeError, match="no native bfloat16.*use int8"):
        to_bf16(model)
    with pytest.raises(RuntimeError, match="no native bfloat16"):
        with_precision(model, "bf16")


def test_native_cpu_bf16_reads_the_cpus_own_flags(monkeypatch):
    """AVX-512 without AVX512-BF16 emulates bf16 (oneDNN's probe says yes there too): only the bf16 instructions
    count, AVX512-BF16 or AMX; without a flags list the probe is the fallback."""
    avx512 = {"sse2", "avx2", "avx512f", "avx512bw", "avx512_vnni"}
    for flags, native in ((avx512, False), (avx512 | {"avx512_bf16"}, True), (avx512 | {"amx_bf16", "amx_tile"}, True)):
        monkeypatch.setattr(kit.precision, "cpu_flags", lambda f=flags: f)
        assert kit.precision.native_cpu_bf16() is native, flags
        assert bf16_supported("cpu") is native
    monkeypatch.setattr(kit.precision, "cpu_flags", set)
    probe = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert kit.precision.native_cpu_bf16() is probe
