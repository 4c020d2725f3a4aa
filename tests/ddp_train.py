"""Train the tiny QA model of the reliability tests; run by tests/test_reliability.py, alone or under
`accelerate launch --num_processes 2`, so that both runs see the same global batch.

    python tests/ddp_train.py OUT_DIR PER_PROCESS_BATCH [task|distill|multitask]

"distill" trains a narrower 1-layer student from the 2-layer model with all four distillation terms, so
that the projection (a parameter of the loss, outside DDP's wrapper) is trained too. "multitask" trains
QA and answerability in turns on one shared encoder: each batch leaves the other task's head unused.
"""
import json
import sys

import torch

from kit.data import load_squad
from kit.features import make_features
from kit.models import build_qa_model, qa_config, train_tokenizer
from kit.train import TrainConfig, train
from conftest import tiny_squad   # tests/ is this script's folder, so on sys.path

if __name__ == "__main__":
    out, batch = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "task"
    path = f"{out}.data.json"
    with open(path, "w") as f:
        json.dump(tiny_squad(), f, ensure_ascii=False)
    examples, _ = load_squad(path)
    tok = train_tokenizer([e.context + " " + e.question for e in examples], vocab_size=400, min_frequency=1)
    # no dropout: each process draws its own dropout masks, which would make the two runs differ
    cfg = qa_config("roberta", vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_length=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = build_qa_model(cfg)
    feats = make_features(examples, tok, 64, 16)
    tc = TrainConfig(out_dir=out, epochs=4, batch_size=batch, lr=3e-3, warmup=0.1, log_every=1, num_threads=1,
                     group_by_length=False, mixed_precision="no")   # fp32: the two runs must agree to 1e-5
    if mode == "distill":
        from kit.distill import DistillLoss
        from kit.student import build_student
        student = build_student(model, num_hidden_layers=1, hidden_size=16)
        train(student, feats, tc, pad_id=tok.pad_token_id, loss_fn=DistillLoss(model, student))
    elif mode == "multitask":
        from kit.multitask import MultiTaskLoss, MultiTaskModel
        from kit.tasks import MultiTaskData, TaskSampler, make_task
        tasks = [make_task("qa", examples, tok, 64, 16), make_task("answerability", examples, tok, 64, 16)]
        mt = MultiTaskModel(model, tasks)
        train(mt, MultiTaskData(tasks, TaskSampler.for_tasks(tasks, "round_robin")), tc, pad_id=tok.pad_token_id,
              loss_fn=MultiTaskLoss(tasks))
    else:
        train(model, feats, tc, pad_id=tok.pad_token_id)
