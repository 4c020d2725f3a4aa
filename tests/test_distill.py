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
