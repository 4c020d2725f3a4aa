import pytest

from kit.data import DataError, load_squad
from conftest import shared_file, squad

CTX = "Ana Morales nació en Sevilla en 1954."


def qa(qid="q1", text="Sevilla", start=21, **kw):
    return {"id": qid, "question": "¿Dónde nació Ana?", "answers": [{"text": text, "answer_start": start}], **kw}


def test_a_good_file_loads(write_json):
    examples, report = load_squad(write_json(squad(CTX, [qa()])))
    assert len(examples) == 1 and examples[0].answers == [{"text": "Sevilla", "answer_start": 21}]
    assert report.counts["questions"] == 1


@pytest.mark.parametrize("obj, words", [
    ("{not json", ["bad.json", "not valid JSON", "line 1"]),
    ([1, 2], ["bad.json", "not a SQuAD file", "'data'"]),
    ({"data": [{"title": "A"}]}, ["bad.json", "article 0", "'paragraphs'"]),
    ({"data": [{"title": "A", "paragraphs": [{"qas": []}]}]}, ["article 0 ('A')", "paragraph 0", "'context'"]),
    (squad(CTX, [{"id": "q1", "answers": []}]), ["question id q1", "'question'"]),
    (squad(CTX, [{"id": "q1", "question": "¿?"}]), ["question id q1", "'answers'"]),
    (squad(CTX, [qa(start="21")]), ["question id q1", "answer 0", "'answer_start'", "int"]),
    (squad(CTX, [qa(), qa()]), ["q1", "appears twice", "unique"]),
    (squad(CTX, [qa(is_impossible="no")]), ["q1", "'is_impossible'", "true or false"]),
    ({"data": []}, ["no usable questions"]),
])
def test_bad_structure_is_a_clear_error(write_json, obj, words):
    with pytest.raises(DataError) as e:
        load_squad(write_json(obj))
    for w in words:
        assert w in str(e.value)


def test_non_utf8_and_missing_file(write_json, tmp_path):
    with pytest.raises(DataError, match="not UTF-8"):
        load_squad(write_json('{"data": "Espa\xf1a"}'.encode("latin-1")))
    with pytest.raises(DataError, match="no such file"):
        load_squad(tmp_path / "nope.json")


def test_repairs_are_made_and_counted(write_json):
    ctx = "\ufeff" + CTX + " Luis nació en Quito."
    qas = [qa("ok", start=22),                                             # right once the BOM goes
           {**qa("mixed"), "answers": [{"text": "", "answer_start": -1},   # failed translation
                                       {"text": "Sevilla", "answer_start": 5}]},  # misaligned: repaired
           qa("gone", text="Lima", start=3),                               # not in the context at all
           {**qa("empty"), "answers": [{"text": "", "answer_start": -1}]}]
    examples, report = load_squad(write_json(squad(ctx, qas)))
    c = report.counts
    assert c["byte_order_marks_stripped"] == 1
    assert c["empty_answers_dropped"] == 2
    assert c["misaligned_answers_repaired"] == 1
    assert c["answers_not_in_context_dropped"] == 1
    assert c["questions_without_usable_answer_skipped"] == 2
    assert [e.id for e in examples] == ["ok", "mixed"]
    for e in examples:
        a = e.answers[0]
        assert e.context[a["answer_start"]:a["answer_start"] + len(a["text"])] == "Sevilla"
        assert not e.context.startswith("\ufeff")


def test_v2_unanswerable_kept_with_no_answers(write_json):
    examples, report = load_squad(write_json(squad(CTX, [{"id": "u", "question": "¿Cuándo murió?",
                                                           "answers": [], "is_impossible": True}])))
    assert examples[0].is_impossible and examples[0].answers == []
    assert report.counts["unanswerable"] == 1


def test_real_squad_es_defects_are_counted():
    examples, report = load_squad(shared_file("train-v1.1.json"))
    c = report.counts
    assert c["empty_answers_dropped"] == 2419          # the README's count of failed translations
    assert c["byte_order_marks_stripped"] >= 1
    assert c["questions"] == 3940
    for e in examples:
        for a in e.answers:
            assert e.context[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]


def test_a_typo_is_not_mistaken_silently_for_a_hub_id(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no datasets")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_datasets)
    from kit.optional import MissingPackage   # a clear message (exit 2 from the CLI), with the path first
    with pytest.raises(MissingPackage, match="data/trian: not a file, not a URL.*check the path.*\\[hub\\]"):
        load_squad("data/trian")


def test_hub_rows_keep_unanswerable_questions():
    from kit.data import _flat_rows_to_squad, validate_squad
    rows = [{"id": "a", "title": "t", "context": CTX, "question": "¿Dónde nació Ana?",
             "answers": {"text": ["Sevilla"], "answer_start": [21]}},
            {"id": "u", "title": "t", "context": CTX, "question": "¿Cuándo murió Ana?",
             "answers": {"text": [], "answer_start": []}}]
    examples, report = validate_squad(_flat_rows_to_squad(rows), "hub-id")
    assert [(e.id, e.is_impossible) for e in examples] == [("a", False), ("u", True)]
    assert report.counts["questions_without_usable_answer_skipped"] == 0


def test_answer_offsets_past_the_context_are_repaired_or_dropped_and_counted(write_json):
    ctx = "Ana nació en Sevilla. Luis nació en Quito."
    qas = [{"id": "far", "question": "¿Dónde nació Luis?", "answers": [{"text": "Quito", "answer_start": 999}]},
           {"id": "nowhere", "question": "¿Dónde nació Eva?", "answers": [{"text": "Lima", "answer_start": 999}]}]
    examples, report = load_squad(write_json(squad(ctx, qas)))
    assert report.counts["misaligned_answers_repaired"] == 1 and report.counts["answers_not_in_context_dropped"] == 1
    assert [(e.id, e.answers[0]["answer_start"]) for e in examples] == [("far", ctx.index("Quito"))]


def test_articles_slice_splits_one_file_without_overlap(write_json):
    raw = {"version": "1.1", "data": [
        {"title": f"A{i}", "paragraphs": [{"context": f"Texto {i}.", "qas": [
            {"id": f"q{i}", "question": "¿Qué?", "answers": [{"text": f"Texto {i}", "answer_start": 0}]}]}]}
        for i in range(5)]}
    path = write_json(raw, "five.json")
    train, _ = load_squad(f"{path}#articles=:3")
    held, report = load_squad(f"{path}#articles=3:")
    assert [e.title for e in train] == ["A0", "A1", "A2"] and [e.title for e in held] == ["A3", "A4"]
    assert "five.json#articles=3:" in report.source
    with pytest.raises(DataError, match="not a slice"):
        load_squad(f"{path}#articles=x")
