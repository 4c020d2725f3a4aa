"""SQuAD-style exact match and F1 with the Spanish answer normalisation of MLQA's official script.

normalize("¡El Río Ebro!") == "río ebro": lower-case, remove every Unicode punctuation character
(category P*) and ASCII punctuation, remove the Spanish articles el/la/los/las/un/una/unos/unas,
collapse whitespace. The paper scored with SQuAD's English normalisation (which strips a/an/the)
on the first 200 dev questions only; the kit scores whole sets, and can score the paper's way too:

  PROTOCOLS["kit"]    every question, Spanish normalisation, the best of 20 × 20 start/end candidates;
  PROTOCOLS["paper"]  the file's first 200 questions, SQuAD v1.1's English normalisation (lower-case, ASCII
                      punctuation and a/an/the removed), one best span (n_best 1: the top start and the top end
                      token, no answer if they make no span of the context), as the paper's evaluation.py.

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
from dataclasses import dataclass

PUNCTUATION = {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}
PUNCTUATION |= set(string.punctuation)
SPANISH_ARTICLES = re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b")
# SQuAD v1.1's official script: ASCII punctuation only, English articles
LANGUAGES = {"es": (PUNCTUATION, SPANISH_ARTICLES),
             "en": (set(string.punctuation), re.compile(r"\b(a|an|the)\b"))}


@dataclass(frozen=True)
class Protocol:
    """How a model is scored: which questions (the first `first` of the file, or all), the normalisation's
    language, and the answer candidates (`n_best` start × end tokens per window)."""
    name: str
    first: int | None
    language: str
    n_best: int


PROTOCOLS = {"kit": Protocol("kit", None, "es", 20), "paper": Protocol("paper", 200, "en", 1)}


def normalize_answer(text: str, language: str = "es") -> str:
    punctuation, articles = LANGUAGES[language]
    text = text.lower()
    text = "".join(ch for ch in text if ch not in punctuation)
    text = articles.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str, language: str = "es") -> float:
    return float(normalize_answer(prediction, language) == normalize_answer(gold, language))


def f1(prediction: str, gold: str, language: str = "es") -> float:
    pred, ref = normalize_answer(prediction, language).split(), normalize_answer(gold, language).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_question(prediction: str, golds: list[str], is_impossible: bool, language: str = "es"
                   ) -> tuple[float, float]:
    """(exact match, F1) of one question, each 0..1."""
    if is_impossible:
        hit = float(prediction == "")
        return hit, hit
    return (max(exact_match(prediction, g, language) for g in golds), max(f1(prediction, g, language) for g in golds))


def squad_scores(examples, predictions: dict[str, str], language: str = "es") -> dict:
    """EM/F1 (0–100) over all `examples` (kit.data.Example), with the HasAns/NoAns split for v2."""
    em, f, has, no = [], [], [], []
    for ex in examples:
        golds = [a["text"] for a in ex.answers]
        e_, f_ = score_question(predictions.get(ex.id, ""), golds, ex.is_impossible, language)
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
