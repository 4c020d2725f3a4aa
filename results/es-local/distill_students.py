"""Real-data dense distillation (issues 3 and 7): the es-local e5-small teacher -> smaller students.

    python results/es-local/distill_students.py student|baseline|student8|student_4ep|student8_4ep|student10 [epochs] [threads]
        (run from the repo root; resumes from checkpoints)
student: 6 layers initialised from teacher layers 1,3,...,11, one-stage distillation, all four terms, weight 1.
baseline: the same initialisation, task loss only (SDPA attention), the same steps.
student8: 8 layers initialised from teacher layers 0,2,4,5,6,8,10,11 (the best 8 of 12 before training: F1 32.5 on
          the last 4 training articles, against 20.4-25.8 for the four others tried), each layer imitating the one
          it copies (LayerMap.copied); otherwise as student. In bf16 it runs ~2.3x faster than the fp32 teacher.
student_4ep: `student` (1 epoch) distilled for `epochs` (3) more epochs with a fresh schedule, the same recipe.
student8_4ep: `student8` (2 epochs; its loss was still falling) distilled for `epochs` (2) more epochs the same way.
student10: 10 layers initialised from teacher layers 0,2,4,5,6,7,8,9,10,11 (the best of four 10-layer choices before
          training, F1 on the last 4 training articles: without layers 1,3 56.1; 7,9 55.7; 1,7 54.5; 3,7 45.8), each
          layer imitating the one it copies; otherwise as student8. Meant for int8 (kit.int8), where 10 layers run
          ~2.3x faster than the fp32 teacher.
"""
import sys, time
from pathlib import Path
from kit.data import load_squad
from kit.features import make_features
from kit.models import load_qa_model, load_tokenizer
from kit.student import build_student
from kit.distill import distill
from kit.layermap import LayerMap
from kit.train import TrainConfig, train

LAYERS10 = [0, 2, 4, 5, 6, 7, 8, 9, 10, 11]
which = sys.argv[1]
epochs = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
TEACHER, TRAIN = "runs/es-local/teacher", "../shared/data/squad-es/train-v1.1.json"
out = f"runs/es-local/{which}"
teacher = load_qa_model(TEACHER)  # eager: distillation reads its attention maps
tok = load_tokenizer(TEACHER)
examples, report = load_squad(TRAIN)
print(report)
feats = make_features(examples, tok, 384, 128)
cfg = TrainConfig(out_dir=out, epochs=epochs, batch_size=16, lr=1e-4, warmup=0.1, save_every=25,
                  freeze_word_embeddings=True, num_threads=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
save_tok = lambda d: tok.save_pretrained(d)
t0 = time.time()
if which == "student":
    student = build_student(teacher, num_hidden_layers=6, init="teacher_layers")
    distill(teacher, student, feats, cfg, pad_id=tok.pad_token_id, save_extra=save_tok)
elif which == "baseline":
    student = build_student(teacher, num_hidden_layers=6, init="teacher_layers", attn_implementation="sdpa")
    train(student, feats, cfg, pad_id=tok.pad_token_id, save_extra=save_tok)
elif which == "student_4ep":
    student = load_qa_model("runs/es-local/student")
    distill(teacher, student, feats, cfg, pad_id=tok.pad_token_id, save_extra=save_tok)
elif which in ("student8", "student8_4ep"):
    layers = [0, 2, 4, 5, 6, 8, 10, 11]
    if which == "student8":
        student = build_student(teacher, num_hidden_layers=8, init="teacher_layers", teacher_layers=layers)
    else:
        student = load_qa_model("runs/es-local/student8")
    distill(teacher, student, feats, cfg, pad_id=tok.pad_token_id, layer_map=LayerMap.copied(layers), save_extra=save_tok)
elif which == "student10":
    student = build_student(teacher, num_hidden_layers=10, init="teacher_layers", teacher_layers=LAYERS10)
    distill(teacher, student, feats, cfg, pad_id=tok.pad_token_id, layer_map=LayerMap.copied(LAYERS10), save_extra=save_tok)
else:
    raise SystemExit("which: student, baseline, student8, student_4ep, student8_4ep or student10")
Path(out, "wall_seconds.txt").write_text(f"{time.time() - t0:.1f}\n")
print("done", which, time.time() - t0)
