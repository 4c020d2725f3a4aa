"""bf16 training on a CPU with native bf16 (TrainConfig(mixed_precision="bf16")): does the teacher keep its F1, and
where does a 5-layer student, the depth that runs 4x faster in int8 (depth_latency.json), stand after two epochs?

    # 1. the teacher: the published teacher's command (teacher.params.json) with --mixed-precision bf16
    python -m kit train --model ../cache/e5-small --train ../shared/data/squad-es/train-v1.1.json \
        --out runs/es-local-bf16/teacher --max-length 384 --stride 128 --epochs 3 --batch-size 16 --lr 1e-4 \
        --warmup 0.1 --save-every 50 --freeze-word-embeddings --mixed-precision bf16
    # 2. the student (resumes from its checkpoint), then 3. scores and latency, on a quiet machine
    python results/es-local/bf16_training.py student5 [epochs]
    python results/es-local/bf16_training.py publish

student5: 5 layers copied from teacher layers 0,3,6,9,11 (first, last and evenly between; not chosen by a search
as student8's were), each imitating the layer it copies (LayerMap.copied), the paper's four terms with weight 1,
bf16, otherwise as distill_students.py trains. publish scores the teacher, student5 and student5_int8 on all of
test-v1.1 (kit's scorer and the independent MLQA-style one) and times them in one run (CONTRACTS.md latency, 30
rounds), into results/es-local/bf16-training/summary.json: a summary of its own, since its teacher is not the
fp32 teacher of results/es-local/summary.json.
"""
import json, os, platform, sys, time
from pathlib import Path
import torch
sys.path.insert(0, "tests")
import mlqa_eval
from kit.bench import interleaved_times, median_p90, timing_batches, with_precision
from kit.data import load_squad
from kit.distill import distill
from kit.features import make_features
from kit.inference import predict_answers
from kit.layermap import LayerMap
from kit.metrics import squad_scores
from kit.models import load_qa_model, load_tokenizer
from kit.results import record, summary_entry
from kit.student import build_student
from kit.train import TrainConfig

TRAIN, TEST = "../shared/data/squad-es/train-v1.1.json", "../shared/data/squad-es/test-v1.1.json"
RUNS, OUT = Path("runs/es-local-bf16"), Path("results/es-local/bf16-training")
LAYERS5 = [0, 3, 6, 9, 11]
stage = sys.argv[1] if len(sys.argv) > 1 else ""
tok = load_tokenizer(str(RUNS / "teacher"))
machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, 2 torch threads"

if stage == "student5":
    teacher = load_qa_model(str(RUNS / "teacher"))   # eager: distillation reads its attention maps
    examples, report = load_squad(TRAIN)
    print(report)
    cfg = TrainConfig(out_dir=str(RUNS / "student5"), epochs=float(sys.argv[2]) if len(sys.argv) > 2 else 2.0,
                      batch_size=16, lr=1e-4, warmup=0.1, save_every=25, freeze_word_embeddings=True, num_threads=2,
                      mixed_precision="bf16")
    student = build_student(teacher, num_hidden_layers=5, init="teacher_layers", teacher_layers=LAYERS5)
    t0 = time.time()
    distill(teacher, student, make_features(examples, tok, 384, 128), cfg, pad_id=tok.pad_token_id,
            layer_map=LayerMap.copied(LAYERS5), save_extra=tok.save_pretrained)
    (RUNS / "student5" / "wall_seconds.txt").write_text(f"{time.time() - t0:.1f}\n")
elif stage == "publish":
    torch.set_num_threads(2)
    examples, _ = load_squad(TEST)
    raw = json.load(open(TEST))
    OUT.mkdir(parents=True, exist_ok=True)
    trained = [name for name in ("teacher", "student5") if (RUNS / name / "config.json").exists()]
    fp32 = {name: load_qa_model(str(RUNS / name), attn_implementation="sdpa").eval() for name in trained}
    models = {**fp32, "student5_int8": with_precision(fp32["student5"], "int8")} if "student5" in fp32 else fp32
    entries = {}
    for name, model in models.items():
        cached = RUNS / f"{name}.predictions.json"   # e.g. the teacher's, from `python -m kit predict`
        preds = json.loads(cached.read_text()) if cached.exists() else predict_answers(model, tok, examples)
        (OUT / f"{name}.predictions.json").write_text(json.dumps(preds, ensure_ascii=False, indent=1))
        metrics, independent = squad_scores(examples, preds), mlqa_eval.evaluate(raw, preds)
        role = {"teacher": "teacher", "student5": "student", "student5_int8": "int8"}[name]
        extra = {"base": "student5", "precision": "int8"} if name == "student5_int8" else {}
        entries[name] = summary_entry(name, role, model, "squad-es test-v1.1.json", metrics, **extra)
        print(name, json.dumps(metrics), "independent", json.dumps(independent), flush=True)
    if "student5" in models:   # a speed-up needs a student; time them on a quiet machine
        with torch.inference_mode():
            times = interleaved_times(models, timing_batches(examples, tok, (1,), 384, 128), 30, warmup=1, repeats=1)
        for name, entry in entries.items():
            entry["latency_ms"] = median_p90(times[name][1])["latency_ms"]
    for entry in entries.values():
        record(OUT / "summary.json", entry)
    for name in trained:
        (OUT / f"{name}.log.jsonl").write_text((RUNS / name / "log.jsonl").read_text())
        (OUT / f"{name}.train_config.json").write_text((RUNS / name / "train_config.json").read_text())
    report = {"machine": machine, "torch": torch.__version__, "teacher_train_seconds":
              [e for e in map(json.loads, open(RUNS / "teacher" / "log.jsonl")) if e["kind"] == "train"][-1]["seconds"],
              "f1_kept": {n: round(100 * e["f1"] / entries["teacher"]["f1"], 1) for n, e in entries.items()}}
    if "student5" in models:
        report["student5_train_wall_seconds"] = float((RUNS / "student5" / "wall_seconds.txt").read_text())
        report["speedup"] = {n: round(entries["teacher"]["latency_ms"] / e["latency_ms"], 2) for n, e in entries.items()}
    (OUT / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
else:
    raise SystemExit("stage: student5 [epochs] or publish (see the docstring)")
