"""The multi-task model and its loss: one shared encoder, one small head per task.

Hard parameter sharing. Every task reads the same encoder (all of its layers and embeddings); only a
thin head on top belongs to one task. A batch holds windows of one task (kit.tasks.MultiTaskData); its
loss flows back through that task's head and the shared encoder, never through another task's head. So
the encoder learns from every task, and each head from its own task only.

    model = MultiTaskModel(student_qa_model, tasks)          # the QA model is the encoder + QA head
    train(model, data, cfg, pad_id=..., loss_fn=MultiTaskLoss(tasks))   # kit.train.train: the one loop

Heads: a `sequence` task reads the first (CLS) token through dense → tanh → labels (as
RobertaClassificationHead); a `token` task maps every token to its labels; the `qa` task is the QA
model's own start/end head.

Saving: `save_pretrained(dir)` writes the QA model as a plain `AutoModelForQuestionAnswering` directory
(the encoder and the QA head), plus `task_heads.safetensors` and `tasks.json` for the other heads.
`AutoModelForQuestionAnswering.from_pretrained(dir)` therefore loads the multi-task student as a QA
student, and `MultiTaskModel.from_pretrained(dir)` loads it whole.

Distillation per task: a task may name a teacher. For a `qa` task the teacher is a QA model and the
loss is kit.distill.DistillLoss (logits, and attention/hidden states when `layers=True` and the shapes
allow); for the other kinds the teacher returns logits for the same windows and the student learns
KL(teacher ‖ student) beside its cross-entropy.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .task_windows import IGNORE
from .tasks import Task


# ----------------------------------------------------------------------------- the model

def _head(kind: str, hidden: int, n_labels: int, dropout: float) -> nn.Module:
    if kind == "sequence":  # as RobertaClassificationHead: CLS → dense → tanh → labels
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.Tanh(), nn.Dropout(dropout),
                             nn.Linear(hidden, n_labels))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_labels))


class MultiTaskModel(nn.Module):
    """A QA model (shared encoder + QA head, a plain AutoModelForQuestionAnswering) with one head per other task."""

    HEADS_FILE, TASKS_FILE = "task_heads.safetensors", "tasks.json"

    def __init__(self, qa_model, tasks: list[Task] | dict[str, dict]):
        super().__init__()
        self.qa = qa_model
        spec = tasks if isinstance(tasks, dict) else {t.name: {"kind": t.kind, "labels": list(t.labels)} for t in tasks}
        self.task_spec = spec
        cfg = qa_model.config
        dropout = getattr(cfg, "hidden_dropout_prob", 0.1) or 0.0
        self.heads = nn.ModuleDict({name: _head(s["kind"], cfg.hidden_size, len(s["labels"]), dropout)
                                    for name, s in spec.items() if s["kind"] != "qa"})

    @property
    def config(self):
        return self.qa.config

    def get_input_embeddings(self):
        return self.qa.get_input_embeddings()

    def forward(self, task: str, **inputs):
        """A QA task returns the QA model's output (start/end logits, and attentions/hidden states when asked);
        any other task returns its head's logits, (batch, labels) or (batch, tokens, labels)."""
        if task not in self.task_spec:
            raise KeyError(f"unknown task {task!r}; this model has {sorted(self.task_spec)}")
        if self.task_spec[task]["kind"] == "qa":
            return self.qa(**inputs)
        hidden = self.qa.base_model(**inputs).last_hidden_state
        head = self.heads[task]
        return head(hidden[:, 0]) if self.task_spec[task]["kind"] == "sequence" else head(hidden)

    def save_pretrained(self, out_dir, **kwargs):
        out = Path(out_dir)
        self.qa.save_pretrained(out, **kwargs)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}, out / self.HEADS_FILE)
        (out / self.TASKS_FILE).write_text(json.dumps(self.task_spec, indent=1, ensure_ascii=False))

    @classmethod
    def from_pretrained(cls, model_dir, **kwargs):
        from .models import load_qa_model
        path = Path(model_dir)
        if not (path / cls.TASKS_FILE).exists():
            raise FileNotFoundError(f"{path}: no {cls.TASKS_FILE}, so not a multi-task model directory (a plain QA "
                                    f"model loads with kit.models.load_qa_model).")
        model = cls(load_qa_model(path, **kwargs), json.loads((path / cls.TASKS_FILE).read_text()))
        model.heads.load_state_dict(load_file(path / cls.HEADS_FILE))
        return model


# ----------------------------------------------------------------------------- the loss

class MultiTaskLoss(nn.Module):
    """loss_fn(model, batch) -> (loss, {term: value}) for kit.train.train; the batch's `task` picks the loss.

    qa:        kit.train.task_loss, or kit.distill.DistillLoss when the task has a teacher;
    sequence/token: cross-entropy (IGNORE labels skipped; weighted per class when the task has `class_weights`, a
                    weighted mean), plus KL(teacher ‖ student) when the task has a teacher.
    Terms are logged per task ("qa/task", "answerability/ce", ...), averaged over that task's batches.
    """

    def __init__(self, tasks: list[Task], student: MultiTaskModel | None = None, layers: bool = True,
                 temperature: float = 1.0):
        super().__init__()
        from .distill import DistillLoss, DistillWeights
        self.tasks = {t.name: t for t in tasks}
        self.temperature = temperature
        self.distill = nn.ModuleDict()
        self.teachers = nn.ModuleDict()
        for t in tasks:
            if t.teacher is None:
                continue
            if t.kind == "qa":
                if student is None:
                    raise ValueError(f"task {t.name!r} distils from a teacher: pass student= (its shapes decide the "
                                     f"layer map and projection).")
                w = DistillWeights() if layers else DistillWeights(attention=0.0, hidden=0.0)
                self.distill[t.name] = DistillLoss(t.teacher, student.qa, weights=w, temperature=temperature)
            else:
                self.teachers[t.name] = t.teacher.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for teacher in self.teachers.values():
            teacher.eval()  # targets without dropout
        return self

    def forward(self, model, batch):
        from .train import task_loss
        name = batch["task"]
        task = self.tasks[name]
        inputs = {k: v for k, v in batch.items() if k != "task"}

        def run(**kw):  # the student through `model` itself, so a DDP wrapper sees every forward
            return model(task=name, **kw)

        if task.kind == "qa":
            loss, terms = (self.distill[name] if name in self.distill else task_loss)(run, inputs)
        else:
            labels = inputs.pop("labels")
            logits = run(**inputs)
            weight = None if task.class_weights is None else torch.tensor(task.class_weights, device=logits.device)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), weight=weight,
                                   ignore_index=IGNORE)
            terms = {"ce": loss.detach()}
            if name in self.teachers:
                with torch.no_grad():
                    t_logits = _logits(self.teachers[name], name, inputs)
                keep = labels.reshape(-1) != IGNORE if task.kind == "token" else slice(None)
                T = self.temperature
                kd = F.kl_div(F.log_softmax(logits.reshape(-1, logits.size(-1))[keep].float() / T, -1),
                              F.softmax(t_logits.reshape(-1, t_logits.size(-1))[keep].float() / T, -1),
                              reduction="batchmean") * T * T
                terms["kd"] = kd.detach()
                loss = loss + kd
        loss = task.weight * loss
        return loss, {f"{name}/{k}": v for k, v in {"loss": loss.detach(), **terms}.items()}


def _logits(teacher, task: str, inputs: dict):
    out = teacher(task=task, **inputs) if isinstance(teacher, MultiTaskModel) else teacher(**inputs)
    return out.logits if hasattr(out, "logits") else out
