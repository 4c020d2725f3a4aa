"""Speed of the es-local models, measured in one run on a quiet machine (run from the repo root after publish.py):
latency (median/p90 after warm-up) of the teacher, the students and the int8 distilled student on real
test-v1.1 windows at batch 1 and 8, FLOPs per token, size; F1 of the int8 student on the whole test file.
Adds latency_ms (batch 1) to each entry of results/es-local/summary.json and writes benchmark.json.
"""
import json, os, platform, statistics
from pathlib import Path
import torch
from kit.bench import flops_per_token, latency_ms, quantize_int8, state_size_mb
from kit.data import load_squad
from kit.metrics import squad_scores
from kit.inference import predict_answers
from kit.models import load_qa_model, load_tokenizer
from kit.results import read_summary, record, summary_entry

TEST = "../shared/data/squad-es/test-v1.1.json"
out = Path("results/es-local")
examples, _ = load_squad(TEST)
tok = load_tokenizer("runs/es-local/teacher")
# the multi-task student (results/es-local/multitask.py) loads as a plain QA model: its QA part is timed
names = [n for n in ("teacher", "student", "baseline", "multitask") if Path(f"runs/es-local/{n}/config.json").exists()]
models = {name: load_qa_model(f"runs/es-local/{name}", attn_implementation="sdpa").eval() for name in names}
models["student_int8"] = quantize_int8(models["student"])
# Rounds interleave the models, so that a slow spell of this shared virtual machine hits them all alike;
# each number is the median over rounds of each round's median.
ROUNDS = 5
runs = {name: {1: [], 8: []} for name in models}
for _ in range(ROUNDS):
    for name, model in models.items():
        for b in (1, 8):
            runs[name][b].append(latency_ms(model, tok, examples, batch_size=b, max_length=384, stride=128,
                                            warmup=2, repeats=10))
rows = {name: {b: {**r[len(r) // 2], "latency_ms": statistics.median(x["latency_ms"] for x in r),
                   "latency_p90_ms": statistics.median(x["latency_p90_ms"] for x in r), "rounds": ROUNDS}
               for b, r in by_batch.items()} for name, by_batch in runs.items()}
for name in rows:
    print(name, json.dumps(rows[name]))
int8_file = out / "student_int8.predictions.json"   # int8 inference is deterministic: reuse a finished prediction
int8_preds = (json.loads(int8_file.read_text()) if int8_file.exists()
              else predict_answers(models["student_int8"], tok, examples, 384, 128))
int8_metrics = squad_scores(examples, int8_preds)
(out / "student_int8.predictions.json").write_text(json.dumps(int8_preds, ensure_ascii=False, indent=1))
print("int8", int8_metrics)
record(out / "summary.json", summary_entry("student_int8", "int8", models["student"], "squad-es test-v1.1.json",
                                           int8_metrics))
for e in read_summary(out / "summary.json"):
    name = e["name"]
    e["latency_ms"] = rows[name][1]["latency_ms"]
    e["latency_ms_batch8"] = rows[name][8]["latency_ms"]
    record(out / "summary.json", e)
cfg_t, cfg_s = models["teacher"].config, models["student"].config
report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU", "torch": torch.__version__,
          "threads": torch.get_num_threads(), "windows": "the first 1 or 8 windows of test-v1.1.json (max_length 384; they hold 182 tokens)",
          "int8": "kit.bench.quantize_int8 default: feed-forward layers int8 per channel, attention and QA head fp32",
          "latency": rows, "size_mb": {n: round(state_size_mb(m), 1) for n, m in models.items()},
          "flops_per_token_384": {"teacher": flops_per_token(cfg_t, 384), "student": flops_per_token(cfg_s, 384)},
          "speedup_student_vs_teacher": {b: round(rows["teacher"][b]["latency_ms"] / rows["student"][b]["latency_ms"], 2)
                                         for b in (1, 8)},
          "speedup_int8_vs_fp32_student": {b: round(rows["student"][b]["latency_ms"] / rows["student_int8"][b]["latency_ms"], 2)
                                           for b in (1, 8)},
          "int8_student_metrics": int8_metrics}
(out / "benchmark.json").write_text(json.dumps(report, indent=1))
print(json.dumps({k: report[k] for k in ("speedup_student_vs_teacher", "speedup_int8_vs_fp32_student", "flops_per_token_384")}))
