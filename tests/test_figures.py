"""kit.figures: notebook 02's heatmaps compare the maps of each layer-map pair with kit.losses.attention_mse."""
import torch

from kit.figures import pair_mse


def test_pair_mse_compares_each_pair_over_real_tokens_only():
    a_s = torch.tensor([[[[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]]]])   # 1 window, 1 head, 3 tokens
    a_t = torch.tensor([[[[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]]]])
    mask = torch.tensor([[1, 1, 0]])                                              # the third token is padding
    student, teacher = [a_s, a_t], [a_s, a_t, a_s, a_t]                           # 2 student layers, 4 teacher ones
    mse = pair_mse(student, teacher, mask, ((0, 1), (1, 3)))
    assert list(mse) == [(0, 1), (1, 3)]
    assert abs(mse[(0, 1)] - 0.16) < 1e-7        # teacher layer 1, not 0: every real difference is ±0.4, 0.4² = 0.16
    assert mse[(1, 3)] == 0.0                    # the same map
    both = torch.cat([a_s, a_s], dim=1)          # 2 heads: "mean" compares the mean over heads
    assert abs(pair_mse([both], [a_t], mask, ((0, 0),), heads="mean")[(0, 0)] - 0.16) < 1e-7
