"""From examples to model inputs and back: question/context windows, labels, and answer spans.

A context longer than `max_length` tokens is cut into overlapping windows (`stride` tokens shared
between neighbours) so that no answer is lost at a cut. Each window (a *feature*) keeps
  * `offsets`: for every token, its (start, end) characters in the context, or None when the token
    is not context (question, special tokens, padding) — spans may only be taken from context;
  * `start_position`/`end_position`: the token indices of the gold answer, or 0 (the CLS token)
    when the answer is not inside this window or the question has none (SQuAD v2).
After the model has scored every window, `postprocess` picks, per question, the best-scoring
valid span over all its windows (n-best start × end, at most `max_answer_length` tokens) and
maps it back to characters of the context; with `version_2`, it answers "" when the null (CLS)
score beats the best span by more than `null_threshold`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import DataError, Example


@dataclass
class Features:
    input_ids: list[list[int]]
    example_index: list[int]                      # which example each window comes from
    offsets: list[list[tuple[int, int] | None]]   # character span in the context, None if not context
    start_positions: list[int]
    end_positions: list[int]
    token_type_ids: list[list[int]] | None = None
    NOT_TRAINED_ON = ("example_index", "offsets")   # left out of a training run's data digest (kit.checkpoint)

    def __len__(self):
        return len(self.input_ids)

    def select(self, indices) -> "Features":
        """The windows `indices` (in that order), e.g. those of a subset of the questions."""
        pick = lambda rows: [rows[i] for i in indices]
        return Features(pick(self.input_ids), pick(self.example_index), pick(self.offsets),
                        pick(self.start_positions), pick(self.end_positions),
                        pick(self.token_type_ids) if self.token_type_ids is not None else None)

    def without_labels(self) -> "Features":
        """The same windows as questions nobody has answered (kit.losses.UNLABELLED): a student distilled on
        them learns their answers from the teacher's logits alone."""
        from .losses import UNLABELLED
        unlabelled = [UNLABELLED] * len(self)
        return Features(self.input_ids, self.example_index, self.offsets, unlabelled, list(unlabelled),
                        self.token_type_ids)

    def __add__(self, other: "Features") -> "Features":
        """The windows of both (example_index keeps each side's own numbering: use it per side only)."""
        if (self.token_type_ids is None) != (other.token_type_ids is None):
            raise ValueError("cannot join windows with and without token_type_ids (two tokenizers?).")
        return Features(self.input_ids + other.input_ids, self.example_index + other.example_index,
                        self.offsets + other.offsets, self.start_positions + other.start_positions,
                        self.end_positions + other.end_positions,
                        None if self.token_type_ids is None else self.token_type_ids + other.token_type_ids)


def check_fast_tokenizer(tokenizer):
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"tokenizer {type(tokenizer).__name__} gives no offset mapping (a slow tokenizer), "
                        f"so answers cannot be mapped back to characters. Load it with "
                        f"AutoTokenizer.from_pretrained(..., use_fast=True) or use a `tokenizers`-backed tokenizer.")


def make_features(examples: list[Example], tokenizer, max_length: int = 384, stride: int = 128) -> Features:
    """Tokenise (question, context) pairs into windows with offsets and start/end labels."""
    check_fast_tokenizer(tokenizer)
    if stride > max_length // 2:
        raise ValueError(f"stride {stride} must be well below max_length {max_length} (e.g. 128 for 384): "
                         f"it is the number of tokens shared by neighbouring windows.")
    if tokenizer.padding_side != "right":  # `collate` pads on the right; offsets assume it
        raise ValueError("the tokenizer pads on the left; set tokenizer.padding_side = 'right'.")
    enc = tokenizer([e.question for e in examples], [e.context for e in examples],
                    truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    feats = Features([], [], [], [], [], [] if "token_type_ids" in enc else None)
    for i in range(len(enc["input_ids"])):
        ex_i = enc["overflow_to_sample_mapping"][i]
        ex = examples[ex_i]
        seq_ids = enc.sequence_ids(i)
        offsets = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq_ids)]
        start_tok = end_tok = 0  # CLS: "no answer in this window"
        if ex.answers and not ex.is_impossible:
            a = ex.answers[0]
            a_start, a_end = a["answer_start"], a["answer_start"] + len(a["text"])
            ctx = [j for j, o in enumerate(offsets) if o is not None]
            if ctx and offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                start_tok = next(j for j in ctx if offsets[j][1] > a_start)
                end_tok = next(j for j in reversed(ctx) if offsets[j][0] < a_end)
        feats.input_ids.append(enc["input_ids"][i])
        feats.example_index.append(ex_i)
        feats.offsets.append(offsets)
        feats.start_positions.append(start_tok)
        feats.end_positions.append(end_tok)
        if feats.token_type_ids is not None:
            feats.token_type_ids.append(enc["token_type_ids"][i])
    return feats


def split_by_question(feats: Features, fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Window indices of a random `fraction` of the questions, and of the others. A question's windows stay
    on one side, so that "10% of the labels" means 10% of the questions, however long their contexts."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction}: give a share of the questions in (0, 1].")
    import random
    questions = sorted(set(feats.example_index))
    random.Random(seed).shuffle(questions)
    chosen = set(questions[:max(1, round(fraction * len(questions)))])
    inside = [k for k, q in enumerate(feats.example_index) if q in chosen]
    return inside, [k for k, q in enumerate(feats.example_index) if q not in chosen]


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices of windows grouped into batches of similar length (shortest first), so that padding each batch to
    its longest computes little padding; the caller puts each result back at its window's index."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def collate(feats: Features, indices, pad_id: int, with_labels: bool = True) -> dict[str, torch.Tensor]:
    """Pad the windows `indices` to their longest length (dynamic padding: short contexts stay cheap)."""
    width = max(len(feats.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(feats.input_ids[i])
        ids[row, :n] = torch.tensor(feats.input_ids[i])
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if feats.token_type_ids is not None:
        tt = torch.zeros_like(ids)
        for row, i in enumerate(indices):
            tt[row, :len(feats.token_type_ids[i])] = torch.tensor(feats.token_type_ids[i])
        batch["token_type_ids"] = tt
    if with_labels:
        batch["start_positions"] = torch.tensor([feats.start_positions[i] for i in indices])
        batch["end_positions"] = torch.tensor([feats.end_positions[i] for i in indices])
    return batch


def span_and_null_scores(examples: list[Example], feats: Features, start_logits, end_logits, n_best: int = 20,
                         max_answer_length: int = 30) -> list[tuple[str, float, float]]:
    """(best span's text, its score s[i] + e[j], the null score s[0] + e[0]) per example: the best span over all of
    its windows, among the n_best starts × n_best ends of each; the null score is the lowest over its windows (the
    window that most believes an answer is there). "" and -inf where no window has a valid span."""
    by_example: dict[int, list[int]] = {}
    for f_i, ex_i in enumerate(feats.example_index):
        by_example.setdefault(ex_i, []).append(f_i)
    scores = []
    for ex_i, ex in enumerate(examples):
        best_text, best_score, null_score = "", float("-inf"), float("inf")
        for f_i in by_example.get(ex_i, []):
            s, e, offsets = start_logits[f_i], end_logits[f_i], feats.offsets[f_i]
            n = len(offsets)
            s, e = torch.as_tensor(s[:n]).float(), torch.as_tensor(e[:n]).float()
            null_score = min(null_score, float(s[0] + e[0]))
            for si in torch.topk(s, min(n_best, n)).indices.tolist():
                if offsets[si] is None:
                    continue
                for ei in torch.topk(e, min(n_best, n)).indices.tolist():
                    if offsets[ei] is None or ei < si or ei - si + 1 > max_answer_length:
                        continue
                    score = float(s[si] + e[ei])
                    if score > best_score:
                        best_score = score
                        best_text = ex.context[offsets[si][0]:offsets[ei][1]]
        scores.append((best_text, best_score, null_score))
    return scores


def postprocess(examples: list[Example], feats: Features, start_logits, end_logits, n_best: int = 20,
                max_answer_length: int = 30, version_2: bool = False, null_threshold: float = 0.0
                ) -> dict[str, str]:
    """Logits of every window → one answer text per question id ("" = no answer, v2 only: when the null score
    beats the best span's by more than null_threshold)."""
    scores = span_and_null_scores(examples, feats, start_logits, end_logits, n_best, max_answer_length)
    return {ex.id: "" if version_2 and null - best > null_threshold else text
            for ex, (text, best, null) in zip(examples, scores)}


def window_scores(example: Example, feats: Features, start_logits, end_logits, n_best: int = 20,
                  max_answer_length: int = 30) -> list[dict]:
    """What `postprocess` weighs, window by window, for one question: `feats` are the windows of `example` alone
    (make_features([example], ...)). Per window: the characters of the context it covers, its no-answer score
    s[0] + e[0], its best span (text) and that span's score s[i] + e[j] ("" and -inf when it has none). The
    question's answer is the best span over the rows (the first on a tie) unless the lowest no-answer score beats
    it by more than the null threshold, exactly as `postprocess` decides."""
    rows = []
    for w, offsets in enumerate(feats.offsets):
        context = [o for o in offsets if o is not None]
        one = Features([feats.input_ids[w]], [0], [offsets], [0], [0])
        text, span, null = span_and_null_scores([example], one, [start_logits[w]], [end_logits[w]], n_best,
                                                max_answer_length)[0]
        rows.append({"window": w, "context chars": (context[0][0], context[-1][1]) if context else None,
                     "no-answer s[0]+e[0]": null, "best span": text, "span score": span})
    return rows
