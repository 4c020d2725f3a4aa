"""Multi-task training (kit.tasks, kit.task_windows, kit.multitask, kit.task_metrics): the sampler, the heads'
gradients, saving, the task data and the loss."""
import json
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForQuestionAnswering

from conftest import squad
from kit.data import DataError, load_squad
from kit.features import make_features
from kit.models import build_qa_model, train_tokenizer
from kit.multitask import MultiTaskLoss, MultiTaskModel
from kit.task_metrics import make_evaluator
from kit.task_windows import (IGNORE, LabelledWindows, answerability_windows, collate_labelled, entity_windows,
                              question_answerable, question_type_windows)
from kit.tasks import MultiTaskData, Task, TaskSampler, make_task
from kit.train import TrainConfig, read_log, train

CONTEXT = "Ana Ruiz nació en Sevilla en 1990. La Editorial Sol tiene su sede en Quito."
ENTITIES = [{"text": "Ana Ruiz", "start": 0, "label": "PER"}, {"text": "Sevilla", "start": 18, "label": "LOC"},
            {"text": "1990", "start": 29, "label": "DATE"}, {"text": "Editorial Sol", "start": 38, "label": "ORG"},
            {"text": "Quito", "start": 69, "label": "LOC"}]


def generated_like(tmp_path):
    qas = [{"id": "a", "question": "¿Dónde nació Ana Ruiz?", "answers": [{"text": "Sevilla", "answer_start": 18}],
            "relation": "lugar_nacimiento", "question_type": "donde"},
           {"id": "b", "question": "¿Dónde tiene su sede la Editorial Sol?",
            "answers": [{"text": "Quito", "answer_start": 69}], "relation": "sede", "question_type": "donde"},
           {"id": "c", "question": "¿Quién fundó la Editorial Sol?", "answers": [], "is_impossible": True,
            "relation": "fundador", "question_type": "quien"}]
    raw = squad(CONTEXT, qas)
    raw["data"][0]["paragraphs"][0]["entities"] = ENTITIES
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(raw, ensure_ascii=False))
    examples, _ = load_squad(path)
    tok = train_tokenizer([CONTEXT] + [q["question"] for q in qas], vocab_size=300, min_frequency=1)
    return examples, tok


# ----------------------------------------------------------------------------- sampler

def test_sampler_probabilities_follow_their_definitions():
    sizes = {"a": 100, "b": 400}
    assert TaskSampler(sizes, "proportional").probabilities() == pytest.approx({"a": 0.2, "b": 0.8})
    # temperature 2: p ∝ sqrt(n) = 10 and 20
    assert TaskSampler(sizes, "temperature", 2.0).probabilities() == pytest.approx({"a": 1 / 3, "b": 2 / 3})
    assert TaskSampler(sizes, "temperature", 1.0).probabilities() == pytest.approx({"a": 0.2, "b": 0.8})
    assert TaskSampler(sizes, "round_robin").probabilities() == pytest.approx({"a": 0.5, "b": 0.5})


@pytest.mark.parametrize("strategy", ["proportional", "temperature"])
def test_sampled_task_shares_match_the_probabilities_over_many_draws(strategy):
    sampler = TaskSampler({"qa": 300, "answerability": 900, "entities": 60}, strategy, temperature=3.0)
    n = 60_000
    counts = Counter(sampler.schedule(n, seed=1))
    for task, p in sampler.probabilities().items():
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(counts[task] / n - p) < 5 * sd, (task, counts[task] / n, p)
    assert sampler.schedule(50, seed=1) == sampler.schedule(50, seed=1)   # a pure function of the seed
    assert sampler.schedule(50, seed=1) != sampler.schedule(50, seed=2)


def test_round_robin_takes_turns():
    assert TaskSampler({"a": 5, "b": 1, "c": 9}, "round_robin").schedule(7, seed=0) == ["a", "b", "c", "a", "b", "c", "a"]


def test_unknown_sampling_strategy_is_refused():
    with pytest.raises(ValueError, match="round_robin"):
        TaskSampler({"a": 1}, "uniform")


# ----------------------------------------------------------------------------- task data

def test_entity_tags_map_back_to_the_entity_characters(tmp_path):
    examples, tok = generated_like(tmp_path)
    feats, labels = entity_windows(examples, tok)
    assert len(feats) == 1                       # three questions, one context
    enc = tok(CONTEXT, return_offsets_mapping=True)
    tags = feats.labels[0]
    assert tags[0] == IGNORE and tags[-1] == IGNORE  # <s>, </s>
    spans, current = [], None
    for tag, (a, b) in zip(tags, enc["offset_mapping"]):
        name = labels[tag] if tag != IGNORE else "O"
        if name.startswith("B-"):
            current = [name[2:], a, b]
            spans.append(current)
        elif name.startswith("I-"):
            assert current is not None and current[0] == name[2:]
            current[2] = b
        else:
            current = None
    # RoBERTa-style offsets may include the leading space of a word: strip it
    found = [(t, CONTEXT[a:b].strip()) for t, a, b in spans]
    assert found == [(e["label"], e["text"]) for e in ENTITIES]


def test_question_type_labels_and_a_missing_field(tmp_path):
    examples, tok = generated_like(tmp_path)
    feats, labels = question_type_windows(examples, tok)
    assert labels == ["fundador", "lugar_nacimiento", "sede"]
    assert feats.labels == [1, 2, 0]
    _, by_type = question_type_windows(examples, tok, key="question_type")
    assert by_type == ["donde", "quien"]
    del examples[1].extra["relation"]
    with pytest.raises(DataError, match=r"question id b has no field 'relation'"):
        question_type_windows(examples, tok, source="gen.json")
    with pytest.raises(DataError, match="label set"):
        question_type_windows(examples[:1], tok, labels=["sede", "fundador"])


def test_answerability_is_per_window_and_any_window_answers(tmp_path):
    examples, tok = generated_like(tmp_path)
    feats = answerability_windows(examples, tok, max_length=64, stride=16)
    assert feats.labels == [1, 1, 0] and feats.example_index == [0, 1, 2]
    # a long context: the answer lies in one window only
    long_ctx = " ".join(["Texto de relleno sin respuesta."] * 30) + " Luis nació en Lima."
    path = tmp_path / "long.json"
    path.write_text(json.dumps(squad(long_ctx, [{"id": "q", "question": "¿Dónde nació Luis?",
                                                 "answers": [{"text": "Lima", "answer_start": long_ctx.index("Lima")}]}])))
    (ex,), _ = load_squad(path)
    tok2 = train_tokenizer([long_ctx, ex.question], vocab_size=200, min_frequency=1)
    feats = answerability_windows([ex], tok2, max_length=48, stride=16)
    assert len(feats) > 2 and sum(feats.labels) == 1 and feats.labels[-1] == 1
    scores = [-1.0] * len(feats)
    assert question_answerable(feats, scores, 1) == [False]
    scores[-1] = 0.5
    assert question_answerable(feats, scores, 1) == [True]


def test_multitask_epoch_draws_each_task_from_its_own_windows(tmp_path):
    examples, tok = generated_like(tmp_path)
    qa = make_features(examples, tok, 64, 16)
    ent, ent_labels = entity_windows(examples, tok)
    qt, qt_labels = question_type_windows(examples, tok)
    tasks = [Task("qa", "qa", qa), Task("entities", "token", ent, ent_labels), Task("question_type", "sequence", qt, qt_labels)]
    data = MultiTaskData(tasks, TaskSampler.for_tasks(tasks, "round_robin"))
    plan = data.epoch_batches(batch_size=2, seed=3, group_by_length=False)
    assert len(plan) == 2 + 1 + 2                     # Σ ceil(n_i / 2) for sizes 3, 1, 3
    assert [t for t, _ in plan] == ["qa", "entities", "question_type", "qa", "entities"]
    for task, idx in plan:
        assert all(0 <= i < len(data.tasks[task].features) for i in idx)
        batch = data.collate(task, idx, tok.pad_token_id)
        assert batch["task"] == task
        assert ("start_positions" in batch) == (task == "qa") and ("labels" in batch) == (task != "qa")
    assert plan == data.epoch_batches(batch_size=2, seed=3, group_by_length=False)
    with pytest.raises(ValueError, match="unique"):
        MultiTaskData([tasks[0], tasks[0]])


# ----------------------------------------------------------------------------- model, gradients, saving

@pytest.fixture
def three_tasks(tmp_path):
    examples, tok = generated_like(tmp_path)
    from kit.models import qa_config
    cfg = qa_config("roberta", vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_length=64)
    torch.manual_seed(0)
    ent, ent_labels = entity_windows(examples, tok)
    qt, qt_labels = question_type_windows(examples, tok)
    tasks = [Task("qa", "qa", make_features(examples, tok, 64, 16)), Task("entities", "token", ent, ent_labels),
             Task("question_type", "sequence", qt, qt_labels)]
    EXAMPLES[tok] = examples
    return tasks, MultiTaskModel(build_qa_model(cfg), tasks), tok


EXAMPLES = {}  # the fixture's examples, by tokenizer


def test_each_head_gets_gradients_only_from_its_own_task(three_tasks):
    tasks, model, tok = three_tasks
    data = MultiTaskData(tasks)
    loss_fn = MultiTaskLoss(tasks)
    qa_head = model.qa.qa_outputs.weight
    for task in ("qa", "entities", "question_type"):
        model.zero_grad(set_to_none=True)
        loss, terms = loss_fn(model, data.collate(task, [0], tok.pad_token_id))
        loss.backward()
        assert set(terms) >= {f"{task}/loss"}
        grads = {"qa": qa_head.grad, **{n: h[-1].weight.grad for n, h in model.heads.items()}}
        for head, g in grads.items():
            if head == task:
                assert g is not None and g.abs().sum() > 0, head
            else:
                assert g is None, (task, head)
        assert model.qa.base_model.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0  # shared


def test_multitask_checkpoint_reloads_with_identical_outputs(three_tasks, tmp_path):
    tasks, model, tok = three_tasks
    data = MultiTaskData(tasks)
    model.eval()
    model.save_pretrained(tmp_path / "mt")
    again = MultiTaskModel.from_pretrained(tmp_path / "mt").eval()
    plain = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "mt", attn_implementation="eager").eval()
    with torch.no_grad():
        for task in ("qa", "entities", "question_type"):
            batch = {k: v for k, v in data.collate(task, [0], tok.pad_token_id).items()
                     if k not in ("task", "labels", "start_positions", "end_positions")}
            a, b = model(task, **batch), again(task, **batch)
            if task == "qa":
                assert torch.equal(a.start_logits, b.start_logits) and torch.equal(a.end_logits, b.end_logits)
                c = plain(**batch)  # the QA part is a plain AutoModelForQuestionAnswering student
                assert torch.equal(a.start_logits, c.start_logits) and torch.equal(a.end_logits, c.end_logits)
            else:
                assert torch.equal(a, b)
    assert json.loads((tmp_path / "mt" / "tasks.json").read_text())["question_type"]["labels"] == tasks[2].labels
    with pytest.raises(FileNotFoundError, match="tasks.json"):
        MultiTaskModel.from_pretrained(tmp_path / "nothing")


def test_multitask_training_in_the_one_loop_logs_every_task(three_tasks, tmp_path):
    tasks, model, tok = three_tasks
    data = MultiTaskData(tasks, TaskSampler.for_tasks(tasks, "round_robin"))
    before = {n: p.detach().clone() for n, p in model.heads.named_parameters()}
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), epochs=5, max_updates=9, batch_size=2, lr=1e-2,
                      log_every=3, resume=False, group_by_length=False)
    examples = {t.name: EXAMPLES[tok] for t in tasks}
    train(model, data, cfg, pad_id=tok.pad_token_id, loss_fn=MultiTaskLoss(tasks), metric="qa/f1",
          evaluate=make_evaluator(tasks, examples, tok, max_length=64, stride=16))
    evals = [e for e in read_log(tmp_path / "run") if e["kind"] == "eval"]
    assert evals and {"qa/f1", "qa/exact_match", "entities/token_f1", "question_type/accuracy"} <= set(evals[-1])
    assert all(0 <= evals[-1][k] <= 100 for k in ("qa/f1", "entities/token_f1", "question_type/accuracy"))
    steps = [e for e in read_log(tmp_path / "run") if e["kind"] == "train"]
    assert steps[-1]["update"] == 9                       # max_updates stops the run, not the epochs
    assert {"qa/task", "entities/ce", "question_type/ce"} <= set().union(*steps)
    assert all(not torch.equal(before[n], p) for n, p in model.heads.named_parameters())
    assert MultiTaskModel.from_pretrained(tmp_path / "run").task_spec == model.task_spec


# ----------------------------------------------------------------------------- the loss on hand-made logits

class Fixed(torch.nn.Module):
    """A model that returns the same logits whatever the input (and has one parameter to train)."""
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, task=None, **inputs):
        return self.logits


def test_classification_loss_is_cross_entropy_plus_kl_from_the_teacher():
    feats, labels = collate_labelled, ["no", "yes"]
    windows = LabelledWindows([[0, 5, 2], [0, 6, 2]], [1, 0])
    task = Task("ans", "sequence", windows, labels, teacher=Fixed([[0.0, 2.0], [1.0, 0.0]]))
    student = Fixed([[0.5, 0.5], [2.0, -1.0]])
    batch = {"task": "ans", **feats(windows, [0, 1], pad_id=1)}
    loss, terms = MultiTaskLoss([task], temperature=1.0)(student, batch)
    s, t = torch.tensor([[0.5, 0.5], [2.0, -1.0]]), torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    ce = (-(F.log_softmax(s, -1)[0, 1]) - F.log_softmax(s, -1)[1, 0]) / 2
    p_t = F.softmax(t, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s, -1))).sum() / 2          # batchmean: summed, divided by 2 windows
    assert terms["ans/ce"].item() == pytest.approx(ce.item(), rel=1e-6)
    assert terms["ans/kd"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert loss.item() == pytest.approx((ce + kl).item(), rel=1e-6)
    loss.backward()
    assert student.logits.grad is not None and task.teacher.logits.grad is None   # only the student learns


def test_token_loss_skips_unlabelled_tokens():
    windows = LabelledWindows([[0, 5, 2]], [[IGNORE, 2, IGNORE]])
    logits = [[[9.0, 9.0, 9.0], [0.0, 1.0, 3.0], [5.0, -5.0, 0.0]]]
    loss, terms = MultiTaskLoss([Task("ent", "token", windows, ["O", "B-X", "I-X"])])(
        Fixed(logits), {"task": "ent", **collate_labelled(windows, [0], pad_id=1)})
    assert loss.item() == pytest.approx(-F.log_softmax(torch.tensor([0.0, 1.0, 3.0]), -1)[2].item(), rel=1e-6)


def test_task_registry_refuses_unknown_kinds_and_missing_labels(three_tasks):
    tasks, _, tok = three_tasks
    with pytest.raises(ValueError, match="registry has"):
        make_task("sentiment", EXAMPLES[tok], tok)
    assert make_task("answerability", EXAMPLES[tok], tok, 64, 16).metric == "question_accuracy"
    with pytest.raises(ValueError, match="not one of"):
        Task("x", "regression", tasks[0].features)
    with pytest.raises(ValueError, match="two label names"):
        Task("x", "sequence", tasks[2].features, ["only"])
