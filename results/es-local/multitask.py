"""Real-data multi-task training (issue 4): one 6-layer student learns extractive QA (train-v1.1) and
answerability (train-v2.0) at once, sharing its encoder.

    python results/es-local/multitask.py [threads]      (from the repo root; resumes from checkpoints)

The student is the es-local baseline's: initialised from the e5-small teacher's layers 1,3,...,11, task loss
only, lr 1e-4, batch 16, 384/128, word embeddings frozen. The single-task QA student to compare with is that
baseline (results/es-local/baseline.*: 259 updates, one epoch of train-v1.1). The multi-task student gets the
budget of two single-task students, 2 x 259 updates, its batches drawn with temperature 2 sampling.
Answerability is trained on 31 of the 35 train-v2.0 articles; the last 4 (their questions, answerable or not)
measure its accuracy. Writes runs/es-local/multitask/ and results/es-local/multitask.*.
"""
import json, sys, time
from pathlib import Path
from kit.data import load_squad, validate_squad, read_squad_json
from kit.features import make_features
from kit.inference import evaluate_model
from kit.models import load_qa_model, load_tokenizer
from kit.results import record, summary_entry
from kit.student import build_student
from kit.tasks import (MultiTaskData, MultiTaskLoss, MultiTaskModel, Task, TaskSampler, answerability_accuracy,
                       answerability_windows)
from kit.train import TrainConfig, train

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
TEACHER, DATA = "runs/es-local/teacher", Path("../shared/data/squad-es")
OUT, HELD_OUT = "runs/es-local/multitask", 4
tok = load_tokenizer(TEACHER)
qa_train, report = load_squad(DATA / "train-v1.1.json"); print(report)
raw, name = read_squad_json(DATA / "train-v2.0.json")
held_titles = [a["title"] for a in raw["data"][-HELD_OUT:]]
v2, report = validate_squad(raw, name); print(report)
ans_train = [e for e in v2 if e.title not in held_titles]
ans_held = [e for e in v2 if e.title in held_titles]
test, _ = load_squad(DATA / "test-v1.1.json")
print(f"answerability: {len(ans_train)} training questions, {len(ans_held)} held out ({held_titles})")

tasks = [Task("qa", "qa", make_features(qa_train, tok, 384, 128)),
         Task("answerability", "sequence", answerability_windows(ans_train, tok, 384, 128), ["no", "yes"])]
held_windows = answerability_windows(ans_held, tok, 384, 128)
sampler = TaskSampler.for_tasks(tasks, "temperature", 2.0)
print({t.name: len(t.features) for t in tasks}, sampler.probabilities())
student = build_student(load_qa_model(TEACHER), num_hidden_layers=6, init="teacher_layers", attn_implementation="sdpa")
model = MultiTaskModel(student, tasks)
cfg = TrainConfig(out_dir=OUT, epochs=10, max_updates=2 * 259, batch_size=16, lr=1e-4, warmup=0.1, save_every=25,
                  freeze_word_embeddings=True, num_threads=threads)
t0 = time.time()
train(model, MultiTaskData(tasks, sampler), cfg, pad_id=tok.pad_token_id, loss_fn=MultiTaskLoss(tasks),
      save_extra=tok.save_pretrained)
wall = time.time() - t0

model = MultiTaskModel.from_pretrained(OUT, attn_implementation="sdpa").eval()
metrics, predictions = evaluate_model(model.qa, tok, test)
metrics["answerability_accuracy_held_out"] = answerability_accuracy(model, "answerability", held_windows, ans_held,
                                                                    tok.pad_token_id)
print(metrics)
res = Path("results/es-local")
(res / "multitask.predictions.json").write_text(json.dumps(predictions, ensure_ascii=False, indent=0))
(res / "multitask.params.json").write_text(json.dumps({
    "command": "python results/es-local/multitask.py", "tasks": {t.name: len(t.features) for t in tasks},
    "sampling": {"strategy": "temperature", "temperature": 2.0, "probabilities": sampler.probabilities()},
    "answerability_held_out_articles": held_titles, "train_config": cfg.__dict__, "train_wall_seconds": round(wall, 1),
    "machine": f"x86_64, 2 CPU cores, no GPU, {threads} torch thread(s)", "metrics": metrics}, indent=1))
(res / "multitask.log.jsonl").write_text(Path(OUT, "log.jsonl").read_text())
record(res / "summary.json", summary_entry("multitask", "multitask", model.qa, "squad-es test-v1.1.json", metrics,
                                           answerability_accuracy_held_out=metrics["answerability_accuracy_held_out"]))
