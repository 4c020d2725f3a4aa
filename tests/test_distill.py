import copy

import pytest
import torch

from kit.distill import DistillLoss, DistillWeights, use_attention_maps
from kit.layermap import LayerMap
from kit.models import build_qa_model, qa_config


def tiny(layers, hidden, heads=4, seed=0):
    torch.manual_seed(seed)
    return build_qa_model(qa_config("roberta", vocab_size=50, hidden_size=hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, intermediate_size=2 * hidden, max_length=32))


def batch():
    ids = torch.randint(5, 50, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 1   # <pad>
    return {"input_ids": ids, "attention_mask": mask, "start_positions": torch.tensor([3, 2, 1]),
            "end_positions": torch.tensor([4, 6, 3])}


@pytest.mark.parametrize("kind", ["probs", "scores"])
def test_registered_attention_keeps_the_padding_mask(kind):
    model = tiny(2, 32).eval()
    b = batch()
    inputs = {k: b[k] for k in ("input_ids", "attention_mask")}
    ref = model(**inputs, output_attentions=True)
    use_attention_maps(model, kind)
    ours = model(**inputs, output_attentions=True)
    # same logits: the padding mask reached our attention function
    assert torch.allclose(ref.start_logits, ours.start_logits, atol=1e-5)
    if kind == "probs":
        assert torch.allclose(ref.attentions[1], ours.attentions[1], atol=1e-6)
        assert ours.attentions[1][2, :, :, 5:].abs().max() < 1e-6       # no weight on padded keys
    else:
        # softmax of the scores over the real keys gives back the probabilities
        probs = torch.softmax(ours.attentions[1][2, :, :, :5], -1)
        assert torch.allclose(probs[:, :5], ref.attentions[1][2, :, :5, :5], atol=1e-5)


def test_distill_step_trains_student_and_projection_only():
    teacher, student = tiny(4, 64, seed=1), tiny(2, 32, seed=2)
    loss_fn = DistillLoss(teacher, student, LayerMap.uniform(2, 4))
    before_t = {k: v.clone() for k, v in list(teacher.state_dict().items())}
    before_s = copy.deepcopy(student.state_dict())
    before_p = copy.deepcopy(loss_fn.projections.state_dict())
    student.train(); loss_fn.train()
    opt = torch.optim.AdamW(list(student.parameters()) + list(loss_fn.projections.parameters()), lr=1e-2)
    loss, terms = loss_fn(student, batch())
    assert set(terms) == {"task", "logits", "attention", "hidden"}
    assert all(torch.isfinite(v) for v in terms.values())
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    opt.step()
    assert not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before_t[k]), k                       # parameters and buffers bit-identical
    assert any(not torch.equal(v, before_s[k]) for k, v in student.state_dict().items())
    assert all(not torch.equal(v, before_p[k]) for k, v in loss_fn.projections.state_dict().items())


def test_weights_switch_terms_off_and_heads_must_match():
    teacher, student = tiny(4, 64), tiny(2, 32)
    loss_fn = DistillLoss(teacher, student, weights=DistillWeights(attention=0, hidden=0))
    _, terms = loss_fn(student, batch())
    assert set(terms) == {"task", "logits"}
    with pytest.raises(ValueError, match="heads"):
        DistillLoss(teacher, tiny(2, 32, heads=2))
    with pytest.raises(ValueError, match="out of range"):
        DistillLoss(teacher, student, LayerMap.explicit([(0, 4)], []))



def test_unlabelled_windows_learn_from_the_teacher_alone():
    from kit.losses import UNLABELLED
    teacher, student = tiny(4, 32, seed=1), tiny(2, 16, seed=2)
    b = batch()
    b["start_positions"] = b["end_positions"] = torch.full((3,), UNLABELLED)
    loss_fn = DistillLoss(teacher, student, weights=DistillWeights(task=1, logits=1, attention=0, hidden=0))
    loss, terms = loss_fn(student, b)
    assert terms["task"].item() == 0 and terms["logits"].item() > 0 and torch.isfinite(loss)
    loss.backward()
    assert student.qa_outputs.weight.grad.abs().sum() > 0                # the teacher's logits still teach it
    assert all(p.grad is None for p in teacher.parameters())


def test_the_teacher_computes_only_what_the_layer_map_reads_and_the_loss_is_the_same():
    from kit.distill import DistillLoss
    from kit.layermap import LayerMap
    from kit.models import build_qa_model, qa_config
    torch.manual_seed(0)
    t_cfg = qa_config("roberta", vocab_size=120, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                      intermediate_size=64, max_length=64)
    s_cfg = qa_config("roberta", vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=32, max_length=64)
    teacher, student = build_qa_model(t_cfg, "eager"), build_qa_model(s_cfg, "eager").eval()
    ids = torch.randint(5, 120, (2, 20), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0                                              # padding: the fused kernel must mask it too
    batch = {"input_ids": ids, "attention_mask": mask, "start_positions": torch.tensor([1, 2]),
             "end_positions": torch.tensor([3, 4])}
    layer_map = LayerMap.uniform(2, 4)                            # attention 0 <- 1, 1 <- 3; hidden 0, 2, 4
    losses = {}
    for kind in ("all", "mapped"):
        torch.manual_seed(2)
        loss_fn = DistillLoss(teacher, student, layer_map, teacher_outputs=kind)
        losses[kind] = loss_fn(student, batch)
    (all_loss, all_terms), (mapped_loss, mapped_terms) = losses["all"], losses["mapped"]
    assert torch.allclose(all_loss, mapped_loss, rtol=1e-5, atol=1e-6)
    for term in all_terms:
        assert torch.allclose(all_terms[term], mapped_terms[term], rtol=1e-5, atol=1e-6), term
    with torch.no_grad():
        out = teacher(**{k: batch[k] for k in ("input_ids", "attention_mask")}, output_attentions=True,
                      output_hidden_states=loss_fn.teacher_hidden)
    assert loss_fn.teacher_maps == [1, 3] and len(out.attentions) == 2          # two maps computed, not four
    assert [h is not None for h in out.hidden_states] in ([True, False, True, False, True], [True] * 5)
    with pytest.raises(ValueError, match="teacher_outputs 'some': choose 'mapped'"):
        DistillLoss(teacher, student, layer_map, teacher_outputs="some")


def test_changed_by_part_counts_the_tensors_each_part_changed():
    from types import SimpleNamespace
    from kit.distill import changed_by_part, part_of
    names = ["roberta.embeddings.word_embeddings.weight", "roberta.encoder.layer.0.attention.self.query.weight",
             "roberta.encoder.layer.0.output.dense.bias", "roberta.encoder.layer.1.output.dense.bias",
             "qa_outputs.weight", "pooler.dense.weight"]
    assert [part_of(n) for n in names] == ["embeddings", "layer 0", "layer 0", "layer 1", "QA head", "other"]
    before = {n: torch.zeros(2) for n in names}
    after = {n: torch.zeros(2) if n.endswith("query.weight") or n.startswith("pooler") else torch.ones(2)
             for n in names}
    model = SimpleNamespace(named_parameters=lambda: iter(after.items()))
    assert changed_by_part(model, before) == {"QA head": (1, 1), "embeddings": (1, 1), "layer 0": (1, 2),
                                              "layer 1": (1, 1), "other": (0, 1)}   # sorted, as printed


def test_loss_gap_is_the_largest_distance_of_the_loss_from_its_terms():
    from kit.distill import DistillWeights, loss_gap
    w = DistillWeights(task=1.0, logits=2.0, attention=1.0, hidden=1.0)
    log = [{"kind": "train", "loss": 5.0, "task": 1.0, "logits": 2.0, "attention": 9.0},
           {"kind": "eval", "f1": 50.0},
           {"kind": "train", "loss": 3.5, "task": 1.0, "logits": 1.0, "attention": 9.0}]
    assert loss_gap(log, w, ("task", "logits")) == 0.5       # 5 = 1 + 2·2 exactly; 3.5 against 1 + 2·1 = 3
    assert loss_gap(log, w, ("task", "logits", "attention")) == 9.0   # |5 − 14| and |3.5 − 12|: the larger
