"""Measured speed: latency of a model on real windows, after warm-up, as a median over repeats.

    ms = latency_ms(model, tokenizer, examples, batch_size=1, max_length=256)

Why a median after warm-up: the first calls pay for memory allocation and kernel selection, and a
shared machine adds outliers; the median of many repeats is what a user sees in steady state.
On GPU every timing waits for the device (torch.cuda.synchronize), or it would time only the launch.
Never time while another job shares the cores: both slow down and the numbers mean nothing.
"""
from __future__ import annotations

import contextlib
import os

import statistics
import time

import torch

from .features import collate, make_features
from .int8 import quantize_int8  # noqa: F401  (kit.bench.quantize_int8: where notebooks and the CLI find it)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_forward(model, batch: dict, warmup: int = 3, repeats: int = 20) -> list[float]:
    """Milliseconds of each of `repeats` forward passes on `batch`, after `warmup` untimed ones."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}  # e.g. a multi-task "task"
    was_training = model.training
    model.eval()
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        model(**batch)
        _sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    model.train(was_training)
    return times


def latency_ms(model, tokenizer, examples, batch_size: int = 1, max_length: int = 256, stride: int = 64,
               warmup: int = 3, repeats: int = 20) -> dict:
    """Median and p90 latency (ms) of one forward pass over the first `batch_size` windows of `examples`."""
    feats = make_features(examples[:batch_size * 4], tokenizer, max_length, stride)
    if len(feats) < batch_size:
        raise ValueError(f"{len(feats)} windows, fewer than batch_size {batch_size}: give more examples.")
    batch = collate(feats, list(range(batch_size)), tokenizer.pad_token_id, with_labels=False)
    return {**median_p90(time_forward(model, batch, warmup, repeats)),
            "batch_size": batch_size, "seq_len": int(batch["input_ids"].shape[1])}


def median_p90(times: list[float]) -> dict:
    times = sorted(times)
    return {"latency_ms": round(statistics.median(times), 3),
            "latency_p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 3)}


def flops_per_token(config, seq_len: int) -> int:
    """Analytic forward FLOPs per token of an encoder (multiply-add = 2 FLOPs), embeddings excluded:
    per layer, Q/K/V/output projections 4·d² and the feed-forward 2·d·f weights (2 FLOPs each), and the
    attention itself, q·kᵀ and probs·v, 2·2·seq·d. The QA head (2·d·2) is added once."""
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    glu = 2 if config.model_type == "modernbert" else 1     # ModernBERT's GLU doubles the input projection
    per_layer = 2 * (4 * d * d + (glu + 1) * d * f) + 4 * seq_len * d
    return n * per_layer + 2 * d * 2


def random_batch(vocab_size: int, batch_size: int, seq_len: int, seed: int = 0) -> dict:
    """Token ids with no padding: speed does not depend on which tokens, only on how many."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch_size, seq_len), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def to_bf16(model):
    """A bfloat16 copy for inference. bf16 keeps fp32's exponent range: on the es-local teacher (held-out
    training articles) it kept F1 76.47 of 76.85. It is fast only where the CPU multiplies bf16
    natively (AVX512-BF16 or AMX: recent Xeon and EPYC; 1.6x on this kit's machine); elsewhere it is
    emulated and slower than fp32, so it is refused there (`bf16_supported`)."""
    import copy
    if not bf16_supported():
        raise RuntimeError("this CPU has no native bfloat16 matrix multiply (AVX512-BF16 or AMX), so a bf16 "
                           "model would run slower than fp32: use int8 (quantize_int8) or fp32.")
    return copy.deepcopy(model).eval().to(torch.bfloat16)


def bf16_supported() -> bool:
    """Whether bf16 inference is fast here: always on CUDA, on CPU only with native bf16 instructions."""
    if torch.cuda.is_available():
        return True
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


PRECISIONS = ("fp32", "bf16", "int8")


def with_precision(model, precision: str):
    """`model` for inference in `precision`: fp32 as it is, bf16 (to_bf16) or int8 encoder layers
    (kit.int8.quantize_int8)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {PRECISIONS}.")
    return {"fp32": lambda m: m.eval(), "bf16": to_bf16, "int8": quantize_int8}[precision](model)


def bench_shapes(model, vocab_size: int, batch_sizes=(1, 8), seq_lens=(384,), warmup: int = 2,
                 repeats: int = 10) -> list[dict]:
    """Latency (median, p90) and throughput of `model` over batch sizes and sequence lengths."""
    rows = []
    for seq in seq_lens:
        for bs in batch_sizes:
            lat = median_p90(time_forward(model, random_batch(vocab_size, bs, seq), warmup, repeats))
            ms = lat["latency_ms"]
            rows.append({"batch_size": bs, "seq_len": seq, **lat,
                         "sequences_per_s": round(1000 * bs / ms, 2), "tokens_per_s": round(1000 * bs * seq / ms, 1)})
    return rows


def interleaved_times(models: dict, batches: dict, rounds: int, warmup: int = 1, repeats: int = 1) -> dict:
    """{model name: {batch key: [ms, ...]}}: each of `rounds` rounds takes the models in turn and times each on
    every batch (`warmup` untimed passes, then `repeats` timed ones), so `rounds * repeats` times each.
    Timing one model after the other lets a slow spell of a shared machine fall on one of them only: we saw
    the same ratio move from 0.88 to 1.07 of its FLOPs bound between two such runs, and two models of one
    shape come out 15% apart when each was timed 6 times in a row."""
    times = {name: {key: [] for key in batches} for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            for key, batch in batches.items():
                times[name][key] += time_forward(model, batch, warmup, repeats)
    return times


def timing_batches(examples, tokenizer, batch_sizes=(1,), max_length: int = 384, stride: int = 128) -> dict[int, dict]:
    """{batch size: a batch of windows of `examples`}, the windows that fill `max_length` first, in file order:
    latency is defined on full windows (CONTRACTS.md: 384 tokens); short paragraphs give the longest they have."""
    feats = make_features(examples, tokenizer, max_length, stride)
    if len(feats) < max(batch_sizes):
        raise ValueError(f"{len(feats)} windows, fewer than batch size {max(batch_sizes)}: give more examples.")
    longest = sorted(range(len(feats)), key=lambda i: -len(feats.input_ids[i]))   # stable: file order among equals
    return {b: collate(feats, longest[:b], tokenizer.pad_token_id, with_labels=False) for b in batch_sizes}


def entry_models(run_dir, entries: list[dict], device=None) -> dict:
    """{summary entry name: its model as it was scored}: the folder of the entry's `base` model under
    `run_dir` (the entry's own name when it has none) in its `precision` (fp32 when none), each folder loaded
    once. A multi-task student loads as its QA model, the part that answers questions and is timed."""
    from pathlib import Path
    from .models import load_qa_model
    loaded, out = {}, {}
    for e in entries:
        base, precision = e.get("base", e["name"]), e.get("precision", "fp32")
        if base not in loaded:
            folder = Path(run_dir) / base
            if not (folder / "config.json").exists():
                raise FileNotFoundError(f"{folder}: no saved model for the summary entry {e['name']!r} of "
                                        f"{Path(run_dir) / 'summary.json'}. Rerun the notebook that trains it, or "
                                        f"remove the entry from the summary.")
            loaded[base] = load_qa_model(folder, attn_implementation="sdpa").eval().to(device or "cpu")
        out[e["name"]] = with_precision(loaded[base], precision)
    return out


def interleaved_shapes(models: dict, vocab_size: int, batch_sizes=(1, 8), seq_lens=(384,), rounds: int = 3,
                       warmup: int = 1, repeats: int = 2) -> dict[str, list[dict]]:
    """bench_shapes for several models at once, for ratios between them (interleaved_times on random
    batches): each model's latency at a shape is the median of its rounds' medians."""
    shapes = [(seq, bs) for seq in seq_lens for bs in batch_sizes]
    times = interleaved_times(models, {s: random_batch(vocab_size, s[1], s[0]) for s in shapes}, rounds, warmup,
                              repeats)
    out = {name: [] for name in models}
    for name, by_shape in times.items():
        for seq, bs in shapes:
            t = by_shape[(seq, bs)]
            lats = [median_p90(t[i:i + repeats]) for i in range(0, len(t), repeats)]
            ms = statistics.median(r["latency_ms"] for r in lats)
            out[name].append({"batch_size": bs, "seq_len": seq, "latency_ms": round(ms, 3),
                              "latency_p90_ms": round(statistics.median(r["latency_p90_ms"] for r in lats), 3),
                              "rounds": rounds, "sequences_per_s": round(1000 * bs / ms, 2),
                              "tokens_per_s": round(1000 * bs * seq / ms, 1)})
    return out


def speedup_table(teacher_rows: list[dict], student_rows: list[dict], teacher_config, student_config) -> list[dict]:
    """Measured speed-up next to the FLOPs ratio (the most a student of that size can gain) per shape."""
    out = []
    for t, s in zip(teacher_rows, student_rows):
        assert (t["batch_size"], t["seq_len"]) == (s["batch_size"], s["seq_len"])
        ratio = flops_per_token(teacher_config, t["seq_len"]) / flops_per_token(student_config, t["seq_len"])
        speedup = t["latency_ms"] / s["latency_ms"]
        out.append({"batch_size": t["batch_size"], "seq_len": t["seq_len"], "teacher_ms": t["latency_ms"],
                    "student_ms": s["latency_ms"], "speedup": round(speedup, 2), "flops_ratio": round(ratio, 2),
                    "speedup_over_flops_ratio": round(speedup / ratio, 3)})
    return out


def state_size_mb(model) -> float:
    """Megabytes of the model's state as torch.save writes it (int8 weights at one byte each)."""
    import io
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


PARTS = {"embeddings": r"embeddings$", "attention": r"layer\.\d+\.attention$",
         "feed_forward": r"layer\.\d+\.(intermediate|output)$", "qa_head": r"qa_outputs$"}


@torch.no_grad()
@contextlib.contextmanager
def _stderr_silenced():
    """The profiler's C++ side writes a "profiler_start/stop" line to file descriptor 2 at every start and stop
    (torch 2.13), which no setting turns off; a notebook would store them. Only that descriptor, only meanwhile."""
    import sys
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def where_time_goes(model, batch: dict, repeats: int = 3) -> dict:
    """Milliseconds per forward spent in the embeddings, the attention blocks, the feed-forward blocks and
    the QA head of a BERT-family model, from torch.profiler (each part's modules are labelled with
    record_function); `other` is the rest (masks, pooling of outputs, Python)."""
    import re
    from torch.profiler import ProfilerActivity, profile, record_function
    model.eval()
    handles, open_ranges = [], {}
    for name, module in model.named_modules():
        part = next((p for p, pattern in PARTS.items() if re.search(pattern, name)), None)
        if part is None:
            continue
        def pre(mod, args, part=part):
            open_ranges[id(mod)] = record_function(f"kit::{part}")
            open_ranges[id(mod)].__enter__()
        def post(mod, args, output):
            open_ranges.pop(id(mod)).__exit__(None, None, None)
        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        model(**batch)   # warm-up
        with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                with record_function("kit::forward"):
                    model(**batch)
    finally:
        for h in handles:
            h.remove()
    totals = {e.key: e.cpu_time_total / 1000 / repeats for e in prof.key_averages() if e.key.startswith("kit::")}
    parts = {p: round(totals.get(f"kit::{p}", 0.0), 3) for p in PARTS}
    parts["other"] = round(totals["kit::forward"] - sum(parts.values()), 3)
    return parts
