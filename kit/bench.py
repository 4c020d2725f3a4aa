"""Measured speed: latency of a model on real windows, after warm-up, as a median over repeats.

    ms = latency_ms(model, tokenizer, examples, batch_size=1, max_length=256)

Why a median after warm-up: the first calls pay for memory allocation and kernel selection, and a
shared machine adds outliers; the median of many repeats is what a user sees in steady state.
On GPU every timing waits for the device (torch.cuda.synchronize), or it would time only the launch.
Never time while another job shares the cores: both slow down and the numbers mean nothing.
"""
from __future__ import annotations

import statistics
import time

import torch

from .features import collate, make_features


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_forward(model, batch: dict, warmup: int = 3, repeats: int = 20) -> list[float]:
    """Milliseconds of each of `repeats` forward passes on `batch`, after `warmup` untimed ones."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
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
    times = sorted(time_forward(model, batch, warmup, repeats))
    return {"latency_ms": round(statistics.median(times), 3),
            "latency_p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 3),
            "batch_size": batch_size, "seq_len": int(batch["input_ids"].shape[1])}


def flops_per_token(config, seq_len: int) -> int:
    """Analytic forward FLOPs per token of an encoder (multiply-add = 2 FLOPs), embeddings excluded:
    per layer, Q/K/V/output projections 4·d² and the feed-forward 2·d·f weights (2 FLOPs each), and the
    attention itself, q·kᵀ and probs·v, 2·2·seq·d. The QA head (2·d·2) is added once."""
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    glu = 2 if config.model_type == "modernbert" else 1     # ModernBERT's GLU doubles the input projection
    per_layer = 2 * (4 * d * d + (glu + 1) * d * f) + 4 * seq_len * d
    return n * per_layer + 2 * d * 2
