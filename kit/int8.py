"""int8 inference on CPU: the encoder's nn.Linear layers multiply in 8-bit integers.

    fast = quantize_int8(model)          # a copy; the QA head, embeddings and LayerNorms stay fp32

Each Int8Linear stores its weight in int8 with one scale per output channel, and at run time rounds its
input to int8 with **one scale per token** (row), multiplies int8 x int8 into int32 (kit.precision.int8_matmul,
which uses the CPU's VNNI instructions where it has them), then scales back to fp32:

    y[t, o] = (sum_i xq[t, i] * wq[o, i]) * x_scale[t] * w_scale[o] + bias[o]

An attention block's query, key and value read the same input: quantize_int8 stacks them into one
StackedInt8Linear (one quantise, one GEMM, one dequantise for the three; the same numbers).

Why per token and not what torch.ao.quantization.quantize_dynamic does (one scale for the whole activation
tensor, on 7 bits): one large activation then sets the step for every token, and the small ones round to
zero. On the es-local 8-layer student (held-out training articles, F1 78.84 in fp32) that cost 27 F1 with
the feed-forward layers in int8 (51.45), where this scheme on every encoder layer costs 0.6 (78.24); the
relative error of a feed-forward output layer fell from 0.16-0.30 to 0.02. On the test file the 8-layer
student keeps F1 58.80 of its fp32 58.84 (results/es-local). torchao 0.18's Int8DynamicActivationInt8WeightConfig
computes the same numbers but was slower here: 4.05 ms for one 1536 -> 384 layer on 384 tokens and 1 thread,
against 4.46 ms in fp32 and 2.21 ms for a first version of this layer, measured in one run.

Why the epilogue is written in place (.float().mul_().mul_().add_()): multiplying the int32 product by a
float tensor directly, or with torch.addcmul, was 14-19x slower on this CPU than these three in-place passes (384 x 1536 outputs: 1.2-1.6 ms against 0.09).
"""
from __future__ import annotations

import copy
import logging
import re

import torch

from .device import INT8_ON_CPU
from .device import device as kit_device
from .precision import int8_matmul

FEED_FORWARD_LINEAR = r"(layer\.\d+\.(intermediate|output)\.dense|mlp\.W[io])$"   # BERT/RoBERTa, ModernBERT
QA_HEAD = "qa_outputs"


class Int8Linear(torch.nn.Module):
    """An nn.Linear for inference with int8 weights (per output channel) and int8 activations (per token)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        w_scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)   # an all-zero row keeps scale > 0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("w_scale", w_scale)
        # stored as (in, out): int8_matmul multiplies (tokens, in) @ (in, out)
        self.register_buffer("weight_t", torch.round(w / w_scale[:, None]).to(torch.int8).t().contiguous())
        bias = linear.bias.detach().float().clone() if linear.bias is not None else torch.zeros(self.out_features)
        self.register_buffer("bias", bias)

    # kit.bench.where_time_goes sets this while it profiles: each step then runs in a range of its own
    # (record_function), so the profile shows what int8 costs (quantise, dequantise) beside what it saves (GEMM)
    label_steps = False

    def quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, in) fp32 -> int8 with one scale per token: (x_q, x_max), x ~ x_q * x_max / 127."""
        x_max = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)   # a token of zeros stays zeros
        return (x * (127 / x_max)).round_().to(torch.int8), x_max      # |x| <= x_max, so no clamp is needed

    def gemm(self, x_q: torch.Tensor) -> torch.Tensor:
        """int8 (tokens, in) @ int8 (in, out) -> int32, exact."""
        return int8_matmul(x_q, self.weight_t)

    def dequantise(self, y: torch.Tensor, x_max: torch.Tensor) -> torch.Tensor:
        """int32 -> fp32: times each token's and each output channel's scale, plus the bias."""
        return y.float().mul_(x_max / 127).mul_(self.w_scale).add_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if self.label_steps:
            y = self._labelled(x)
        else:
            x_q, x_max = self.quantise(x)
            y = self.dequantise(self.gemm(x_q), x_max)
        return y.reshape(*shape[:-1], self.out_features)

    def _labelled(self, x: torch.Tensor) -> torch.Tensor:
        from torch.profiler import record_function
        with record_function("kit::int8_quantise"):
            x_q, x_max = self.quantise(x)
        with record_function("kit::int8_gemm"):
            y = self.gemm(x_q)
        with record_function("kit::int8_dequantise"):
            return self.dequantise(y, x_max)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights and activations"


QKV = ("query", "key", "value")   # BERT, RoBERTa: an attention block's three projections, which read one input


class StackedInt8Linear(Int8Linear):
    """The query, key and value projections of one attention block as one Int8Linear over their stacked weights.

    The three read the same input, so it is quantised once and multiplied in one GEMM instead of three smaller ones
    (each call of the integer GEMM has a fixed cost, and each step another pass over memory): on the demo's student
    at batch 1, eager int8 8.41 -> 7.99 ms and unfrozen compiled int8 6.10 -> 5.67 ms; compiled with frozen weights
    (kit.bench.compiled) the gain was within run-to-run noise (2-core Intel Xeon with AMX, docs/speed.md). Every output channel keeps its own weight scale and every token its own, so each part's numbers
    are exactly those of its own Int8Linear. The block still calls `query(x)`, `key(x)` and `value(x)` (Int8Part):
    the first part asked for an input computes all three, the others reuse them, and the last one lets them go."""

    def __init__(self, linears: list[torch.nn.Linear]):
        stacked = torch.nn.Linear(linears[0].in_features, sum(lin.out_features for lin in linears))
        with torch.no_grad():
            stacked.weight.copy_(torch.cat([lin.weight for lin in linears]))
            stacked.bias.copy_(torch.cat([lin.bias if lin.bias is not None else torch.zeros(lin.out_features)
                                          for lin in linears]))
        super().__init__(stacked)
        self.sizes = [lin.out_features for lin in linears]
        self._input, self._parts = None, None

    def part(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Output `index` of the stacked linears for input `x`."""
        if self._input is not x:    # a new input (or a part asked twice): compute every part once
            self._input, self._parts = x, self(x).split(self.sizes, dim=-1)
        out = self._parts[index]
        if index == len(self.sizes) - 1:   # the last part read: hold no tensor between forwards
            self._input, self._parts = None, None
        return out


class Int8Part(torch.nn.Module):
    """One linear of a StackedInt8Linear, called as that nn.Linear was."""

    def __init__(self, stacked: StackedInt8Linear, index: int):
        super().__init__()
        self.__dict__["stacked"] = stacked   # not a submodule: the attention block holds it once, as `int8_qkv`
        self.index, self.in_features, self.out_features = index, stacked.in_features, stacked.sizes[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stacked.part(self.index, x)

    def extra_repr(self) -> str:
        return f"part {self.index} of the block's int8_qkv, out_features={self.out_features}"


def quantize_int8(model, which: str = "all", stack_qkv: bool = True):
    """A copy of `model` whose encoder nn.Linear layers are Int8Linear: all of them (which="all", the default)
    or only the feed-forward ones (which="feed_forward"). The QA head stays fp32: it is d x 2, so rounding it
    saves nothing, and its logits choose the span. With `stack_qkv` (and which="all"), each attention block's query,
    key and value become one StackedInt8Linear: the same numbers in one GEMM. CPU only (int8_matmul on GPUs wants
    other shapes; use bf16 there): the copy of a GPU model is made on the CPU and stays there. Check F1 on your own
    model: notebook 04 scores every variant it times."""
    if which not in ("feed_forward", "all"):
        raise ValueError(f"which {which!r}: choose 'feed_forward' or 'all'.")
    device = next(model.parameters()).device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"quantize_int8 makes a CPU model and this one is on {device}: call model.cpu() first, "
                         f"or use bf16 on a GPU (kit.precision.to_bf16).")
    if "cuda" in (device.type, kit_device().type):   # the copy goes to, and stays on, the CPU (kit.device's rule 3)
        logging.getLogger(__name__).info("%s: the int8 copy is made and run on the CPU", INT8_ON_CPU)
    model = copy.deepcopy(model).cpu().eval()
    model.kit_cpu_only = True   # kit.device.place leaves it on the CPU
    chosen = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
              and not name.endswith(QA_HEAD) and (which == "all" or re.search(FEED_FORWARD_LINEAR, name))]
    if stack_qkv:
        blocks = {name.rpartition(".")[0] for name in chosen if name.rpartition(".")[2] in QKV}
        for block in sorted(blocks):
            holder = model.get_submodule(block)
            names = [f"{block}.{child}" if block else child for child in QKV]
            linears = [getattr(holder, child, None) for child in QKV]
            if not all(n in chosen for n in names) or len({lin.in_features for lin in linears}) != 1:
                continue
            holder.int8_qkv = StackedInt8Linear(linears)
            for index, child in enumerate(QKV):
                setattr(holder, child, Int8Part(holder.int8_qkv, index))
            chosen = [n for n in chosen if n not in names]
    for name in chosen:
        parent, _, child = name.rpartition(".")
        holder = model.get_submodule(parent)
        setattr(holder, child, Int8Linear(getattr(holder, child)))
    return model


def _time_pair(fp32, int8, rounds: int) -> tuple[float, float]:
    """Median milliseconds of two calls, timed in turns (one of each per round, after one untimed call each)."""
    import statistics
    import time
    fp32(), int8()
    times = ([], [])
    for _ in range(rounds):
        for i, call in enumerate((fp32, int8)):
            t0 = time.perf_counter()
            call()
            times[i].append(1000 * (time.perf_counter() - t0))
    return statistics.median(times[0]), statistics.median(times[1])


@torch.no_grad()
def gemm_limit(model, tokens: int, rounds: int = 20, seed: int = 0) -> list[dict]:
    """The most int8 can save in `model`'s linear layers on this CPU: for each (in, out) shape of the Int8Linear
    layers that quantize_int8 makes of it (a block's stacked query, key and value are one), the fp32 product of a
    (tokens, in) input by a weight of that shape against the integer GEMM alone (int8_matmul, no quantising or
    scaling), timed in turns; then a row "all linears" weighing each shape by how many layers have it. Its `speedup`
    is the limit an end-to-end int8 speed-up is held to."""
    torch.manual_seed(seed)
    shapes: dict[tuple[int, int], int] = {}
    int8 = model if any(isinstance(m, Int8Linear) for m in model.modules()) else quantize_int8(model)
    for m in int8.modules():
        if isinstance(m, Int8Linear):
            shapes[(m.in_features, m.out_features)] = shapes.get((m.in_features, m.out_features), 0) + 1
    rows = []
    for (n_in, n_out), count in shapes.items():
        x, w = torch.randn(tokens, n_in), torch.randn(n_out, n_in)
        x_q, w_t = torch.randint(-127, 128, (tokens, n_in), dtype=torch.int8), torch.randint(
            -127, 128, (n_in, n_out), dtype=torch.int8)
        fp32_ms, int8_ms = _time_pair(lambda: torch.nn.functional.linear(x, w), lambda: int8_matmul(x_q, w_t), rounds)
        rows.append({"shape": f"{tokens}x{n_in} @ {n_in}x{n_out}", "layers": count, "fp32_ms": fp32_ms,
                     "int8_gemm_ms": int8_ms, "speedup": fp32_ms / int8_ms})
    fp32_all = sum(r["layers"] * r["fp32_ms"] for r in rows)
    int8_all = sum(r["layers"] * r["int8_gemm_ms"] for r in rows)
    rows.append({"shape": "all linears", "layers": sum(shapes.values()), "fp32_ms": fp32_all,
                 "int8_gemm_ms": int8_all, "speedup": fp32_all / int8_all})
    return rows
