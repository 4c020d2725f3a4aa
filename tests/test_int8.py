import pytest
import torch

from kit.int8 import Int8Linear, quantize_int8
from kit.models import build_qa_model, qa_config


def _linear(weight, bias):
    lin = torch.nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(weight))
        lin.bias.copy_(torch.tensor(bias))
    return lin


def test_int8_linear_gives_the_hand_computed_values():
    # each weight row's largest |w| is 127 and so is each token's largest |x|: both scales are 1, so the
    # integers are the numbers themselves and the product is exact
    lin = _linear([[127.0, 1.0], [-3.0, 127.0]], [0.5, -1.0])
    y = Int8Linear(lin)(torch.tensor([[127.0, -5.0]]))
    assert y.tolist() == [[127 * 127 - 5 + 0.5, -3 * 127 - 5 * 127 - 1.0]]
    # a token of [0.5, 0.25]: its scale is 0.5/127, so 0.25 becomes round(63.5) = 64 steps of 0.5/127
    y = Int8Linear(lin)(torch.tensor([[0.5, 0.25]]))
    x_seen = torch.tensor([0.5, 64 * 0.5 / 127])
    assert torch.allclose(y[0], lin.weight @ x_seen + lin.bias, rtol=1e-6)


def test_each_token_is_rounded_on_its_own_scale():
    # one token 1000x larger than the others must not change how the others are rounded: with one scale
    # for the whole tensor (torch.ao's dynamic quantisation) the small tokens would round to zero
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    small = torch.randn(3, 16)
    big = 1000 * torch.randn(1, 16)
    q = Int8Linear(lin)
    with torch.no_grad():
        alone, beside_big = q(small), q(torch.cat([big, small]))[1:]
        exact = lin(small)
    assert torch.equal(alone, beside_big)
    assert ((alone - exact).norm() / exact.norm()) < 0.02


def test_int8_keeps_the_input_shape_and_a_zero_token():
    lin = torch.nn.Linear(4, 3)
    x = torch.zeros(2, 5, 4)
    x[0, 1] = torch.tensor([1.0, -2.0, 3.0, 0.5])
    with torch.no_grad():
        y = Int8Linear(lin)(x)
    assert y.shape == (2, 5, 3)
    assert torch.allclose(y[1, 0], lin.bias)                  # zeros in, bias out: no division by a zero scale
    assert torch.allclose(y[0, 1], lin(x[0, 1]), atol=0.05)


def test_int8_copy_is_close_to_fp32_and_leaves_the_original_alone():
    torch.manual_seed(0)
    model = build_qa_model(qa_config("roberta", vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, max_length=64)).eval()
    ids = torch.randint(5, 100, (2, 32))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        quantized = quantize_int8(model)
        ref, q = model(**batch), quantized(**batch)
    assert type(model.roberta.encoder.layer[0].intermediate.dense) is torch.nn.Linear   # the fp32 model is untouched
    layer = quantized.roberta.encoder.layer[0]
    for m in (layer.intermediate.dense, layer.output.dense, layer.attention.self.query, layer.attention.output.dense):
        assert type(m) is Int8Linear
    assert type(quantized.qa_outputs) is torch.nn.Linear                  # the QA head stays fp32
    ffn_only = quantize_int8(model, "feed_forward").roberta.encoder.layer[0]
    assert type(ffn_only.output.dense) is Int8Linear and type(ffn_only.attention.self.query) is torch.nn.Linear
    err = (q.start_logits - ref.start_logits).abs().max() / ref.start_logits.abs().max()
    assert 0 < err < 0.05


def test_int8_refuses_a_bad_choice_and_a_gpu_model(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="choose 'feed_forward' or 'all'"):
        quantize_int8(model, "attention")
    fake = torch.nn.Parameter(torch.zeros(1, device="meta"))
    monkeypatch.setattr(torch.nn.Sequential, "parameters", lambda self: iter([fake]))
    with pytest.raises(ValueError, match="makes a CPU model and this one is on meta"):
        quantize_int8(model)
