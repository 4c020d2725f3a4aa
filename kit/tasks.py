"""The tasks of multi-task training, and the sampler that picks each batch's task.

    tasks = [make_task("qa", train_ex, tok), make_task("answerability", v2_ex, tok)]
    data = MultiTaskData(tasks, TaskSampler.for_tasks(tasks, "temperature", 2.0))
    train(model, data, cfg, pad_id=..., loss_fn=MultiTaskLoss(tasks))   # the model and loss: kit.multitask

Task kinds (`TASK_KINDS`):
  qa        extractive QA: start/end logits over the window (kit.features), the QA model's own head;
  sequence  one label per window, read from the first (CLS) token: answerability, question type;
  token     one label per token (-100 where there is none): entity tagging.
The tasks the kit builds from SQuAD-format examples are in `REGISTRY` (windows: kit.task_windows).

The sampler decides how many batches each task gets. For task sizes n_i (windows) it draws task i with
  proportional   p_i = n_i / Σ n_j              (big tasks dominate, small ones are rarely seen)
  temperature    p_i ∝ n_i^(1/T)                (T = 1 is proportional, T → ∞ uniform; T = 2 is common)
  round_robin    the tasks in turn, one batch each
One epoch is as many batches as one pass over every task would take; a task whose windows run out
starts a new shuffled pass, so a small task may be seen several times per epoch.
`drawn_tasks` lists the task of each update of a run as the loop draws it; `updates_for` gives the budget in
which one task gets a chosen number of updates (a fair comparison with a single-task run); `replay_updates`
recounts a finished run's updates per task from its task sizes, sampler, batch size and seed.
A sequence task may weigh its classes (`make_task(..., balance_classes=True)`: `balanced_class_weights`), so that
a rare class (an unanswerable question) counts as much as the common one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import Example
from .features import Features, collate, make_features
from .task_windows import (LabelledWindows, answerability_windows, collate_labelled, entity_windows,
                           question_type_windows)

TASK_KINDS = ("qa", "sequence", "token")
SAMPLING = ("proportional", "temperature", "round_robin")


# ----------------------------------------------------------------------------- the registry

METRICS = {"qa": "f1", "sequence": "accuracy", "token": "token_f1"}


@dataclass
class Task:
    name: str
    kind: str                                  # one of TASK_KINDS
    features: Features | LabelledWindows       # the training windows
    labels: list[str] = field(default_factory=list)   # class names (sequence and token tasks)
    weight: float = 1.0                        # multiplies this task's loss
    class_weights: list[float] | None = None   # sequence/token tasks: per-class weights of the cross-entropy
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
        if self.class_weights is not None and len(self.class_weights) != len(self.labels):
            raise ValueError(f"task {self.name!r}: {len(self.class_weights)} class weights for {len(self.labels)} labels.")


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
              source: str = "data", balance_classes: bool = False, **options) -> Task:
    """A registered task built from training examples (options: weight, teacher, class_weights).
    balance_classes: weigh each class of a sequence task's cross-entropy by `balanced_class_weights`."""
    windows, labels = task_windows(name, examples, tokenizer, max_length, stride, source=source)
    kind, metric = REGISTRY[name][:2]
    if balance_classes and kind == "sequence":
        options["class_weights"] = balanced_class_weights(windows.labels, len(labels))
    return Task(name, kind, windows, labels, metric=metric, **options)


def balanced_class_weights(labels: list[int], n_classes: int) -> list[float]:
    """w_c = n / (k · n_c) for n labels, k classes present, n_c of class c ("balanced", as scikit-learn): every class
    then adds the same total weight to the loss, so a head cannot win by always answering the majority class.
    A class with no windows gets weight 0."""
    counts = [0] * n_classes
    for y in labels:
        counts[y] += 1
    present = sum(c > 0 for c in counts)
    return [len(labels) / (present * c) if c else 0.0 for c in counts]


# ----------------------------------------------------------------------------- the sampler and the data

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


def drawn_tasks(data: "MultiTaskData", n_updates: int, batch_size: int, seed: int,
                group_by_length: bool = True) -> list[str]:
    """The task of each of a run's first `n_updates` optimiser steps, as kit.train's loop draws them (epoch e
    plans its batches with seed `seed * 1000 + e`); batch_size: windows per update (batch_size × grad_accum)."""
    from .train import global_batches
    drawn, epoch = [], 0
    while len(drawn) < n_updates:
        drawn += [task for task, _ in global_batches(data, batch_size, seed * 1000 + epoch, group_by_length)]
        epoch += 1
    return drawn[:n_updates]


def replay_updates(sizes: dict[str, int], strategy: str, temperature: float, n_updates: int, batch_size: int,
                   seed: int) -> dict[str, int]:
    """The updates each task got in a run that is gone: the task of each batch depends only on the tasks' window
    counts, the sampler, the batch size and the seed, so windows of the same counts replay the run's draws."""
    from .task_windows import LabelledWindows
    tasks = [Task(name, "sequence", LabelledWindows([[0]] * n, [0] * n), ["a", "b"]) for name, n in sizes.items()]
    data = MultiTaskData(tasks, TaskSampler(sizes, strategy, temperature))
    drawn = drawn_tasks(data, n_updates, batch_size, seed)
    return {name: drawn.count(name) for name in sizes}


def updates_for(data: "MultiTaskData", task: str, n: int, batch_size: int, seed: int,
                group_by_length: bool = True) -> int:
    """The fewest optimiser steps of a multi-task run in which `task` gets `n` of them (the run's own draws, see
    drawn_tasks): the budget that gives a task as many updates as a single-task run of `n` steps."""
    if n <= 0:
        return 0
    share = data.sampler.probabilities()[task]
    if share == 0:
        raise ValueError(f"the sampler never draws task {task!r}.")
    total = max(n, math.ceil(n / share))
    while True:
        drawn = drawn_tasks(data, 2 * total, batch_size, seed, group_by_length)
        seen = 0
        for i, name in enumerate(drawn):
            seen += name == task
            if seen == n:
                return i + 1
        total *= 2


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
