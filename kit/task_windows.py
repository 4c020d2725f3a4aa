"""The windows of the tasks other than QA: tokenised inputs with a class label per window or per token.

  answerability   does this window hold the answer? (the QA windows, labelled 1/0; any window → the question)
  question type   what the question asks about (the generated data's `relation`), from the question alone
  entities        a BIO tag per context token (B-PER, I-PER, ..., O), from the generated data's entity spans

Each builder returns LabelledWindows; `collate_labelled` pads a batch of them like kit.features.collate,
token labels padded with IGNORE. The QA task's own windows are kit.features.Features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .data import DataError, Example
from .features import Features, collate, make_features

IGNORE = -100  # label of a token without one (special tokens, padding, the question in a token task)


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
