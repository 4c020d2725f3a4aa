import json

import pytest

import mlqa_eval

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
    ref = mlqa_eval.evaluate(raw, preds)
    em, f, n = ref["exact_match"], ref["f1"], ref["n"]
    assert ours["n"] == n == 2643
    assert ours["exact_match"] == pytest.approx(em, abs=1e-3)
    assert ours["f1"] == pytest.approx(f, abs=1e-3)


def test_english_normalisation_is_squad_v11s():
    # ASCII punctuation only (« » ¿ stay), the English articles a/an/the, Spanish ones kept
    assert normalize_answer("The «Río» Ebro, a river!", "en") == "«río» ebro river"
    assert normalize_answer("¿El Río?", "en") == "¿el río"
    assert normalize_answer("¿El Río?") == "río"
    assert exact_match("el año 1492", "año 1492.", "en") == 0.0 and exact_match("el año 1492", "año 1492.") == 1.0
    assert f1("el año 1492", "año 1492", "en") == pytest.approx(0.8)
    s = squad_scores([_ex("a", ["la casa"])], {"a": "casa"}, language="en")
    assert (s["exact_match"], s["f1"]) == (0.0, pytest.approx(200 / 3))


def test_kit_evaluate_scores_the_papers_way_on_request(tiny, tmp_path):
    """--protocol paper: the file's first 200 questions, English normalisation, one best span; the default: all."""
    import json, subprocess, sys
    from pathlib import Path
    from conftest import tiny_squad
    data = tiny_squad()
    paragraphs = data["data"][0]["paragraphs"]
    data["data"][0]["paragraphs"] = [{"context": p["context"], "qas": [{**q, "id": f"{q['id']}-{k}"} for q in p["qas"]]}
                                     for k in range(26) for p in paragraphs]          # 208 questions
    path = tmp_path / "many.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    root = Path(__file__).resolve().parents[1]
    runs = {}
    for protocol in ("kit", "paper"):
        r = subprocess.run([sys.executable, "-m", "kit", "evaluate", "--model", str(tiny[4]), "--data", str(path),
                            "--max-length", "64", "--stride", "16", "--protocol", protocol],
                           capture_output=True, text=True, cwd=root)
        assert r.returncode == 0, r.stderr
        runs[protocol] = json.loads(r.stdout.strip().splitlines()[-1])
    assert runs["kit"]["n"] == 208 and "protocol" not in runs["kit"]
    assert runs["paper"]["n"] == 200 and runs["paper"]["protocol"] == "paper"
