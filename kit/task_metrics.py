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
from .features import length_batches
from .models import sdpa_attention
from .multitask import MultiTaskModel
from .task_windows import IGNORE, LabelledWindows, collate_labelled, question_answerable
from .tasks import Task, task_windows


@torch.no_grad()
def head_predictions(model: MultiTaskModel, task: str, feats: LabelledWindows, pad_id: int, batch_size: int = 64):
    """Logits of a sequence or token head for every window (a list in the windows' order, one tensor per window,
    padding cut off). Like kit.inference.window_logits: batched by length, attention fused."""
    was_training = model.training
    model.eval()
    place(model)   # kit.device's rule: models run on device(), batches follow them
    out = [None] * len(feats)
    with sdpa_attention(model.qa):   # the encoder every head reads
        for idx in length_batches([len(ids) for ids in feats.input_ids], batch_size):
            batch = batch_to({k: v for k, v in collate_labelled(feats, idx, pad_id).items() if k != "labels"}, model)
            logits = model(task=task, **batch).float().cpu()
            for row, j in enumerate(idx):
                out[j] = logits[row, :len(feats.input_ids[j])] if logits.dim() == 3 else logits[row]
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


def answerability_counts(predicted: list[bool], gold: list[bool]) -> dict:
    """Per question, predicted and gold answerability (True = answerable) → `accuracy` (%), `balanced_accuracy`
    (0-1), `says_yes` (% called answerable) and the confusion counts: `answerable→yes` (answerable, called
    answerable), `answerable→no`, `unanswerable→yes`, `unanswerable→no`."""
    pairs = list(zip(predicted, gold))
    counts = {f"{'answerable' if g else 'unanswerable'}→{'yes' if p else 'no'}": sum(pair == (p, g) for pair in pairs)
              for g in (True, False) for p in (True, False)}
    return {"accuracy": 100.0 * sum(p == g for p, g in pairs) / len(pairs),
            "balanced_accuracy": balanced_accuracy(predicted, gold), "says_yes": 100.0 * sum(predicted) / len(pairs),
            **counts}


def gold_answerable(examples: list[Example]) -> list[bool]:
    """Per question: does it have an answer (not v2's is_impossible, and a gold answer left)?"""
    return [not ex.is_impossible and bool(ex.answers) for ex in examples]


def answerability_report(model, task: str, feats: LabelledWindows, examples: list[Example], pad_id: int) -> dict:
    """The dedicated head, per question (answerable when any window says so): `answerability_counts`, and what
    always answering the majority class scores (`majority_accuracy` %, its balanced accuracy is 0.5)."""
    scores = [float(p[1] - p[0]) for p in head_predictions(model, task, feats, pad_id)]
    predicted = question_answerable(feats, scores, len(examples))
    gold = gold_answerable(examples)
    share_yes = sum(gold) / len(gold)
    return {**answerability_counts(predicted, gold), "majority_accuracy": 100.0 * max(share_yes, 1 - share_yes)}


def null_margins(qa_model, tokenizer, examples: list[Example], max_length: int = 384, stride: int = 128) -> list[float]:
    """Per question, the QA head's null score minus its best span's score (kit.features.span_and_null_scores):
    the larger, the surer the head is that the question has no answer. postprocess answers "" above its
    null_threshold (0 by default); +inf where no window has a valid span."""
    from .features import make_features, span_and_null_scores
    from .inference import fit_window, window_logits
    max_length, stride = fit_window(qa_model, max_length, stride)
    feats = make_features(examples, tokenizer, max_length, stride)
    start, end = window_logits(qa_model, feats, tokenizer.pad_token_id)
    return [null - best for _, best, null in span_and_null_scores(examples, feats, start, end)]


def null_rule(margins: list[float], threshold: float) -> list[bool]:
    """Answerable unless the null score beats the best span by more than `threshold` (postprocess's rule)."""
    return [m <= threshold for m in margins]


def choose_null_threshold(margins: list[float], answerable: list[bool]) -> float:
    """The threshold with the highest balanced accuracy of `null_rule` on these questions: call it on validation
    questions, never the test ones. Candidates lie halfway between neighbouring margins (and below the lowest,
    above the highest); on a tie, the candidate nearest 0, postprocess's default."""
    finite = sorted({m for m in margins if abs(m) != float("inf")})
    if not finite or len(set(answerable)) < 2:
        raise ValueError("choosing a null threshold needs finite margins and both answerable and unanswerable "
                         "questions: give a validation file with v2 (is_impossible) questions")
    candidates = [finite[0] - 1.0] + [(a + b) / 2 for a, b in zip(finite, finite[1:])] + [finite[-1] + 1.0]
    return max(candidates, key=lambda t: (balanced_accuracy(null_rule(margins, t), answerable), -abs(t)))


def null_rule_answerability(validation_margins: list[float], validation_gold: list[bool],
                            test_margins: list[float], test_gold: list[bool]) -> dict:
    """Answerability from the QA head alone: the threshold chosen on validation (`choose_null_threshold`), then
    `answerability_counts` on the test questions, with the `threshold`."""
    threshold = choose_null_threshold(validation_margins, validation_gold)
    return {"threshold": threshold, **answerability_counts(null_rule(test_margins, threshold), test_gold)}


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
                out.update({f"{t.name}/{k}": v for k, v in report.items() if "→" in k})   # the confusion counts
            elif t.metric == "accuracy":
                out[key] = sequence_accuracy(model, t.name, windows[t.name], pad)
            else:
                out[key] = token_f1(model, t.name, windows[t.name], t.labels, pad)
        return out
    return evaluate
