"""Multi-task training: one shared encoder, one small head per task, and a sampler that picks each batch's task.

Hard parameter sharing. Every task reads the same encoder (all of its layers and embeddings); only a
thin head on top belongs to one task. A batch holds windows of one task; its loss flows back through
that task's head and the shared encoder, never through another task's head. So the encoder learns
from every task, and each head from its own task only.

    tasks = [Task("qa", "qa", qa_feats), Task("answerability", "sequence", ans_feats, ["no", "yes"])]
    model = MultiTaskModel(student_qa_model, tasks)          # the QA model is the encoder + QA head
    data = MultiTaskData(tasks, TaskSampler.for_tasks(tasks, "temperature", 2.0))
    train(model, data, cfg, pad_id=..., loss_fn=MultiTaskLoss(tasks))   # kit.train.train: the one loop

Task kinds (the registry, `TASK_KINDS`):
  qa        extractive QA: start/end logits over the window (kit.features), the QA model's own head;
  sequence  one label per window, read from the first (CLS) token: answerability, question type;
  token     one label per token (-100 where there is none): entity tagging.

The sampler decides how many batches each task gets. For task sizes n_i (windows) it draws task i with
  proportional   p_i = n_i / Σ n_j              (big tasks dominate, small ones are rarely seen)
  temperature    p_i ∝ n_i^(1/T)                (T = 1 is proportional, T → ∞ uniform; T = 2 is common)
  round_robin    the tasks in turn, one batch each
One epoch is as many batches as one pass over every task would take; a task whose windows run out
starts a new shuffled pass, so a small task may be seen several times per epoch.

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
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .data import DataError, Example
from .features import Features, collate, make_features

TASK_KINDS = ("qa", "sequence", "token")
SAMPLING = ("proportional", "temperature", "round_robin")
IGNORE = -100  # label of a token without one (special tokens, padding, the question in a token task)


# ----------------------------------------------------------------------------- data of one task

@dataclass
class LabelledWindows:
    """Tokenised inputs with a class label per window (`sequence`) or per token (`token`)."""
    input_ids: list[list[int]]
    labels: list                                  # int per window, or a list of ints per token
    example_index: list[int] = field(default_factory=list)   # which example (question, context) each window is from
    token_type_ids: list[list[int]] | None = None
    NOT_TRAINED_ON = ("example_index",)            # left out of a training run's data digest (kit.checkpoint)

    def __len__(self):
        return len(self.input_ids)


def collate_labelled(feats: LabelledWindows, indices, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad like kit.features.collate; token labels are padded with IGNORE."""
    qa_like = Features(feats.input_ids, [], [], [], [], feats.token_type_ids)
    batch = collate(qa_like, indices, pad_id, with_labels=False)
    if isinstance(feats.labels[indices[0]], list):
        labels = torch.full(batch["input_ids"].shape, IGNORE, dtype=torch.long)
        for row, i in enumerate(indices):
            labels[row, :len(feats.labels[i])] = torch.tensor(feats.labels[i])
    else:
        labels = torch.tensor([feats.labels[i] for i in indices])
    batch["labels"] = labels
    return batch


def answerability_windows(examples: list[Example], tokenizer, max_length: int = 384,
                          stride: int = 128) -> LabelledWindows:
    """Does this window answer the question? 1 when the gold answer lies inside the window, else 0 (always 0
    for a v2 `is_impossible` question). The same windows as QA; a question counts as answerable when any
    of its windows says so (`question_answerable`)."""
    qa = make_features(examples, tokenizer, max_length, stride)
    return LabelledWindows(qa.input_ids, [int(s > 0) for s in qa.start_positions], qa.example_index,
                           qa.token_type_ids)


def question_answerable(feats: LabelledWindows, window_scores, n_examples: int) -> list[bool]:
    """Question-level answerability from window-level scores (logit of "yes" minus "no"): any window > 0."""
    best = [-math.inf] * n_examples
    for ex_i, score in zip(feats.example_index, window_scores):
        best[ex_i] = max(best[ex_i], float(score))
    return [b > 0 for b in best]


def _require_extra(ex: Example, key: str, source: str):
    if key not in ex.extra:
        raise DataError(f"{source}: question id {ex.id} has no field {key!r}, which the task needs. Use the kit's "
                        f"generated data (python -m kit generate-data), or drop this task for data without it.")
    return ex.extra[key]


def question_type_windows(examples: list[Example], tokenizer, labels: list[str] | None = None, key: str = "relation",
                          max_length: int = 64, source: str = "data") -> tuple[LabelledWindows, list[str]]:
    """Classify the question alone (no context) by what it asks about: the generated data's `relation`
    (birthplace, founder, ...) or `question_type`. Returns the windows and the label names (sorted, so a
    train and a test set built separately agree; pass the train set's `labels` for the others)."""
    values = [str(_require_extra(ex, key, source)) for ex in examples]
    labels = labels or sorted(set(values))
    unknown = sorted(set(values) - set(labels))
    if unknown:
        raise DataError(f"{source}: field {key!r} has values {unknown} that the label set {labels} lacks; build the "
                        f"label set from the training data and pass it here.")
    enc = tokenizer([ex.question for ex in examples], truncation=True, max_length=max_length)
    return (LabelledWindows(enc["input_ids"], [labels.index(v) for v in values], list(range(len(examples))),
                            enc.get("token_type_ids")), labels)


def entity_labels(entities) -> list[str]:
    """BIO tag names for the entity types present: O, B-DATE, I-DATE, ..."""
    types = sorted({e["label"] for e in entities})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def entity_windows(examples: list[Example], tokenizer, labels: list[str] | None = None, max_length: int = 384,
                   source: str = "data") -> tuple[LabelledWindows, list[str]]:
    """Tag every context token with the entity it belongs to (BIO: B-PER for a name's first token, I-PER for
    the next ones, O outside), from the generated data's entity spans. One window per distinct context
    (several questions share one); contexts longer than `max_length` are cut, and their tokens past the cut
    are not tagged. Special tokens get IGNORE."""
    contexts: dict[str, list] = {}
    for ex in examples:
        contexts.setdefault(ex.context, _require_extra(ex, "entities", source))
    labels = labels or entity_labels([e for ents in contexts.values() for e in ents])
    enc = tokenizer(list(contexts), truncation=True, max_length=max_length, return_offsets_mapping=True)
    all_labels = []
    for i, ents in enumerate(contexts.values()):
        tags = [IGNORE if s is None else labels.index("O") for s in enc.sequence_ids(i)]
        offsets = enc["offset_mapping"][i]
        for e in ents:
            start, end = e["start"], e["start"] + len(e["text"])
            toks = [j for j, (a, b) in enumerate(offsets) if tags[j] != IGNORE and a < end and b > start]
            for k, j in enumerate(toks):
                name = f"{'B' if k == 0 else 'I'}-{e['label']}"
                if name not in labels:
                    raise DataError(f"{source}: entity type {e['label']!r} is not among the labels {labels}; build "
                                    f"the labels from the training data and pass them here.")
                tags[j] = labels.index(name)
        all_labels.append(tags)
    return LabelledWindows(enc["input_ids"], all_labels, list(range(len(contexts))), enc.get("token_type_ids")), labels


# ----------------------------------------------------------------------------- the registry

METRICS = {"qa": "f1", "sequence": "accuracy", "token": "token_f1"}


@dataclass
class Task:
    name: str
    kind: str                                  # one of TASK_KINDS
    features: Features | LabelledWindows       # the training windows
    labels: list[str] = field(default_factory=list)   # class names (sequence and token tasks)
    weight: float = 1.0                        # multiplies this task's loss
    teacher: nn.Module | None = None           # optional: a model this task distils from
    metric: str = ""                           # "" = by kind: f1 (qa), accuracy (sequence), token_f1 (token)

    def __post_init__(self):
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r} is not one of {TASK_KINDS}.")
        self.metric = self.metric or METRICS[self.kind]
        if self.kind != "qa" and len(self.labels) < 2:
            raise ValueError(f"task {self.name!r} ({self.kind}) needs at least two label names, got {self.labels}.")
        if len(self.features) == 0:
            raise ValueError(f"task {self.name!r} has no training windows.")


# The tasks the kit knows how to build from SQuAD-format examples: name -> (kind, metric, windows builder).
# question_type and entities need the generated data's labels (`relation`, the context's `entities`).
REGISTRY = {
    "qa": ("qa", "f1", lambda ex, tok, n, s, labels, src: (make_features(ex, tok, n, s), [])),
    "answerability": ("sequence", "question_accuracy",
                      lambda ex, tok, n, s, labels, src: (answerability_windows(ex, tok, n, s), ["no", "yes"])),
    "question_type": ("sequence", "accuracy",
                      lambda ex, tok, n, s, labels, src: question_type_windows(ex, tok, labels, source=src)),
    "entities": ("token", "token_f1",
                 lambda ex, tok, n, s, labels, src: entity_windows(ex, tok, labels, n, source=src)),
}


def task_windows(name: str, examples: list[Example], tokenizer, max_length: int = 384, stride: int = 128,
                 labels: list[str] | None = None, source: str = "data"):
    """(windows, label names) of a registered task; pass the training set's `labels` for validation/test."""
    if name not in REGISTRY:
        raise ValueError(f"unknown task {name!r}; the registry has {sorted(REGISTRY)}.")
    return REGISTRY[name][2](examples, tokenizer, max_length, stride, labels, source)


def make_task(name: str, examples: list[Example], tokenizer, max_length: int = 384, stride: int = 128,
              source: str = "data", **options) -> Task:
    """A registered task built from training examples (options: weight, teacher)."""
    windows, labels = task_windows(name, examples, tokenizer, max_length, stride, source=source)
    kind, metric = REGISTRY[name][:2]
    return Task(name, kind, windows, labels, metric=metric, **options)


class TaskSampler:
    """Which task each batch comes from (see the module docstring for the three strategies)."""

    def __init__(self, sizes: dict[str, int], strategy: str = "proportional", temperature: float = 2.0):
        if strategy not in SAMPLING:
            raise ValueError(f"sampling {strategy!r}: choose one of {SAMPLING}.")
        if strategy == "temperature" and temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.sizes, self.strategy, self.temperature = dict(sizes), strategy, temperature

    @classmethod
    def for_tasks(cls, tasks: list[Task], strategy: str = "proportional", temperature: float = 2.0):
        return cls({t.name: len(t.features) for t in tasks}, strategy, temperature)

    def probabilities(self) -> dict[str, float]:
        """The share of batches each task gets."""
        if self.strategy == "round_robin":
            w = {k: 1.0 for k in self.sizes}
        else:
            power = 1.0 if self.strategy == "proportional" else 1.0 / self.temperature
            w = {k: n ** power for k, n in self.sizes.items()}
        total = sum(w.values())
        return {k: v / total for k, v in w.items()}

    def schedule(self, n_batches: int, seed: int) -> list[str]:
        """The task of each of `n_batches` batches, a pure function of the seed (a resumed run sees the same)."""
        names = list(self.sizes)
        if self.strategy == "round_robin":
            return [names[i % len(names)] for i in range(n_batches)]
        p = torch.tensor([self.probabilities()[k] for k in names], dtype=torch.float64)
        draws = torch.multinomial(p, n_batches, replacement=True, generator=torch.Generator().manual_seed(seed))
        return [names[i] for i in draws.tolist()]


class MultiTaskData:
    """The training data of several tasks, for kit.train.train: each batch holds windows of one task."""

    def __init__(self, tasks: list[Task], sampler: TaskSampler | None = None):
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique: {names}")
        self.tasks = {t.name: t for t in tasks}
        self.sampler = sampler or TaskSampler.for_tasks(tasks)
        if set(self.sampler.sizes) != set(names):
            raise ValueError(f"the sampler knows tasks {sorted(self.sampler.sizes)}, the data {sorted(names)}.")

    def __len__(self):
        return sum(len(t.features) for t in self.tasks.values())

    def epoch_batches(self, batch_size: int, seed: int, group_by_length: bool) -> list[tuple[str, list[int]]]:
        """One epoch: Σ ceil(n_i / batch_size) batches, tasks drawn by the sampler, windows from each task's own
        shuffled passes (kit.train.epoch_batches)."""
        n_batches = sum(math.ceil(len(t.features) / batch_size) for t in self.tasks.values())
        order = self.sampler.schedule(n_batches, seed)
        streams = {name: self._stream(task, batch_size, seed, group_by_length) for name, task in self.tasks.items()}
        return [(name, next(streams[name])) for name in order]

    @staticmethod
    def _stream(task, batch_size, seed, group_by_length):
        from .train import epoch_batches
        for k in range(10 ** 9):  # a new shuffled pass whenever the previous one is used up
            yield from epoch_batches(task.features, batch_size, seed * 7919 + k, group_by_length)

    def collate(self, task: str, indices, pad_id: int) -> dict:
        t = self.tasks[task]
        batch = collate(t.features, indices, pad_id) if t.kind == "qa" else collate_labelled(t.features, indices, pad_id)
        return {"task": task, **batch}


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
    sequence/token: cross-entropy (IGNORE labels skipped), plus KL(teacher ‖ student) when the task has a teacher.
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
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=IGNORE)
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


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def head_predictions(model: MultiTaskModel, task: str, feats: LabelledWindows, pad_id: int, batch_size: int = 64):
    """Logits of a sequence or token head for every window (a list, one tensor per window, padding cut off)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(feats), batch_size):
        idx = list(range(i, min(i + batch_size, len(feats))))
        batch = {k: v.to(device) for k, v in collate_labelled(feats, idx, pad_id).items() if k != "labels"}
        logits = model(task=task, **batch).float().cpu()
        for row, j in enumerate(idx):
            out.append(logits[row, :len(feats.input_ids[j])] if logits.dim() == 3 else logits[row])
    model.train(was_training)
    return out


def sequence_accuracy(model, task: str, feats: LabelledWindows, pad_id: int) -> float:
    """Percentage of windows whose predicted class equals their label."""
    preds = [int(p.argmax()) for p in head_predictions(model, task, feats, pad_id)]
    return 100.0 * sum(p == y for p, y in zip(preds, feats.labels)) / len(feats)


def answerability_accuracy(model, task: str, feats: LabelledWindows, examples: list[Example], pad_id: int) -> float:
    """Percentage of questions whose answerability (any window answers it) is predicted right."""
    scores = [float(p[1] - p[0]) for p in head_predictions(model, task, feats, pad_id)]
    predicted = question_answerable(feats, scores, len(examples))
    gold = [not ex.is_impossible and bool(ex.answers) for ex in examples]
    return 100.0 * sum(p == g for p, g in zip(predicted, gold)) / len(examples)


def token_f1(model, task: str, feats: LabelledWindows, labels: list[str], pad_id: int) -> float:
    """Micro F1 over tokens inside entities (tags other than O): the share of entity tokens found with the right tag."""
    o = labels.index("O")
    tp = fp = fn = 0
    for logits, gold in zip(head_predictions(model, task, feats, pad_id), feats.labels):
        for p, g in zip(logits.argmax(-1).tolist(), gold):
            if g == IGNORE:
                continue
            tp += p == g and g != o
            fp += p != o and p != g
            fn += g != o and p != g
    return 100.0 * 2 * tp / max(1, 2 * tp + fp + fn)


def make_evaluator(tasks: list[Task], examples: dict[str, list[Example]], tokenizer, max_length: int = 384,
                   stride: int = 128):
    """evaluate(model) -> {"<task>/<metric>": value} for kit.train.train, every task (a registered name, see
    REGISTRY) scored on its own examples
    (QA: EM and F1 over whole questions; answerability: per question; the rest per window or token)."""
    pad = tokenizer.pad_token_id
    windows = {t.name: task_windows(t.name, examples[t.name], tokenizer, max_length, stride, t.labels or None)[0]
               for t in tasks if t.kind != "qa"}

    def evaluate(model) -> dict:
        from .inference import evaluate_model
        out = {}
        for t in tasks:
            key = f"{t.name}/{t.metric}"
            if t.kind == "qa":
                m, _ = evaluate_model(model.qa, tokenizer, examples[t.name], max_length=max_length, stride=stride)
                out[f"{t.name}/exact_match"], out[key] = m["exact_match"], m["f1"]
            elif t.metric == "question_accuracy":
                out[key] = answerability_accuracy(model, t.name, windows[t.name], examples[t.name], pad)
            elif t.metric == "accuracy":
                out[key] = sequence_accuracy(model, t.name, windows[t.name], pad)
            else:
                out[key] = token_f1(model, t.name, windows[t.name], t.labels, pad)
        return out
    return evaluate
