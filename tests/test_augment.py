"""kit.augment: rewritten contexts keep each answer's text at its new offset, skips are counted by reason, and the
file it writes is valid SQuAD that the teacher-outputs and distill commands read as unlabelled windows."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kit.augment import augment, drop, other, reorder, sentence_spans, to_squad
from kit.data import Example, load_squad

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "Ana Ruiz nació en Lima en 1950. Estudió en Quito. ¿Por qué allí? Su padre vivía en «Quito» desde 1940."


def _example(answer="Quito", start=None, context=CONTEXT, qid="q1", title="Ana Ruiz"):
    start = context.index(answer) if start is None else start
    return Example(qid, title, "¿Dónde estudió Ana Ruiz?", context, [{"text": answer, "answer_start": start}])


def test_sentences_split_at_end_marks_before_a_new_sentence():
    spans = sentence_spans(CONTEXT)
    assert [CONTEXT[a:b] for a, b in spans] == ["Ana Ruiz nació en Lima en 1950.", "Estudió en Quito.",
                                                "¿Por qué allí?", "Su padre vivía en «Quito» desde 1940."]
    assert sentence_spans("1.5 kilos. y nada más") == [(0, len("1.5 kilos. y nada más"))]   # no capital: one sentence


def test_reorder_moves_the_answer_with_its_sentence():
    for seed in range(5):
        new = reorder(_example(), random.Random(seed), "q1-r")
        assert sorted(new.context.split(" ")) == sorted(CONTEXT.split(" ")) and new.context != CONTEXT
        ans = new.answers[0]
        assert new.context[ans["answer_start"]:ans["answer_start"] + 5] == "Quito"
        # the sentence around it is the one it came from (the first Quito, not the one in «»)
        assert new.context[ans["answer_start"] - 11:ans["answer_start"] + 6] == "Estudió en Quito."
    assert reorder(_example(context="Estudió en Quito."), random.Random(0), "x") == "one_sentence"
    crossing = _example(answer="1950. Estudió")
    assert reorder(crossing, random.Random(0), "x") == "answer_crosses_sentences"


def test_drop_keeps_the_answers_sentence_and_leaves_some_out():
    for seed in range(5):
        new = drop(_example(), random.Random(seed), "q1-d")
        assert len(new.context) < len(CONTEXT) and "Estudió en Quito." in new.context
        kept = [CONTEXT[a:b] for a, b in sentence_spans(CONTEXT) if CONTEXT[a:b] in new.context]
        assert new.context == " ".join(kept)                  # the rest, in their order
        start = new.answers[0]["answer_start"]
        assert new.context[start:start + 5] == "Quito"
    only = _example(context="Estudió en Quito.")
    assert drop(only, random.Random(0), "x") == "no_sentence_to_drop"


def test_other_pairs_the_question_with_another_paragraph_as_unanswerable():
    mine, theirs, giveaway = CONTEXT, "Su hermano vive en Cuenca. Es médico.", "Vivió años en Quito."
    new = other(_example(), random.Random(0), "q1-o", [mine, theirs])
    assert (new.context, new.answers, new.is_impossible) == (theirs, [], True)
    assert other(_example(), random.Random(0), "x", [mine]) == "no_other_paragraph"
    assert other(_example(), random.Random(0), "x", [mine, giveaway]) == "other_paragraph_holds_the_answer_text"


def test_every_question_is_made_or_counted_and_the_file_loads_back(tmp_path):
    lone = _example(context="Estudió en Quito.", qid="q2", title="Solo")   # one sentence, alone in its article
    examples = [_example(), _example(context="Su hermano vive en Cuenca. Es médico.", answer="Cuenca", qid="q3"),
                lone]
    made, counts = augment(examples, copies=2, seed=3)
    assert sum(counts.values()) == len(examples) * 3 * 2      # 3 ways, 2 copies: each question made or skipped
    assert counts["reorder_skipped_one_sentence"] == counts["drop_skipped_no_sentence_to_drop"] == 2
    assert counts["other_skipped_no_other_paragraph"] == 2
    assert len(made) == counts["reorder_made"] + counts["drop_made"] + counts["other_made"] == 12
    assert made == augment(examples, copies=2, seed=3)[0]      # a seed gives the same file
    path = tmp_path / "aug.json"
    path.write_text(json.dumps(to_squad(made), ensure_ascii=False), encoding="utf-8")
    loaded, report = load_squad(str(path))
    assert {e.id: (e.context, e.answers, e.is_impossible) for e in loaded} == \
        {e.id: (e.context, e.answers, e.is_impossible) for e in made}
    assert report.counts["unanswerable"] == counts["other_made"]
    with pytest.raises(ValueError, match="choose among reorder, drop, other"):
        augment(examples, ways=("shuffle",))


def test_the_command_writes_a_file_that_teacher_outputs_reads_as_unlabelled(tmp_path, tiny):
    from kit.losses import UNLABELLED
    from kit.teacher_outputs import teacher_windows
    train, out = str(tiny[0]), tmp_path / "aug.json"
    run = subprocess.run([sys.executable, "-m", "kit", "augment", "--train", train, "--out", str(out),
                          "--ways", "reorder,other"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "rewrites in" in run.stdout and "reorder_made" in run.stdout
    made, _ = load_squad(str(out))
    tok = tiny[2]
    labelled = teacher_windows(train, tok, 64, 16)
    both = teacher_windows(train, tok, 64, 16, unlabelled=str(out))
    extra = both.start_positions[len(labelled):]
    assert len(extra) >= len(made) and set(extra) == {UNLABELLED}
