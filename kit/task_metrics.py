"""Scoring a multi-task model: each head on its own task's windows, and the evaluator kit.train.train calls.

  qa             exact match and F1 over whole questions (kit.inference.evaluate_model on the QA model);
  answerability  accuracy per question (answerable when any of its windows says so), and balanced accuracy (the
                 mean of the two classes' recalls, 0-1: 0.5 for a head that always says the same; see
                 `balanced_accuracy`);
  question type  accuracy per window;
  entities       micro F1 over the tokens inside entities.
"""
from __future__ import annotations

import torch

from .data import Example
from .device import batch_to, place
from .multitask import MultiTaskModel
from .task_windows import IGNORE, LabelledWindows, collate_labelled, question_answerable
from .tasks import Task, task_windows


@torch.no_grad()
def head_predictions(model: MultiTaskModel, task: str, feats: LabelledWindows, pad_id: int, batch_size: int = 64):
    """Logits of a sequence or token head for every window (a list, one tensor per window, padding cut off)."""
    was_training = model.training
    model.eval()
    place(model)   # kit.device's rule: models run on device(), batches follow them
    out = []
    for i in range(0, len(feats), batch_size):
        idx = list(range(i, min(i + batch_size, len(feats))))
        batch = batch_to({k: v for k, v in collate_labelled(feats, idx, pad_id).items() if k != "labels"}, model)
        logits = model(task=task, **batch).float().cpu()
        for row, j in enumerate(idx):
            out.append(logits[row, :len(feats.input_ids[j])] if logits.dim() == 3 else logits[row])
    model.train(was_training)
    return out


def sequence_accuracy(model, task: str, feats: LabelledWindows, pad_id: int) -> float:
    """Percentage of windows whose predicted class equals their label."""
    preds = [int(p.argmax()) for p in head_predictions(model, task, feats, pad_id)]
    return 100.0 * sum(p == y for p, y in zip(preds, feats.labels)) / len(feats)


def balanced_accuracy(predicted: list, gold: list) -> float:
    """The mean over the gold classes of the share of each class predicted right (its recall), 0-1.

    Always answering the majority class scores 0.5 with two classes (1 on one class, 0 on the other), however rare
    the other class is; plain accuracy would give it the majority's share (0.85 when 85% are answerable)."""
    classes = sorted(set(gold), key=str)
    if not classes:
        raise ValueError("balanced accuracy of no examples")
    recall = [sum(p == g for p, g in zip(predicted, gold) if g == c) / sum(g == c for g in gold) for c in classes]
    return sum(recall) / len(recall)


def answerability_report(model, task: str, feats: LabelledWindows, examples: list[Example], pad_id: int) -> dict:
    """Per question (answerable when any window says so): `accuracy` (%), `balanced_accuracy` (0-1), `says_yes` (%
    of questions called answerable), and what always answering the majority class scores (`majority_accuracy` %,
    its balanced accuracy is 0.5)."""
    scores = [float(p[1] - p[0]) for p in head_predictions(model, task, feats, pad_id)]
    predicted = question_answerable(feats, scores, len(examples))
    gold = [not ex.is_impossible and bool(ex.answers) for ex in examples]
    share_yes = sum(gold) / len(gold)
    return {"accuracy": 100.0 * sum(p == g for p, g in zip(predicted, gold)) / len(examples),
            "balanced_accuracy": balanced_accuracy(predicted, gold), "says_yes": 100.0 * sum(predicted) / len(predicted),
            "majority_accuracy": 100.0 * max(share_yes, 1 - share_yes)}


def answerability_accuracy(model, task: str, feats: LabelledWindows, examples: list[Example], pad_id: int) -> float:
    """Percentage of questions whose answerability (any window answers it) is predicted right."""
    return answerability_report(model, task, feats, examples, pad_id)["accuracy"]


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
    (QA: EM and F1 over whole questions; answerability: accuracy, balanced accuracy and the share called answerable,
    per question; the rest per window or token)."""
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
                report = answerability_report(model, t.name, windows[t.name], examples[t.name], pad)
                out[key], out[f"{t.name}/balanced_accuracy"] = report["accuracy"], report["balanced_accuracy"]
                out[f"{t.name}/says_yes"] = report["says_yes"]
            elif t.metric == "accuracy":
                out[key] = sequence_accuracy(model, t.name, windows[t.name], pad)
            else:
                out[key] = token_f1(model, t.name, windows[t.name], t.labels, pad)
        return out
    return evaluate
