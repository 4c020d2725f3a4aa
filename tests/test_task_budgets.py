"""Multi-task budgets and balance (kit.tasks, kit.task_metrics, kit.multitask): class weights, balanced accuracy,
the updates each task gets, and the budget that gives one task a chosen number of them."""
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from kit.features import Features
from kit.multitask import MultiTaskLoss
from kit.task_metrics import balanced_accuracy
from kit.task_windows import LabelledWindows
from kit.tasks import (MultiTaskData, Task, TaskSampler, balanced_class_weights, drawn_tasks, replay_updates,
                       updates_for)


def windows(n: int, label=0) -> LabelledWindows:
    return LabelledWindows([[0, 5, 2]] * n, [label] * n, list(range(n)))


def qa_windows(n: int) -> Features:
    return Features([[0, 5, 2]] * n, [0] * n, [0] * n, [0] * n, [None] * n)


def test_balanced_class_weights_give_every_class_the_same_total_weight():
    labels = [1] * 17 + [0] * 3                       # 85% "yes", as the demo's answerability windows
    w = balanced_class_weights(labels, 2)
    assert w == pytest.approx([20 / (2 * 3), 20 / (2 * 17)])
    assert 3 * w[0] == pytest.approx(17 * w[1]) == pytest.approx(10.0)
    assert balanced_class_weights([0, 0, 2], 3) == pytest.approx([3 / 4, 0.0, 3 / 2])   # class 1 absent: weight 0


def test_balanced_accuracy_on_a_hand_made_case():
    gold = [True] * 8 + [False] * 2
    assert balanced_accuracy([True] * 10, gold) == 0.5                 # the majority class: 1 and 0
    assert balanced_accuracy(gold, gold) == 1.0
    # 6 of 8 answerable right (0.75), 1 of 2 unanswerable right (0.5): mean 0.625 (plain accuracy: 0.7)
    predicted = [True] * 6 + [False] * 2 + [False, True]
    assert balanced_accuracy(predicted, gold) == pytest.approx(0.625)
    with pytest.raises(ValueError):
        balanced_accuracy([], [])


def test_class_weights_enter_the_cross_entropy():
    task = Task("answerability", "sequence", windows(4), ["no", "yes"], class_weights=[3.0, 1.0])

    class Head(torch.nn.Module):
        def forward(self, task, **inputs):
            return torch.tensor([[0.2, 0.1], [0.0, 1.0], [1.0, 0.0], [0.3, 0.3]])

    labels = torch.tensor([0, 1, 1, 0])
    loss, terms = MultiTaskLoss([task])(Head(), {"task": "answerability", "input_ids": torch.zeros(4, 3),
                                                 "labels": labels})
    logits = Head()(task="")
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([3.0, 1.0]))
    assert loss.item() == pytest.approx(expected.item())
    assert loss.item() != pytest.approx(F.cross_entropy(logits, labels).item())
    with pytest.raises(ValueError, match="class weights"):
        Task("answerability", "sequence", windows(4), ["no", "yes"], class_weights=[1.0])


def three_task_data(strategy: str, temperature: float = 2.0) -> MultiTaskData:
    tasks = [Task("qa", "qa", qa_windows(400)), Task("answerability", "sequence", windows(400), ["no", "yes"]),
             Task("entities", "sequence", windows(100), ["O", "B"])]
    return MultiTaskData(tasks, TaskSampler.for_tasks(tasks, strategy, temperature))


def test_drawn_tasks_follow_the_sampler_and_round_robin_is_exact():
    rr = Counter(drawn_tasks(three_task_data("round_robin"), 90, batch_size=4, seed=0))
    assert rr == {"qa": 30, "answerability": 30, "entities": 30}
    data = three_task_data("proportional")                  # shares 4/9, 4/9, 1/9
    drawn = drawn_tasks(data, 9000, batch_size=4, seed=0)
    assert len(drawn) == 9000 and drawn == drawn_tasks(data, 9000, batch_size=4, seed=0)
    counts = Counter(drawn)
    assert counts["entities"] / 9000 == pytest.approx(1 / 9, abs=0.015)
    assert counts["qa"] / 9000 == pytest.approx(4 / 9, abs=0.015)
    # the first updates of a longer run are those of a shorter one (the plan does not depend on the budget)
    assert drawn_tasks(data, 50, batch_size=4, seed=0) == drawn[:50]


def test_updates_for_gives_the_task_exactly_its_count():
    rr = three_task_data("round_robin")
    assert updates_for(rr, "qa", 10, batch_size=4, seed=0) == 28            # qa at steps 1, 4, ..., 28
    assert updates_for(rr, "entities", 10, batch_size=4, seed=0) == 30
    data = three_task_data("temperature")
    total = updates_for(data, "qa", 25, batch_size=4, seed=1)
    drawn = drawn_tasks(data, total, batch_size=4, seed=1)
    assert drawn.count("qa") == 25 and drawn[-1] == "qa"
    assert updates_for(data, "qa", 0, batch_size=4, seed=1) == 0


def test_replay_updates_matches_the_run_it_replays():
    data = three_task_data("temperature")
    counts = Counter(drawn_tasks(data, 70, batch_size=4, seed=2))
    assert replay_updates({"qa": 400, "answerability": 400, "entities": 100}, "temperature", 2.0, 70, 4, 2) == counts
    assert replay_updates({"a": 10, "b": 10}, "round_robin", 2.0, 7, 4, 0) == {"a": 4, "b": 3}
