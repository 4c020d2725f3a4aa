"""How deep may a student of the es-local teacher be for a given speed-up? Latency by depth, measured in one run.

    python results/es-local/depth_latency.py [rounds]     # from the repo root, on a quiet machine; writes depth_latency.json

Every model here has the e5-small teacher's shape (hidden 384, 12 heads, FFN 1536, its 250k vocabulary) with
random weights and 1 to 12 layers: speed depends on the shape, not on the values, so no training is needed to
learn which depth reaches which speed-up. Each is timed in fp32 and, with kit.int8, in int8, against the 12-layer
fp32 teacher, as results/es-local/measure.py times the trained models (CONTRACTS.md: batch 1, the full 384-token
windows of test-v1.1, 2 threads, the median of `rounds` timed runs after warm-up, every model in each round).
The printed speed-up is what a student of that depth gets in that precision, whatever its F1.
"""
import json, os, platform, sys
from pathlib import Path
import torch
from transformers import AutoConfig
from kit.bench import interleaved_times, median_p90, timing_batches, with_precision
from kit.data import load_squad
from kit.models import build_qa_model, load_tokenizer

ENCODER, TEST = "../cache/e5-small", "../shared/data/squad-es/test-v1.1.json"
DEPTHS = (1, 2, 3, 4, 5, 6, 8, 10)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
torch.set_num_threads(2)
torch.manual_seed(0)
config = AutoConfig.from_pretrained(ENCODER)
examples, _ = load_squad(TEST)
batch = timing_batches(examples, load_tokenizer(ENCODER), (1,), 384, 128)[1]
assert batch["input_ids"].shape == (1, 384), batch["input_ids"].shape


def encoder(layers: int):
    config.num_hidden_layers = layers
    return build_qa_model(config, "sdpa").eval()


models = {"teacher (12 layers, fp32)": encoder(12)}
for depth in DEPTHS:
    fp32 = encoder(depth)
    models[f"{depth} layers, fp32"] = fp32
    models[f"{depth} layers, int8"] = with_precision(fp32, "int8")
with torch.inference_mode():
    times = interleaved_times(models, {1: batch}, rounds, warmup=1, repeats=1)
rows = {name: median_p90(t[1]) for name, t in times.items()}
teacher_ms = rows["teacher (12 layers, fp32)"]["latency_ms"]
print(f"{'model':<26} {'ms':>8} {'p90 ms':>8} {'speed-up':>9}")
for name, r in rows.items():
    r["speedup"] = round(teacher_ms / r["latency_ms"], 2)
    print(f"{name:<26} {r['latency_ms']:8.1f} {r['latency_p90_ms']:8.1f} {r['speedup']:8.2f}x")
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
           platform.processor())
report = {"machine": f"{cpu}, {platform.machine()}, {os.cpu_count()} CPU cores, no GPU", "torch": torch.__version__,
          "threads": torch.get_num_threads(), "rounds": rounds, "window": "the first full 384-token window of test-v1.1",
          "shape": "e5-small: hidden 384, 12 heads, FFN 1536, random weights", "latency": rows}
Path("results/es-local/depth_latency.json").write_text(json.dumps(report, indent=1) + "\n")
