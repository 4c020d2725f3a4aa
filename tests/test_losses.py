import math

import pytest
import torch

from kit.layermap import LayerMap
from kit.losses import attention_mse, hidden_mse, logit_kd_loss, soft_cross_entropy, task_ce


def test_logit_kd_equals_hand_computed_kl_and_torch_kldivloss():
    s = torch.tensor([[0.0, math.log(3.0)]])          # p_s = [1/4, 3/4]
    t = torch.tensor([[0.0, 0.0]])                    # p_t = [1/2, 1/2]
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert logit_kd_loss(s, t).item() == pytest.approx(kl, rel=1e-6)
    # the paper's expression, temperature 2 included (T² scaling)
    s2, t2 = torch.randn(3, 7), torch.randn(3, 7)
    ref = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(s2 / 2, -1), torch.softmax(t2 / 2, -1)) * 4
    assert logit_kd_loss(s2, t2, temperature=2.0).item() == pytest.approx(ref.item(), rel=1e-6)
    assert logit_kd_loss(t2, t2).item() == pytest.approx(0.0, abs=1e-7)


def test_soft_cross_entropy_is_kl_plus_teacher_entropy():
    s = torch.tensor([[0.0, math.log(3.0)]])
    t = torch.tensor([[0.0, 0.0]])
    ce = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert soft_cross_entropy(s, t).item() == pytest.approx(ce, rel=1e-6)
    assert ce == pytest.approx(logit_kd_loss(s, t).item() + math.log(2), rel=1e-6)


def test_padding_is_ignored_by_logit_losses():
    s = torch.tensor([[0.0, math.log(3.0), 50.0]])    # a huge logit on a padded position...
    t = torch.tensor([[0.0, 0.0, -50.0]])
    mask = torch.tensor([[1, 1, 0]])
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert logit_kd_loss(s, t, attention_mask=mask).item() == pytest.approx(kl, rel=1e-5)
    # task CE: gold start 1, end 0; padding cannot steal probability
    ce_start = -math.log(0.75)
    ce_end = -math.log(0.5)
    got = task_ce(s, t, torch.tensor([1]), torch.tensor([0]), attention_mask=mask)
    assert got.item() == pytest.approx((ce_start + ce_end) / 2, rel=1e-5)


def test_attention_mse_over_real_pairs_only():
    # B=1, H=2, L=3 with the last token padding: only the 2x2 real block of each head counts
    s = torch.zeros(1, 2, 3, 3)
    t = torch.zeros(1, 2, 3, 3)
    t[0, 0, 0, 1] = 1.0     # real pair, head 0: squared error 1
    t[0, 1, 1, 1] = 0.5     # real pair, head 1: squared error 0.25
    t[0, 0, 2, 2] = 9.0     # padded pair: ignored
    t[0, 1, 0, 2] = 9.0     # real query, padded key: ignored
    mask = torch.tensor([[1, 1, 0]])
    assert attention_mse(s, t, mask).item() == pytest.approx((1.0 + 0.25) / 8)
    assert attention_mse(s, t).item() == pytest.approx((1 + 0.25 + 81 + 81) / 18)


def test_attention_head_mismatch_is_an_error_or_explicitly_averaged():
    s, t = torch.zeros(1, 2, 2, 2), torch.ones(1, 4, 2, 2)
    with pytest.raises(ValueError, match="2 attention heads and the teacher 4"):
        attention_mse(s, t)
    assert attention_mse(s, t, heads="mean").item() == pytest.approx(1.0)


def test_hidden_mse_with_projection_and_mask():
    hs = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])            # B=1, L=2, D_s=2
    ht = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])   # D_t=3
    proj = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    # token 0 matches exactly; token 1 (padding) would add (9 + 16) / 3
    assert hidden_mse(hs, ht, torch.tensor([[1, 0]]), proj).item() == pytest.approx(0.0)
    assert hidden_mse(hs, ht, None, proj).item() == pytest.approx((9 + 16) / 3 / 2)
    with pytest.raises(ValueError, match="projection"):
        hidden_mse(hs, ht)


def test_uniform_map_is_the_papers_for_24_to_6():
    m = LayerMap.uniform(6, 24)
    assert m.attention == ((0, 3), (1, 7), (2, 11), (3, 15), (4, 19), (5, 23))
    assert m.hidden == ((0, 0), (1, 4), (2, 8), (3, 12), (4, 16), (5, 20), (6, 24))
    m.validate(6, 24)


def test_other_maps_and_validation():
    m = LayerMap.last_k(2, 6)
    assert m.attention == ((0, 4), (1, 5)) and m.hidden == ((0, 0), (1, 5), (2, 6))
    with pytest.raises(ValueError, match="multiple"):
        LayerMap.uniform(5, 24)
    with pytest.raises(ValueError, match=r"attention pair \(student 6, teacher 23\) is out of range"):
        LayerMap.explicit([(6, 23)], []).validate(6, 24)
    with pytest.raises(ValueError, match="hidden 0 is the embeddings"):
        LayerMap.explicit([], [(0, 25)]).validate(6, 24)


def test_task_ce_leaves_out_windows_nobody_labelled():
    from kit.losses import UNLABELLED
    s = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]], requires_grad=True)
    e = torch.tensor([[0.0, 1.0, 2.0], [0.0, 3.0, 0.0]], requires_grad=True)
    only_first = task_ce(s, e, torch.tensor([1, UNLABELLED]), torch.tensor([2, UNLABELLED]))
    by_hand = (-torch.log_softmax(s[0], -1)[1] - torch.log_softmax(e[0], -1)[2]) / 2
    assert torch.allclose(only_first, by_hand)
    only_first.backward()
    assert s.grad[1].abs().sum() == 0 and e.grad[1].abs().sum() == 0      # the unlabelled row learns nothing here
    none = task_ce(s, e, torch.tensor([UNLABELLED] * 2), torch.tensor([UNLABELLED] * 2))
    assert none.item() == 0 and none.requires_grad                        # a batch of unlabelled windows: 0, no NaN
