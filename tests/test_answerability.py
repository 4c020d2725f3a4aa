"""Answerability from the QA head alone (notebook 03, section 6): the null score against the best span, a threshold
chosen on validation questions only, and the counts it is judged by."""
import math
from types import SimpleNamespace

import pytest
import torch

from kit.data import Example
from kit.features import postprocess, span_and_null_scores
from kit.inference import predict_answers
from kit.task_metrics import (answerability_counts, choose_null_threshold, gold_answerable, null_margins, null_rule,
                              null_rule_answerability)

CONTEXT = "Ana nació en Sevilla."


def example(i=0, impossible=False):
    answers = [] if impossible else [{"text": "Sevilla", "answer_start": 13}]
    return Example(id=f"q{i}", title="t", question="¿Dónde?", context=CONTEXT, answers=answers, is_impossible=impossible)


def windows():
    """One question in two windows: token 0 is <s> (no offset), token 1 a question token, then context words."""
    offsets = [[None, None, (0, 3), (4, 9), (13, 20)], [None, None, (4, 9), (13, 20)]]
    return SimpleNamespace(example_index=[0, 0], offsets=offsets)


def test_null_and_best_span_on_hand_made_logits():
    start = [torch.tensor([2.0, 9.0, 1.0, 0.0, 0.5]), torch.tensor([4.0, 9.0, 0.0, 1.5])]
    end = [torch.tensor([1.0, 9.0, 0.0, 0.2, 1.5]), torch.tensor([3.0, 9.0, 0.0, 0.1])]
    # window 0: null 2 + 1 = 3; spans (start, end) over context tokens 2-4: the best is 2-4, 1.0 + 1.5 = 2.5
    # window 1: null 4 + 3 = 7; best span 3-3, 1.5 + 0.1 = 1.6. The question's null is the lowest over its
    # windows (3), its best span the highest (2.5): the question token's large logits (9) never count.
    [(text, best, null)] = span_and_null_scores([example()], windows(), start, end)
    assert (text, best, null) == ("Ana nació en Sevilla", 2.5, 3.0)
    # postprocess answers "" when null - best = 0.5 is above the threshold, the span otherwise
    assert postprocess([example()], windows(), start, end, version_2=True, null_threshold=0.4) == {"q0": ""}
    assert postprocess([example()], windows(), start, end, version_2=True, null_threshold=0.5) == {
        "q0": "Ana nació en Sevilla"}
    assert null_rule([3.0 - 2.5], 0.4) == [False] and null_rule([0.5], 0.5) == [True]


def test_the_threshold_maximises_balanced_accuracy_and_prefers_zero_on_a_tie():
    # separable: any threshold between -1 and 0.5 is perfect; the midpoint is chosen
    assert choose_null_threshold([-3.0, -1.0, 0.5, 2.0], [True, True, False, False]) == -0.25
    # candidates -2, 0, 3, 6, 8 score 0.5, 0.75, 0.5, 0.75, 0.5: the tie between 0 and 6 goes to 0
    assert choose_null_threshold([-1.0, 1.0, 5.0, 7.0], [True, False, True, False]) == 0.0
    # a question with no valid span (margin +inf) is always called unanswerable and never becomes a candidate
    assert choose_null_threshold([-1.0, 1.0, math.inf], [True, False, False]) == 0.0
    with pytest.raises(ValueError, match="both answerable and unanswerable"):
        choose_null_threshold([-1.0, 1.0], [True, True])


def test_the_threshold_is_chosen_on_validation_questions_only():
    val_margins, val_gold = [-3.0, -1.0, 0.5, 2.0], [True, True, False, False]
    test_margins, test_gold = [-2.0, 0.0, 1.0, 3.0], [True, False, False, True]
    first = null_rule_answerability(val_margins, val_gold, test_margins, test_gold)
    assert first["threshold"] == -0.25
    # the test side changes what is scored, never the threshold
    flipped = null_rule_answerability(val_margins, val_gold, [m + 10 for m in test_margins], [not g for g in test_gold])
    assert flipped["threshold"] == -0.25
    # the validation side moves it
    moved = null_rule_answerability([-3.0, 1.0, 1.5, 2.0], val_gold, test_margins, test_gold)
    assert moved["threshold"] == 1.25
    # scored at -0.25 on the test questions: called answerable are -2 only; gold T, F, F, T
    assert {k: first[k] for k in ("answerable→yes", "answerable→no", "unanswerable→yes", "unanswerable→no")} == {
        "answerable→yes": 1, "answerable→no": 1, "unanswerable→yes": 0, "unanswerable→no": 2}
    assert first["balanced_accuracy"] == 0.75 and first["accuracy"] == 75.0


def test_counts_of_always_answerable():
    gold = gold_answerable([example(0), example(1, impossible=True), example(2), example(3)])
    assert gold == [True, False, True, True]
    counts = answerability_counts([True] * 4, gold)
    assert counts == {"accuracy": 75.0, "balanced_accuracy": 0.5, "says_yes": 100.0, "answerable→yes": 3,
                      "answerable→no": 0, "unanswerable→yes": 1, "unanswerable→no": 0}


def test_null_margins_agree_with_the_answers_a_model_gives(tiny):
    """On a real (untrained) model: a question gets "" from predict_answers exactly where its margin is above the
    threshold."""
    from kit.models import load_qa_model
    _, examples, tok, _, model_dir = tiny
    model = load_qa_model(model_dir)
    margins = null_margins(model, tok, examples, max_length=64, stride=16)
    threshold = sorted(margins)[len(margins) // 2]    # half the questions on each side
    answers = predict_answers(model, tok, examples, max_length=64, stride=16, version_2=True, null_threshold=threshold)
    assert [answers[e.id] == "" for e in examples] == [m > threshold for m in margins]
    assert 0 < sum(m > threshold for m in margins) < len(examples)
