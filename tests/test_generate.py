"""The generated Spanish data: reproducible, exact spans, v2 questions, and not solvable without reading."""
from collections import defaultdict
from pathlib import Path

import pytest

from kit.generate import generate_default, generate_split, write_default_data

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
LABELS = {"PER", "LOC", "ORG", "DATE", "NUM", "MISC"}
QUESTION_TYPES = {"quien", "cuando", "donde", "cuanto", "que", "cual"}


@pytest.fixture(scope="module")
def default():
    return generate_default(seed=0)


def paragraphs(squad):
    return [p for article in squad["data"] for p in article["paragraphs"]]


def questions(squad):
    return [qa for p in paragraphs(squad) for qa in p["qas"]]


def label_of_answer(paragraph, answer):
    """The label of the entity span that is the gold answer (every answer is one)."""
    labels = [e["label"] for e in paragraph["entities"]
              if e["start"] == answer["answer_start"] and e["text"] == answer["text"]]
    assert len(labels) == 1, (paragraph["context"], answer)
    return labels[0]


def test_same_seed_same_data_and_another_seed_other_data():
    assert generate_split(120, seed=5, split="train") == generate_split(120, seed=5, split="train")
    assert generate_split(120, seed=5, split="train") != generate_split(120, seed=6, split="train")
    # The split name is part of the seed: splits of one seed are different data.
    assert paragraphs(generate_split(50, 5, "train"))[0] != paragraphs(generate_split(50, 5, "test"))[0]


def test_format_and_sizes(default):
    assert set(default) == {"train", "validation", "test"}
    for split, want in {"train": 3000, "validation": 400, "test": 600}.items():
        squad = default[split]
        assert squad["version"] == "kit-es-synth-1"
        assert abs(len(questions(squad)) - want) <= 5
        for article in squad["data"]:
            assert article["title"] and 1 <= len(article["paragraphs"]) <= 5
        for qa in questions(squad):
            assert set(qa) == {"id", "question", "answers", "is_impossible", "relation", "question_type"}
            assert qa["question"].startswith("¿") and qa["question"].endswith("?")
            assert qa["question_type"] in QUESTION_TYPES and qa["relation"]
            assert qa["is_impossible"] == (qa["answers"] == [])


def test_every_answer_and_entity_span_matches_the_context(default):
    for squad in default.values():
        for p in paragraphs(squad):
            context, entities = p["context"], p["entities"]
            assert 60 <= len(context.split()) <= 150
            end = 0
            for e in entities:        # exact, in order, never overlapping
                assert e["label"] in LABELS
                assert context[e["start"]:e["start"] + len(e["text"])] == e["text"]
                assert e["start"] >= end
                end = e["start"] + len(e["text"])
            for qa in p["qas"]:
                for a in qa["answers"]:
                    assert context[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]
                    assert a["text"] in context
                    label_of_answer(p, a)


def test_ids_are_unique_across_splits(default):
    ids = [qa["id"] for squad in default.values() for qa in questions(squad)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("fraction", [0.15, 0.3])
def test_unanswerable_fraction_is_the_requested_one(fraction):
    qas = questions(generate_split(400, seed=3, split="x", impossible_fraction=fraction))
    assert abs(sum(qa["is_impossible"] for qa in qas) / len(qas) - fraction) < 0.03


def test_default_unanswerable_fraction(default):
    for squad in default.values():
        qas = questions(squad)
        assert abs(sum(qa["is_impossible"] for qa in qas) / len(qas) - 0.15) < 0.03


def test_no_evaluation_context_appears_in_train(default):
    train = {p["context"] for p in paragraphs(default["train"])}
    for split in ("validation", "test"):
        assert not train & {p["context"] for p in paragraphs(default[split])}


def test_questions_are_phrased_several_ways(default):
    openings = defaultdict(set)     # relation -> first two words of its questions
    for qa in questions(default["train"]):
        openings[qa["relation"]].add(" ".join(qa["question"].split()[:2]))
    assert len(openings) >= 10
    for relation, seen in openings.items():
        assert len(seen) >= 3, (relation, seen)


def test_first_entity_of_the_right_type_is_a_weak_baseline(default):
    """Knowing the answer's label and taking the first such entity must not solve the data: each
    paragraph holds several entities of each type, so the question has to be read."""
    for split, squad in default.items():
        right = total = 0
        for p in paragraphs(squad):
            for qa in p["qas"]:
                if qa["is_impossible"]:
                    continue
                gold = qa["answers"][0]
                label = label_of_answer(p, gold)
                first = next(e for e in p["entities"] if e["label"] == label)
                right += first["text"] == gold["text"]
                total += 1
        assert right / total < 0.45, (split, right / total)


def test_committed_data_is_what_the_generator_writes(tmp_path):
    written = write_default_data(tmp_path, seed=0)
    assert set(written) == {"train", "validation", "test"}
    for split, path in written.items():
        committed = DATA_DIR / f"{split}.json"
        assert committed.exists(), f"{committed} is missing: run `python -m kit.generate --out data`"
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: regenerate it"
