"""Measured training updates: paper-shaped distillation on the device the kit runs on, and the ETA it gives.

    python -m kit bench --paper-pair --train-step                     # 16 × 2 windows of 384 tokens, fp16 on a GPU
    python -m kit bench --paper-pair --train-step --batch-sizes 32 --grad-accum 1 --teacher-outputs mapped all

The paper's two shapes (kit.paper.paper_configs, random weights: speed does not depend on the values), random
full windows, DistillLoss with its four terms, the uniform layer map and one shared projection, through the kit's own
loop (`kit.train.Trainer.update`: micro-batches, accumulation, clipping, AdamW). Each kind of teacher output
(`teacher_outputs`: "mapped", only what the layer map reads; "all", every map and state) has its own trainer, and
the updates are interleaved between them, as kit.bench does for inference. After `warmup` untimed updates, each timed
update waits for the device before and after (kit.device.synchronize). Reported: the median seconds per update, the
peak GPU memory of an update (CUDA only: torch.cuda.max_memory_allocated), the TFLOP/s achieved, and the ETA of the
paper and paper-colab profiles at that speed (kit.profiles' epochs × kit.paper.UPDATES_PER_EPOCH).
"""
from __future__ import annotations

import statistics
import tempfile
import time

import torch

from .device import synchronize
from .features import Features


def random_windows(n: int, seq_len: int, vocab_size: int, seed: int = 0) -> Features:
    """`n` full windows of random token ids with random answer spans: all an update's timing needs."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (n, seq_len), generator=g).tolist()
    starts = torch.randint(1, seq_len // 2, (n,), generator=g).tolist()
    return Features(ids, list(range(n)), [[None] * seq_len] * n, starts, [s + 3 for s in starts])


def update_bench(batch_size: int = 16, grad_accum: int = 2, seq_len: int = 384, updates: int = 10, warmup: int = 2,
                 teacher_outputs=("mapped",), mixed_precision: str = "auto") -> dict:
    """{kind: {seconds_per_update, peak_gib, tflop_per_s, ...}} for each kind of teacher output, and the profiles'
    ETA at the first kind's speed; prints one line per kind."""
    from .distill import DistillLoss
    from .models import build_qa_model
    from .paper import UPDATES_PER_EPOCH, paper_configs, update_flops
    from .profiles import PROFILES
    from .train import Trainer, TrainConfig, duration
    t_cfg, s_cfg = paper_configs()
    torch.manual_seed(0)
    teacher, student = build_qa_model(t_cfg, "eager"), build_qa_model(s_cfg, "eager")
    windows = batch_size * grad_accum
    data = random_windows(windows, seq_len, t_cfg.vocab_size)
    flops = update_flops(s_cfg, windows, seq_len, t_cfg)
    trainers, times, peaks = {}, {k: [] for k in teacher_outputs}, {k: 0 for k in teacher_outputs}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in teacher_outputs:
            cfg = TrainConfig(out_dir=f"{tmp}/{kind}", batch_size=batch_size, grad_accum=grad_accum,
                              mixed_precision=mixed_precision, max_updates=warmup + updates, resume=False,
                              progress_every=float("inf"))
            trainers[kind] = Trainer(student, data, cfg, pad_id=1, loss_fn=DistillLoss(teacher, student,
                                                                                        teacher_outputs=kind))
        for step in range(warmup + updates):
            for kind, t in trainers.items():
                cuda = t.acc.device.type == "cuda"
                if cuda:
                    torch.cuda.reset_peak_memory_stats(t.acc.device)
                synchronize(t.acc.device)
                t0 = time.perf_counter()
                t.update(None, list(range(windows)))
                synchronize(t.acc.device)
                if step >= warmup:
                    times[kind].append(time.perf_counter() - t0)
                    if cuda:
                        peaks[kind] = max(peaks[kind], torch.cuda.max_memory_allocated(t.acc.device))
    where = next(iter(trainers.values())).acc
    report = {"device": str(where.device), "mixed_precision": where.mixed_precision, "batch_size": batch_size,
              "grad_accum": grad_accum, "seq_len": seq_len, "updates_timed": updates,
              "tflop_per_update": round(flops / 1e12, 3), "kinds": {}}
    for kind in teacher_outputs:
        sec = statistics.median(times[kind])
        report["kinds"][kind] = {"seconds_per_update": round(sec, 4), "tflop_per_s": float(f"{flops / sec / 1e12:.3g}"),
                                 "peak_gib": round(peaks[kind] / 2 ** 30, 2) if peaks[kind] else None}
        peak = f", peak {peaks[kind] / 2 ** 30:.2f} GiB" if peaks[kind] else ""
        print(f"teacher_outputs={kind}: {sec:.3f} s per update (median of {updates}){peak}, "
              f"{flops / sec / 1e12:.3g} TFLOP/s, on {where.device} ({where.mixed_precision}, {batch_size} x {grad_accum} "
              f"windows of {seq_len})")
    if len(teacher_outputs) > 1:
        a, b = teacher_outputs[:2]
        ratio = report["kinds"][b]["seconds_per_update"] / report["kinds"][a]["seconds_per_update"]
        report["time_ratio"] = {f"{b}/{a}": round(ratio, 3)}
        print(f"{b} takes {ratio:.2f}x the time of {a} per update")
    sec = report["kinds"][teacher_outputs[0]]["seconds_per_update"]
    report["eta"] = {}
    for profile in ("paper", "paper-colab"):
        total = PROFILES[profile]["02_dense_distillation"]["epochs"] * UPDATES_PER_EPOCH
        report["eta"][profile] = {"updates": total, "seconds": round(total * sec)}
        print(f"{profile}: about {total:,} updates: ETA {duration(total * sec)} at this speed")
    return report
