"""Speed of the es-local models, measured in one run on a quiet machine (run from the repo root after publish.py):
latency of every model in results/es-local/summary.json and bf16.json, each in its own precision (an entry's
`base` model in its `precision`, as publish.py records them), at batch 1 and 8 on full 384-token windows of
test-v1.1 (CONTRACTS.md: median of at least 20 timed runs after warm-up, 2 threads); FLOPs per token; size.
Adds latency_ms (batch 1) and latency_ms_batch8 to each entry and writes benchmark.json.
"""
import json, os, platform
from pathlib import Path
import torch
from kit.bench import bf16_supported, entry_models, flops_per_token, interleaved_times, median_p90, state_size_mb, timing_batches
from kit.data import load_squad
from kit.models import load_tokenizer
from kit.results import read_summary, record

TEST = "../shared/data/squad-es/test-v1.1.json"
RUNS, out = Path("runs/es-local"), Path("results/es-local")
torch.set_num_threads(2)
examples, _ = load_squad(TEST)
tok = load_tokenizer(str(RUNS / "teacher"))
files = {"summary.json": read_summary(out / "summary.json"), "bf16.json": read_summary(out / "bf16.json")}
all_entries = files["summary.json"] + files["bf16.json"]
# each entry's `base` model in its `precision`; the multi-task student loads as a plain QA model: its QA part is timed
models = entry_models(RUNS, all_entries)
# the first 1 and 8 windows of the file that fill all 384 tokens (test-v1.1 has 39)
batches = timing_batches(examples, tok, (1, 8), 384, 128)
# Each of the 30 rounds times every model once, after one untimed pass that brings its weights back into cache
# (kit.bench.interleaved_times); each latency is the median of its 30 timed runs.
ROUNDS = 30
with torch.inference_mode():
    times = interleaved_times(models, batches, ROUNDS, warmup=1, repeats=1)
rows = {name: {b: {**median_p90(t), "runs": len(t), "batch_size": b, "seq_len": 384} for b, t in by_b.items()}
        for name, by_b in times.items()}
for name in rows:
    print(name, json.dumps(rows[name]), flush=True)
for file, entries in files.items():
    for e in entries:
        e["latency_ms"] = rows[e["name"]][1]["latency_ms"]
        e["latency_ms_batch8"] = rows[e["name"]][8]["latency_ms"]
        record(out / file, e)
teacher = rows["teacher"]
report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU", "torch": torch.__version__,
          "threads": torch.get_num_threads(), "cpu_native_bf16": bf16_supported(),
          "windows": "the first 1 or 8 windows of test-v1.1.json that fill max_length 384",
          "int8": "kit.int8.quantize_int8 default: every encoder nn.Linear in int8 (weights: one scale per output channel; activations: one scale per token), QA head fp32",
          "bf16": "kit.bench.to_bf16: every weight and activation in bfloat16 (native AVX512-BF16 on this CPU)",
          "latency": rows, "size_mb": {n: round(state_size_mb(m), 1) for n, m in models.items()},
          "flops_per_token_384": {e.get("base", e["name"]): flops_per_token(models[e["name"]].config, 384) for e in all_entries},
          "speedup_vs_teacher": {n: {b: round(teacher[b]["latency_ms"] / r[b]["latency_ms"], 2) for b in (1, 8)}
                                 for n, r in rows.items()}}
(out / "benchmark.json").write_text(json.dumps(report, indent=1))
print(json.dumps(report["speedup_vs_teacher"]))
