"""Baselines that need no training: they show how hard a data set is.

`first_entity_answers` answers each question with the first entity in the context whose label is
the label of the gold answer: it knows the answer's type (a generous hint) but does not read the
question. On data where a context mentions one city and one year, it would score near 100; on the
kit's generated data, where several people and places share a paragraph, it should score far lower.
It needs the generated data's `entities` annotations.
"""
from __future__ import annotations


def _label_of(span_start: int, text: str, entities: list[dict]) -> str | None:
    for ent in entities:
        if ent["start"] == span_start and ent["text"] == text:
            return ent["label"]
    return None


def first_entity_answers(examples) -> dict[str, str]:
    predictions = {}
    for ex in examples:
        entities = sorted(ex.extra.get("entities", []), key=lambda e: e["start"])
        if ex.is_impossible or not ex.answers or not entities:
            predictions[ex.id] = ""
            continue
        label = _label_of(ex.answers[0]["answer_start"], ex.answers[0]["text"], entities)
        first = next((e for e in entities if e["label"] == label), None)
        predictions[ex.id] = first["text"] if first else ""
    return predictions
