import json
import re
import string
import sys
import unicodedata

import pytest

from kit.data import load_squad
from kit.metrics import exact_match, f1, normalize_answer, squad_scores
from conftest import shared_file


def test_spanish_normalisation():
    assert normalize_answer("¡El Río Ebro!") == "río ebro"
    assert normalize_answer("  Los   «Reyes»   Católicos. ") == "reyes católicos"
    # articles are whole words only: "la" inside "Alameda" or "unión" stays
    assert normalize_answer("La Alameda de la Unión") == "alameda de unión"
    # English articles are NOT removed (the paper's English normalisation would remove "the")
    assert normalize_answer("The Beatles") == "the beatles"
    assert normalize_answer("¿Qué? —dijo") == "qué dijo"


def test_exact_match_and_f1_by_hand():
    assert exact_match("el año 1492", "año 1492.") == 1.0
    assert exact_match("1492", "año 1492") == 0.0
    # pred tokens {año, 1492}, gold {1492}: precision 1/2, recall 1 -> F1 2/3
    assert f1("año 1492", "1492") == pytest.approx(2 / 3)
    assert f1("Madrid", "Barcelona") == 0.0
    # repeated tokens count with multiplicity: pred [a a b], gold [a b b] -> common 2, P=R=2/3
    assert f1("x x y", "x y y") == pytest.approx(2 / 3)


def _ex(qid, golds, impossible=False):
    from kit.data import Example
    return Example(qid, "t", "q", "c", [{"text": g, "answer_start": 0} for g in golds], impossible)


def test_max_over_golds_and_v2_breakdown():
    examples = [_ex("a", ["Sevilla", "en Sevilla"]), _ex("b", ["1987"]), _ex("c", [], impossible=True),
                _ex("d", [], impossible=True)]
    preds = {"a": "en Sevilla", "b": "marzo de 1987", "c": "", "d": "Quito"}
    s = squad_scores(examples, preds)
    # a: EM 1 (second gold); b: F1 2*(1/3*1)/(1/3+1) = 0.5; c: 1; d: 0
    assert s["n"] == 4
    assert s["exact_match"] == pytest.approx(100 * 2 / 4)
    assert s["f1"] == pytest.approx(100 * (1 + 0.5 + 1 + 0) / 4)
    assert s["has_ans_f1"] == pytest.approx(75.0) and s["no_ans_f1"] == pytest.approx(50.0)
    assert s["has_ans_n"] == 2 and s["no_ans_n"] == 2


def test_missing_prediction_scores_zero():
    s = squad_scores([_ex("a", ["Lima"])], {})
    assert s["f1"] == 0.0 and s["n"] == 1


# --- an independent scorer: MLQA's official evaluation logic for lang="es", applied to the raw file ---
MLQA_PUNCT = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}.union(
    string.punctuation)


def mlqa_normalize(s):
    s = "".join(ch for ch in s.lower() if ch not in MLQA_PUNCT)
    s = re.sub(r"\b(un|una|unos|unas|el|la|los|las)\b", " ", s)
    return " ".join(t for t in s.split() if t.strip() != "")


def mlqa_f1(pred, gold):
    p, g = mlqa_normalize(pred).split(), mlqa_normalize(gold).split()
    common = {}
    for t in p:
        common[t] = min(p.count(t), g.count(t))
    same = sum(common.values())
    if same == 0:
        return 0
    pr, rc = same / len(p), same / len(g)
    return 2 * pr * rc / (pr + rc)


def mlqa_evaluate(raw, predictions):
    f = em = total = 0
    for article in raw["data"]:
        for par in article["paragraphs"]:
            for qa in par["qas"]:
                golds = [a["text"] for a in qa["answers"] if a["text"].strip() and a["answer_start"] >= 0]
                if not golds:
                    continue
                total += 1
                pred = predictions.get(qa["id"], "")
                em += max(float(mlqa_normalize(pred) == mlqa_normalize(g)) for g in golds)
                f += max(mlqa_f1(pred, g) for g in golds)
    return 100 * em / total, 100 * f / total, total


def test_kit_scores_agree_with_independent_mlqa_scorer_on_real_data():
    path = shared_file("test-v1.1.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    examples, _ = load_squad(path)
    # predictions of every kind: exact, extended, cut, wrong, missing
    preds = {}
    for i, ex in enumerate(examples):
        gold = ex.answers[-1]["text"]
        kind = i % 5
        if kind == 0:
            preds[ex.id] = gold
        elif kind == 1:
            preds[ex.id] = "en " + gold + "."
        elif kind == 2:
            preds[ex.id] = gold.split()[0]
        elif kind == 3:
            preds[ex.id] = ex.context[:20]
    ours = squad_scores(examples, preds)
    em, f, n = mlqa_evaluate(raw, preds)
    assert ours["n"] == n == 2643
    assert ours["exact_match"] == pytest.approx(em, abs=1e-3)
    assert ours["f1"] == pytest.approx(f, abs=1e-3)
