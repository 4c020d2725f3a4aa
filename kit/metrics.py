"""SQuAD-style exact match and F1 with the Spanish answer normalisation of MLQA's official script.

normalize("¡El Río Ebro!") == "río ebro": lower-case, remove every Unicode punctuation character
(category P*) and ASCII punctuation, remove the Spanish articles el/la/los/las/un/una/unos/unas,
collapse whitespace. The paper scored with SQuAD's English normalisation (which strips a/an/the)
on the first 200 dev questions only; the kit always scores whole sets.

Conventions (the same as `kit.data` applies when loading):
  * a question scores the max over its gold answers; empty gold answers were dropped at load time;
  * an unanswerable (v2) question scores 1 for the prediction "" and 0 otherwise;
  * a question id missing from the predictions counts as answered "" (so it scores 0 if answerable).
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter

PUNCTUATION = {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}
PUNCTUATION |= set(string.punctuation)
SPANISH_ARTICLES = re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b")


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in PUNCTUATION)
    text = SPANISH_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_question(prediction: str, golds: list[str], is_impossible: bool) -> tuple[float, float]:
    """(exact match, F1) of one question, each 0..1."""
    if is_impossible:
        hit = float(prediction == "")
        return hit, hit
    return (max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds))


def squad_scores(examples, predictions: dict[str, str]) -> dict:
    """EM/F1 (0–100) over all `examples` (kit.data.Example), with the HasAns/NoAns split for v2."""
    em, f, has, no = [], [], [], []
    for ex in examples:
        golds = [a["text"] for a in ex.answers]
        e_, f_ = score_question(predictions.get(ex.id, ""), golds, ex.is_impossible)
        em.append(e_)
        f.append(f_)
        (no if ex.is_impossible else has).append((e_, f_))
    pct = lambda xs: round(100.0 * sum(xs) / len(xs), 4) if xs else None
    out = {"exact_match": pct(em), "f1": pct(f), "n": len(examples)}
    if no:  # v2 data: say how each half does, a single number hides "always answers ''"
        out.update(has_ans_exact_match=pct([x[0] for x in has]), has_ans_f1=pct([x[1] for x in has]),
                   no_ans_exact_match=pct([x[0] for x in no]), no_ans_f1=pct([x[1] for x in no]),
                   has_ans_n=len(has), no_ans_n=len(no))
    return out
