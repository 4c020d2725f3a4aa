"""Extra windows for the teacher to label, made from the training file itself: the same questions, new contexts.

    python -m kit augment --train train-v1.1.json --out augmented.json --ways reorder,drop,other
    python -m kit teacher-outputs --teacher DIR --train train-v1.1.json --unlabelled train-v2.0.json,augmented.json \
        --out T.safetensors
    python -m kit distill --teacher DIR --teacher-outputs T.safetensors --unlabelled train-v2.0.json,augmented.json ...

Why. A small student learns more from its teacher when the teacher also labels data beyond the training set:
TinyBERT's augmentation on small GLUE tasks, TextBrewer's 3-layer student on CMRC 2018 (F1 48.1 -> 79.3 with a
second reading set labelled by the teacher). Real Spanish QA data is scarce, so this module rewrites the training
contexts around their questions, three ways:
  reorder   the context's sentences in another order (each answer's sentence kept whole): the answer moves
  drop      some sentences that hold no answer left out: a shorter context, the same answer
  other     the question beside another paragraph of the same article: there it usually has no answer
The gold answers are carried along (moved to their new offsets, or none for `other`) so the file is valid SQuAD v2.0
and can be read and checked, but distillation does not use them: `--unlabelled` windows learn from the teacher's
start/end distributions alone, which is the point (the teacher's soft labels on new text).

Nothing is dropped silently: a question that one way cannot rewrite (a context of one sentence, an answer that
crosses a sentence boundary, no other paragraph in its article, another paragraph that contains the answer's text)
is counted by reason, and the counts are returned and printed.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

from .data import Example

WAYS = ("reorder", "drop", "other")

# A sentence ends at . ! ? followed by space and what starts a Spanish sentence (a capital, a digit, an opening
# quote, ¿ or ¡). Abbreviations ("Sr. Pérez") split too early; that only makes the pieces shorter.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[«\"“¿¡(A-ZÁÉÍÓÚÑÜ0-9])")


def sentence_spans(context: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the context's sentences, the whitespace between them left out."""
    spans, start = [], 0
    for gap in SENTENCE_END.finditer(context):
        spans.append((start, gap.start()))
        start = gap.end()
    spans.append((start, len(context)))
    return [(a, b) for a, b in spans if b > a]


def _sentence_of(spans, answer: dict) -> int | None:
    """The index of the sentence that holds the whole answer, or None if it crosses a boundary."""
    a = answer["answer_start"]
    b = a + len(answer["text"])
    return next((i for i, (s, e) in enumerate(spans) if s <= a and b <= e), None)


def rebuild(example: Example, spans, order: list[int], new_id: str) -> Example:
    """The example with its context made of sentences `order` (joined by one space), answers moved to match."""
    starts, parts, pos = {}, [], 0
    for i in order:
        s, e = spans[i]
        starts[i] = pos
        parts.append(example.context[s:e])
        pos += e - s + 1
    context = " ".join(parts)
    answers = []
    for ans in example.answers:
        i = _sentence_of(spans, ans)
        new = starts[i] + ans["answer_start"] - spans[i][0]
        assert context[new:new + len(ans["text"])] == ans["text"], (example.id, ans)
        answers.append({"text": ans["text"], "answer_start": new})
    return Example(new_id, example.title, example.question, context, answers, example.is_impossible)


def reorder(example: Example, rng: random.Random, new_id: str) -> Example | str:
    """The context's sentences shuffled (never the same order), or the reason it cannot be."""
    spans = sentence_spans(example.context)
    if len(spans) < 2:
        return "one_sentence"
    if any(_sentence_of(spans, a) is None for a in example.answers):
        return "answer_crosses_sentences"
    order = list(range(len(spans)))
    while order == sorted(order):
        rng.shuffle(order)
    return rebuild(example, spans, order, new_id)


def drop(example: Example, rng: random.Random, new_id: str) -> Example | str:
    """Between one and all of the sentences without an answer left out, the rest in their order."""
    spans = sentence_spans(example.context)
    held = [_sentence_of(spans, a) for a in example.answers]
    if None in held:
        return "answer_crosses_sentences"
    others = [i for i in range(len(spans)) if i not in held]
    if not others or len(others) == len(spans):   # nothing to drop, or (no answer) nothing would be left
        others = others[:-1]
    if not others:
        return "no_sentence_to_drop"
    gone = set(rng.sample(others, rng.randint(1, len(others))))
    return rebuild(example, spans, [i for i in range(len(spans)) if i not in gone], new_id)


def other(example: Example, rng: random.Random, new_id: str, contexts: list[str]) -> Example | str:
    """The question beside another paragraph of its article (`contexts`), as unanswerable."""
    choices = [c for c in contexts if c != example.context]
    if not choices:
        return "no_other_paragraph"
    context = rng.choice(choices)
    if any(a["text"] in context for a in example.answers):
        return "other_paragraph_holds_the_answer_text"    # it might answer there: not a clean negative
    return Example(new_id, example.title, example.question, context, [], True)


def augment(examples: list[Example], ways=WAYS, copies: int = 1, seed: int = 0) -> tuple[list[Example], Counter]:
    """`copies` rewrites of every question by each of `ways`, and the counts of what was made and skipped."""
    unknown = set(ways) - set(WAYS)
    if unknown or not ways:
        raise ValueError(f"augmentation ways {sorted(unknown) or 'none'}: choose among {', '.join(WAYS)}.")
    if copies < 1:
        raise ValueError(f"copies {copies}: make at least 1 rewrite of each question per way.")
    rng = random.Random(seed)
    contexts = defaultdict(list)
    for e in examples:
        if e.context not in contexts[e.title]:
            contexts[e.title].append(e.context)
    made, counts = [], Counter()
    for way in ways:
        for copy in range(copies):
            for e in examples:
                new_id = f"{e.id}-{way}{copy}"
                out = (other(e, rng, new_id, contexts[e.title]) if way == "other"
                       else (reorder if way == "reorder" else drop)(e, rng, new_id))
                if isinstance(out, str):
                    counts[f"{way}_skipped_{out}"] += 1
                else:
                    counts[f"{way}_made"] += 1
                    made.append(out)
    return made, counts


def to_squad(examples: list[Example]) -> dict:
    """SQuAD v2.0 JSON: articles by title, paragraphs by context, in first-seen order."""
    articles: dict[str, dict[str, list]] = {}
    for e in examples:
        qa = {"id": e.id, "question": e.question, "answers": e.answers, "is_impossible": e.is_impossible}
        articles.setdefault(e.title, {}).setdefault(e.context, []).append(qa)
    return {"version": "v2.0", "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in pars.items()]}
        for title, pars in articles.items()]}


def write_augmented(train: str, out, ways=WAYS, copies: int = 1, seed: int = 0) -> tuple[Path, Counter]:
    """Read `train`, write its rewrites to `out` (SQuAD v2.0 JSON) and return the path and the counts."""
    from .data import load_squad
    examples, report = load_squad(train)
    print(report)
    made, counts = augment(examples, ways, copies, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_squad(made), ensure_ascii=False), encoding="utf-8")
    print(f"{len(examples)} questions -> {len(made)} rewrites in {out}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return out, counts
