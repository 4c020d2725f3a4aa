"""Precision: which number formats this machine computes fast, and every private torch or accelerate call
the kit makes for them, each with why.

    resolve_mixed_precision("auto")      # training: what accelerate is told ("fp16", "bf16" or "no")
    to_bf16(model)                       # inference: a bf16 copy (kit.inference.with_precision chooses)

- fp16: only on a CUDA GPU (a CPU has no fast fp16 matrix multiply); training only, with loss scaling.
- bf16: on a GPU, or on a CPU that multiplies bf16 natively (AVX512-BF16 or AMX). Elsewhere torch emulates
  it, slower than fp32, so the kit refuses it there instead of silently running slower.
- int8: on a CPU, through kit.int8 (int8 weights and activations, int32 products: `int8_matmul`).

The private calls live here and nowhere else, so that a torch or accelerate upgrade that moves one breaks
one module, with the reason next to it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from .device import device, model_device

MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")   # training (accelerate's names; "no" is fp32)


def bf16_supported(where=None) -> bool:
    """Whether bf16 is fast where models run (`where`, default kit.device.device()): on a GPU that computes it
    natively (Ampere and later; a T4 emulates it), on a CPU only with native bf16 instructions. Asked of the
    device a model is really on: a CPU model on a GPU machine is a CPU question."""
    where = torch.device(where) if where is not None else device()
    if where.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return native_cpu_bf16()


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")   # the x86 instructions that multiply bf16 in hardware


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags as Linux lists them in /proc/cpuinfo (an empty set elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())


def cpu_description() -> dict:
    """The CPU's model name and the instruction sets that decide int8 and bf16 speed, for a benchmark's record."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    except OSError:
        import platform
        model = platform.processor()
    isa = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")
    return {"model": model, "instruction_sets": [f for f in isa if f in cpu_flags()]}


def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Where Linux lists the CPU's flags, they
    answer. Not oneDNN's own probe (torch.ops.mkldnn._is_mkldnn_bf16_supported, private): it says yes for any
    AVX-512 CPU, bf16 instructions or not, and on an Intel Xeon with AVX-512 but without AVX512-BF16 it made
    `auto` train in emulated bf16, 1.75 s per update of the demo's teacher where fp32 takes a fraction of that.
    Without a flags list (not Linux), that probe is all there is."""
    flags = cpu_flags()
    if flags:
        return any(f in flags for f in NATIVE_BF16_FLAGS)
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_mixed_precision(choice: str) -> str:
    """What accelerate is told. "auto" is the fastest precision the hardware does well: fp16 on CUDA, bf16 on a
    CPU that multiplies bf16 natively (AVX512-BF16 or AMX), plain fp32 ("no") elsewhere. On the es-local e5-small
    shapes bf16 made a teacher update about 1.5x and a distillation update about 1.7x faster on this kit's
    machine, every loss term within 0.5% of fp32's on the same batch (results/es-local/bf16_training_speed.py).
    "no" gives the same fp32 numbers on every CPU (the es-local profile's published runs). "fp16" without a
    GPU and "bf16" on a CPU without native bf16 are refused: the first does not exist on a CPU, the second,
    emulated, would be slower than fp32."""
    if choice not in MIXED_PRECISIONS:
        raise ValueError(f"mixed_precision {choice!r}: choose one of {', '.join(MIXED_PRECISIONS)}.")
    cuda = device().type == "cuda"   # where the loop will train (kit.device: KIT_DEVICE=cpu pins the CPU)
    if choice == "auto":
        return "fp16" if cuda else "bf16" if bf16_supported() else "no"
    if choice == "fp16" and not cuda:
        raise ValueError("mixed_precision 'fp16' needs a CUDA GPU and none is visible (or KIT_DEVICE pins the "
                         "CPU): on a CPU use 'no' (or 'bf16' where the CPU has native bf16).")
    if choice == "bf16" and not bf16_supported():
        raise ValueError(f"mixed_precision 'bf16': this {'GPU' if cuda else 'CPU'} has no native bfloat16 matrix "
                         f"multiply ({'Ampere or later' if cuda else 'AVX512-BF16 or AMX'}), so bf16 training would be "
                         f"emulated and slow; use '{'fp16' if cuda else 'no'}'.")
    return choice


def forget_accelerate_precision(mixed_precision: str) -> None:
    """Let the next Accelerator of this process use `mixed_precision` even if an earlier one used another
    (a notebook kernel may train in bf16 after fp32). The process group, if any, stays as it is."""
    from accelerate.state import AcceleratorState
    # Private: accelerate keeps one AcceleratorState per process (a shared dict, `_shared_state`) and raises
    # "AcceleratorState has already been initialized and cannot be changed" when a later Accelerator asks for
    # another precision; it has no public call to forget it. `_reset_state()` clears only that dict (not
    # PartialState, which holds the process group), so it is done only when the precision really changes.
    if AcceleratorState._shared_state.get("_mixed_precision", mixed_precision) != mixed_precision:
        AcceleratorState._reset_state()


def forget_accelerate_device(cpu: bool) -> None:
    """Let the next Accelerator of this (single) process train on the CPU or the GPU even if an earlier one used
    the other (KIT_DEVICE changed in one process, as the test suite does on a GPU machine)."""
    from accelerate.state import AcceleratorState, PartialState
    # Private, as above: PartialState keeps the first device for the whole process; with cpu=True after a GPU
    # run accelerate raises "already been initialized", and with cpu=False after a CPU run it silently stays on
    # the CPU. A process group (several processes) is never reset: there every process keeps its device.
    state = PartialState._shared_state
    dev = state.get("device")
    if dev is not None and state.get("num_processes", 1) == 1 and (dev.type == "cpu") != cpu:
        AcceleratorState._reset_state(reset_partial_state=True)


def to_bf16(model):
    """A bfloat16 copy for inference. bf16 keeps fp32's exponent range: on the es-local teacher (held-out
    training articles) it kept F1 76.47 of 76.85. It is fast only where the CPU multiplies bf16
    natively (AVX512-BF16 or AMX: recent Xeon and EPYC; 1.6x on this kit's machine); elsewhere it is
    emulated and slower than fp32, so it is refused there (`bf16_supported`)."""
    if not bf16_supported(model_device(model)):
        raise RuntimeError("this CPU has no native bfloat16 matrix multiply (AVX512-BF16 or AMX), so a bf16 "
                           "model would run slower than fp32: use int8 (kit.int8.quantize_int8) or fp32.")
    return copy.deepcopy(model).eval().to(torch.bfloat16)


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """int8 (m, k) @ int8 (k, n) -> int32 (m, n), exact (no overflow below k = 2**17)."""
    # Private: torch._int_mm is torch's only int8 x int8 -> int32 matrix multiply (torch.ao and torchao call it
    # too); `a.int() @ b.int()` would be exact but multiplies in int32, many times slower. On a CPU it uses the
    # VNNI dot-product instructions where there are some. On CUDA it wants m > 16 and k, n multiples of 8,
    # which is one reason kit.int8 is CPU only.
    return torch._int_mm(a, b)
