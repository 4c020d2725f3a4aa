"""SQuAD-format data: load from a file, a URL or a hub id, validate, and repair what can be repaired.

Real data is dirty. SQuAD-es, for instance, has gold answers whose machine translation failed
(text "" and answer_start -1), a context that starts with a U+FEFF byte-order mark, and answers
whose offset no longer points at their text. Every such defect is either
  * a `DataError` that names the file, the article/question and the field, and says how to fix it
    (structure we cannot guess: a missing field, a wrong type, a duplicate id), or
  * a counted repair, logged and returned in `LoadReport.counts` (dropped empty answers, answers
    moved to the nearest occurrence of their text, stripped byte-order marks, ...).
Nothing is dropped silently.

An `Example` is one question with its context; the fields that the generated data adds
(`relation`, `question_type`, the context's `entities`) are kept in `Example.extra`.
"""
from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

BOM = "\ufeff"


class DataError(ValueError):
    """Bad input data: the message names the file, the place in it, the field and the fix."""


@dataclass
class Example:
    id: str
    title: str
    question: str
    context: str
    answers: list[dict]          # [{"text": str, "answer_start": int}], usable answers only
    is_impossible: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class LoadReport:
    source: str
    version: str
    counts: Counter                # every repair and drop, by kind

    def __str__(self):
        done = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()) if v)
        return f"{self.source} (SQuAD {self.version}): {done or 'nothing to repair'}"


# ----------------------------------------------------------------------------- reading

def read_squad_json(source: str | os.PathLike) -> tuple[dict, str]:
    """Return the raw SQuAD dict and a short name for messages. `source` is a path or an http(s) URL."""
    src = str(source)
    if src.startswith(("http://", "https://")):
        name = src.rsplit("/", 1)[-1]
        try:
            with urllib.request.urlopen(src, timeout=60) as r:
                raw = r.read()
        except OSError as e:
            raise DataError(f"{name}: could not download {src} ({e}). Check the URL and the network, "
                            f"or download the file and pass its local path.") from None
    else:
        path = Path(src)
        name = path.name
        if not path.is_file():
            raise DataError(f"{src}: no such file. Pass the path of a SQuAD-format JSON file "
                            f"(for the embedded default: data/train.json, data/validation.json, data/test.json).")
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: byte {e.start} is not UTF-8. Re-save the file as UTF-8 "
                        f"(e.g. `iconv -f latin1 -t utf-8`).") from None
    try:
        data = json.loads(text.lstrip(BOM))
    except json.JSONDecodeError as e:
        raise DataError(f"{name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}). "
                        f"A SQuAD file is one JSON object {{\"version\": ..., \"data\": [...]}}.") from None
    return data, name


def load_hub_squad(dataset_id: str, split: str, config: str | None = None) -> list[dict]:
    """Rows of a hub dataset in the flat SQuAD layout (id, title, context, question, answers).

    Needs `datasets` and the hub (Colab has both). Datasets that are loading scripts (such as
    `squad_es`) are refused by datasets 4+: use their JSON files through a URL instead.
    """
    from .optional import require   # `datasets` is imported here only: the core kit must not need it
    datasets = require("datasets", "hub", f"{dataset_id}: not a file, not a URL, so it was taken for a hub dataset "
                                          f"id (check the path if it is a file). Loading a hub dataset")
    return list(datasets.load_dataset(dataset_id, config, split=split))


def _flat_rows_to_squad(rows: list[dict]) -> dict:
    """The hub's flat rows ({answers: {text: [...], answer_start: [...]}}) → SQuAD nesting."""
    data = []
    for r in rows:
        ans = r.get("answers") or {"text": [], "answer_start": []}
        answers = [{"text": t, "answer_start": s} for t, s in zip(ans["text"], ans["answer_start"])]
        qa = {"id": r["id"], "question": r["question"], "answers": answers,
              "is_impossible": r.get("is_impossible", len(answers) == 0)}  # v2 rows mark it by no answers
        data.append({"title": r.get("title", ""), "paragraphs": [{"context": r["context"], "qas": [qa]}]})
    return {"version": "hub", "data": data}


# ----------------------------------------------------------------------------- validation

def _require(obj, key, typ, where, name):
    if not isinstance(obj, dict):
        raise DataError(f"{name}: {where} should be a JSON object, found {type(obj).__name__}. "
                        f"SQuAD nests data → paragraphs → qas → answers.")
    if key not in obj:
        raise DataError(f"{name}: {where} has no field '{key}'. Add it (SQuAD format: "
                        f"data[].title, data[].paragraphs[].context/qas, qas[].id/question/answers).")
    value = obj[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise DataError(f"{name}: {where} field '{key}' should be {want}, found "
                        f"{type(value).__name__} ({str(value)[:40]!r}). Fix that value in the file.")
    return value


def _nearest_occurrence(context: str, text: str, start: int) -> int | None:
    """Start of the occurrence of `text` in `context` closest to `start`, or None."""
    best, i = None, context.find(text)
    while i != -1:
        if best is None or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1)
    return best


def _usable_answers(answers: list, context: str, boms: list[int], q_where: str, name: str,
                    counts: Counter) -> list[dict]:
    """The answers of one question that point into `context` (its byte-order marks, at `boms`, already
    stripped): empty ones dropped, offsets moved past the stripped marks, misaligned ones moved to the
    nearest occurrence of their text, or dropped when the text is not in the context. Counts each repair."""
    usable = []
    for n_i, ans in enumerate(answers):
        a_at = f"{q_where}, answer {n_i}"
        text = _require(ans, "text", str, a_at, name)
        start = _require(ans, "answer_start", int, a_at, name)
        if not text.strip() or start < 0:
            counts["empty_answers_dropped"] += 1  # failed translations in SQuAD-es
            continue
        start -= sum(1 for b in boms if b < start)
        if BOM in text:
            counts["answer_byte_order_marks_stripped"] += text.count(BOM)
            text = text.replace(BOM, "")
        if context[start:start + len(text)] != text:
            moved = _nearest_occurrence(context, text, start)
            if moved is None:
                counts["answers_not_in_context_dropped"] += 1
                continue
            counts["misaligned_answers_repaired"] += 1
            start = moved
        usable.append({"text": text, "answer_start": start})
    return usable


def validate_squad(raw: dict, name: str) -> tuple[list[Example], LoadReport]:
    """Check the structure of a SQuAD dict, repair what is safe to repair, count everything."""
    if not isinstance(raw, dict) or "data" not in raw:
        raise DataError(f"{name}: not a SQuAD file: expected a JSON object with a 'data' list "
                        f"(found {type(raw).__name__}{' with keys ' + str(list(raw)[:5]) if isinstance(raw, dict) else ''}).")
    articles = _require(raw, "data", list, "the top level", name)
    version = str(raw.get("version", "?"))
    counts: Counter = Counter()
    examples, seen_ids = [], {}
    for a_i, article in enumerate(articles):
        title = article.get("title", f"#{a_i}") if isinstance(article, dict) else f"#{a_i}"
        a_where = f"article {a_i} ('{title}')"
        paragraphs = _require(article, "paragraphs", list, a_where, name)
        for p_i, par in enumerate(paragraphs):
            p_where = f"{a_where}, paragraph {p_i}"
            context = _require(par, "context", str, p_where, name)
            qas = _require(par, "qas", list, p_where, name)
            # A byte-order mark inside a context shifts every offset after it: strip it and move them.
            boms = [i for i, ch in enumerate(context) if ch == BOM]
            if boms:
                counts["byte_order_marks_stripped"] += len(boms)
                context = context.replace(BOM, "")
            for q_i, qa in enumerate(qas):
                q_where = f"{p_where}, question {q_i}"
                qid = str(_require(qa, "id", (str, int), q_where, name))
                q_where = f"{p_where}, question id {qid}"
                question = _require(qa, "question", str, q_where, name).strip()
                answers = _require(qa, "answers", list, q_where, name)
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise DataError(f"{name}: {q_where} field 'is_impossible' should be true or false, "
                                    f"found {impossible!r}. Fix that value in the file.")
                if qid in seen_ids:
                    raise DataError(f"{name}: question id {qid} appears twice ({seen_ids[qid]} and {q_where}). "
                                    f"Question ids must be unique: rename or remove one.")
                seen_ids[qid] = q_where
                if not question:
                    raise DataError(f"{name}: {q_where} field 'question' is empty. Write the question or remove the entry.")
                usable = _usable_answers(answers, context, boms, q_where, name, counts)
                if impossible and usable:
                    counts["impossible_answers_ignored"] += len(usable)  # v2 keeps plausible answers; not gold
                    usable = []
                if not impossible and not usable:
                    counts["questions_without_usable_answer_skipped"] += 1
                    continue
                extra = {k: qa[k] for k in ("relation", "question_type") if k in qa}
                if "entities" in par:
                    extra["entities"] = par["entities"]
                examples.append(Example(qid, str(title), question, context, usable, impossible, extra))
    if not examples:
        raise DataError(f"{name}: the file has no usable questions (articles: {len(articles)}). "
                        f"Check that it is the right file and that 'data' holds articles with 'qas'.")
    counts["questions"] = len(examples)
    counts["unanswerable"] = sum(e.is_impossible for e in examples)
    report = LoadReport(name, version, counts)
    log.info("loaded %s", report)
    return examples, report


def load_squad(source: str | os.PathLike, split: str = "validation", config: str | None = None
               ) -> tuple[list[Example], LoadReport]:
    """Load and validate SQuAD data from a local JSON path, an http(s) URL, or a hub dataset id.

    A hub id is anything that is neither an existing path nor a URL and has no `.json` suffix,
    e.g. `rajpurkar/squad_v2` (then `split` and `config` choose the part to load).
    A file or URL may end in `#articles=START:STOP`, a Python slice of its articles: `train.json#articles=:31`
    and `train.json#articles=31:` split one file into training and validation articles, so that no
    article is on both sides and the test file is never used to choose a checkpoint.
    """
    src, articles = str(source), None
    if "#articles=" in src:
        src, spec = src.split("#articles=", 1)
        try:
            articles = slice(*[int(x) if x.strip() else None for x in spec.split(":")])
        except ValueError:
            raise DataError(f"{Path(src).name}: '#articles={spec}' is not a slice; write e.g. '#articles=:31' or "
                            f"'#articles=31:'.") from None
    is_hub = (not src.startswith(("http://", "https://")) and not src.endswith(".json")
              and not Path(src).exists())
    if is_hub:
        return validate_squad(_flat_rows_to_squad(load_hub_squad(src, split, config)), src)
    raw, name = read_squad_json(src)
    if articles is not None and isinstance(raw, dict) and isinstance(raw.get("data"), list):
        raw = {**raw, "data": raw["data"][articles]}
        name = f"{name}#articles={spec}"
    return validate_squad(raw, name)
