"""Publish the es-local distillation run into results/es-local/ (run from the repo root after distill_students.py).

Scores each student's predictions on test-v1.1.json with the kit's scorer and the independent MLQA-style
scorer (tests/mlqa_eval.py), adds `student` (role student) and `baseline` (role baseline) to
results/es-local/summary.json, and copies predictions, parameters and training logs.
"""
import json, os, platform, sys
from pathlib import Path
sys.path.insert(0, "tests")
import mlqa_eval
from kit.data import load_squad
from kit.metrics import squad_scores
from kit.models import load_qa_model, count_params
from kit.results import record

TEST = "../shared/data/squad-es/test-v1.1.json"
out = Path("results/es-local")
examples, _ = load_squad(TEST)
raw = json.load(open(TEST))
ROLES = {"student": ("student", "6 layers from teacher layers 1,3,5,7,9,11; one-stage dense distillation "
                                "(task + KL on start/end logits + attention-probability MSE + hidden MSE, "
                                "all weights 1, T=1, uniform layer map)"),
         "baseline": ("baseline", "the same 6-layer initialisation, task loss only (no distillation)")}
for name, (role, recipe) in ROLES.items():
    run = Path("runs/es-local") / name
    preds = json.loads((Path("runs/es-local") / f"{name}.predictions.json").read_text())
    kit_m, indep = squad_scores(examples, preds), mlqa_eval.evaluate(raw, preds)
    entry = {"name": name, "role": role, **count_params(load_qa_model(str(run))), "dataset": "squad-es test-v1.1.json",
             "exact_match": kit_m["exact_match"], "f1": kit_m["f1"], "n": kit_m["n"]}
    record(out / "summary.json", entry)
    (out / f"{name}.predictions.json").write_text(json.dumps(preds, ensure_ascii=False, indent=1))
    log = (run / "log.jsonl").read_text()
    (out / f"{name}.log.jsonl").write_text(log)
    params = {"command": f"python results/es-local/distill_students.py {name} 1  (then python -m kit predict)",
              "teacher": "runs/es-local/teacher (results/es-local/teacher.params.json)", "recipe": recipe,
              "train_file": "squad-es train-v1.1.json (3,940 questions)",
              "train_config": json.loads((run / "train_config.json").read_text()),
              "max_length": 384, "doc_stride": 128,
              "train_wall_seconds": float((run / "wall_seconds.txt").read_text()),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, 1 torch thread "
                         f"(another job used the other core)",
              "metrics_kit": kit_m, "metrics_independent_mlqa_scorer": indep}
    (out / f"{name}.params.json").write_text(json.dumps(params, indent=1))
    print(name, json.dumps(kit_m), "independent", json.dumps(indep))
