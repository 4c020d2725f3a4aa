"""Publish the es-local students into results/es-local/ (run from the repo root after distill_students.py).

    python results/es-local/publish.py [name ...]      (default: every model below whose run exists)

Each model answers test-v1.1.json once (runs/es-local/<name>.predictions.json, reused when present); the
answers are scored with the kit's scorer and the independent MLQA-style scorer (tests/mlqa_eval.py), the
model gets an entry in summary.json, and its predictions, parameters and training log are copied here.
A precision variant (`<model>_int8`, `<model>_bf16`) is the same weights run in lower precision
(kit.bench.with_precision). CONTRACTS.md keeps summary.json's latency to fp32 and int8, so the bf16 copies
are recorded in bf16.json, in the same form. measure.py then adds every entry's latency, measured in one run.
"""
import json, os, platform, sys
from pathlib import Path
sys.path.insert(0, "tests")
import mlqa_eval
from kit.bench import with_precision
from kit.data import load_squad
from kit.inference import predict_answers
from kit.metrics import squad_scores
from kit.models import load_qa_model, load_tokenizer
from kit.results import record, summary_entry

TEST = "../shared/data/squad-es/test-v1.1.json"
RUNS, out = Path("runs/es-local"), Path("results/es-local")
DISTILL = "one-stage dense distillation (task + KL on start/end logits + attention-probability MSE + hidden MSE, all weights 1, T=1)"
MODELS = {  # name: (role, recipe, command)
    "student": ("student", f"6 layers from teacher layers 1,3,5,7,9,11; {DISTILL}, uniform layer map, 1 epoch",
                "python results/es-local/distill_students.py student 1"),
    "baseline": ("baseline", "the same 6-layer initialisation, task loss only (no distillation), 1 epoch",
                 "python results/es-local/distill_students.py baseline 1"),
    "student_4ep": ("student", f"`student` distilled for 3 more epochs (a fresh schedule): 4 epochs of {DISTILL}",
                    "python results/es-local/distill_students.py student_4ep 3"),
    "student8": ("student", f"8 layers from teacher layers 0,2,4,5,6,8,10,11; {DISTILL}, each layer imitating the "
                            f"teacher layer it copies (LayerMap.copied), 2 epochs (this run: the first 50 "
                            f"updates under a 3-epoch schedule, then resumed with the 2-epoch one)",
                 "python results/es-local/distill_students.py student8 2 2"),
    "student8_4ep": ("student", f"`student8` distilled for 2 more epochs (a fresh schedule): 4 epochs of {DISTILL}, "
                                f"each layer imitating the teacher layer it copies (LayerMap.copied)",
                     "python results/es-local/distill_students.py student8_4ep 2 2"),
    "student10": ("student", f"10 layers from teacher layers 0,2,4,5,6,7,8,9,10,11 (the best of four 10-layer choices "
                             f"before training); {DISTILL}, each layer imitating the teacher layer it copies "
                             f"(LayerMap.copied), 2 epochs",
                  "python results/es-local/distill_students.py student10 2 2"),
}
VARIANTS = ["student_int8", "student_4ep_int8", "student8_int8", "student8_4ep_int8", "student10_int8",  # <model>_<precision>
            "teacher_bf16", "student_4ep_bf16", "student8_bf16", "student8_4ep_bf16"]

examples, _ = load_squad(TEST)
raw = json.load(open(TEST))
tok = load_tokenizer(str(RUNS / "teacher"))
names = sys.argv[1:] or [n for n in [*MODELS, *VARIANTS]
                         if (RUNS / (n.rsplit("_", 1)[0] if n in VARIANTS else n) / "config.json").exists()]
for name in names:
    base, precision = name.rsplit("_", 1) if name in VARIANTS else (name, "fp32")
    model = load_qa_model(str(RUNS / base), attn_implementation="sdpa")
    pred_file = RUNS / f"{name}.predictions.json"
    if not pred_file.exists():
        pred_file.write_text(json.dumps(predict_answers(with_precision(model, precision), tok, examples),
                                        ensure_ascii=False, indent=1))
    preds = json.loads(pred_file.read_text())
    kit_m, indep = squad_scores(examples, preds), mlqa_eval.evaluate(raw, preds)
    base_role = "teacher" if base == "teacher" else MODELS[base][0]
    role, extra = (base_role, {}) if name not in VARIANTS else (
        "int8" if precision == "int8" else base_role, {"base": base, "precision": precision})
    record(out / ("bf16.json" if precision == "bf16" else "summary.json"),
           summary_entry(name, role, model, "squad-es test-v1.1.json", kit_m, **extra))
    (out / f"{name}.predictions.json").write_text(json.dumps(preds, ensure_ascii=False, indent=1))
    print(name, json.dumps(kit_m), "independent", json.dumps(indep), flush=True)
    if name in VARIANTS:   # the same weights as `base`: its params.json says how they were trained
        continue
    run = RUNS / name
    (out / f"{name}.log.jsonl").write_text((run / "log.jsonl").read_text())
    params = {"command": f"{MODELS[name][2]}  (then python results/es-local/publish.py {name})",
              "teacher": "runs/es-local/teacher (results/es-local/teacher.params.json)", "recipe": MODELS[name][1],
              "train_file": "squad-es train-v1.1.json (3,940 questions)",
              "train_config": json.loads((run / "train_config.json").read_text()),
              "max_length": 384, "doc_stride": 128,
              "train_wall_seconds": float((run / "wall_seconds.txt").read_text()),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, "
                         f"{json.loads((run / 'train_config.json').read_text())['num_threads']} torch thread(s)",
              "metrics_kit": kit_m, "metrics_independent_mlqa_scorer": indep}
    (out / f"{name}.params.json").write_text(json.dumps(params, indent=1))
