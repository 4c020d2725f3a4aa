import pytest
import torch

from kit.int8 import Int8Linear, Int8Part, StackedInt8Linear, quantize_int8
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
    for m in (layer.intermediate.dense, layer.output.dense, layer.attention.output.dense):
        assert type(m) is Int8Linear
    attention = layer.attention.self                 # query, key and value: parts of one stacked int8 linear
    assert type(attention.int8_qkv) is StackedInt8Linear and attention.int8_qkv.out_features == 3 * 64
    assert [(type(m), m.stacked, m.index) for m in (attention.query, attention.key, attention.value)] == [
        (Int8Part, attention.int8_qkv, i) for i in range(3)]
    assert type(quantized.qa_outputs) is torch.nn.Linear                  # the QA head stays fp32
    ffn_only = quantize_int8(model, "feed_forward").roberta.encoder.layer[0]
    assert type(ffn_only.output.dense) is Int8Linear and type(ffn_only.attention.self.query) is torch.nn.Linear
    err = (q.start_logits - ref.start_logits).abs().max() / ref.start_logits.abs().max()
    assert 0 < err < 0.05


def test_stacked_query_key_value_give_exactly_the_numbers_of_three_int8_linears():
    torch.manual_seed(0)
    linears = [torch.nn.Linear(8, n) for n in (8, 8, 4)]
    stacked, alone = StackedInt8Linear(linears), [Int8Linear(lin) for lin in linears]
    parts = [Int8Part(stacked, i) for i in range(3)]
    x, other = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    with torch.no_grad():
        for order in ((0, 1, 2), (2, 0, 1), (1, 1, 0, 2)):    # as a block calls them, another order, one part twice
            for i in order:
                assert torch.equal(parts[i](x), alone[i](x))
        assert torch.equal(parts[0](x), alone[0](x)) and torch.equal(parts[1](other), alone[1](other))   # new input
        assert torch.equal(parts[2](other), alone[2](other))
    assert stacked._input is None and stacked._parts is None    # the last part read: no tensor kept


def test_the_stacked_int8_model_equals_the_unstacked_one_and_compiles(tmp_path):
    from kit.bench import compiled
    model, stacked = _tiny_int8_pair()
    unstacked = quantize_int8(model, stack_qkv=False)
    assert not any(isinstance(m, StackedInt8Linear) for m in unstacked.modules())
    ids = torch.randint(5, 60, (2, 24))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        ref = unstacked(**batch).start_logits
        assert torch.equal(stacked(**batch).start_logits, ref)
        fast = compiled(stacked)
        if fast is not None:   # no C++ compiler here: the eager check above is the test
            assert torch.allclose(fast(**batch).start_logits, ref, atol=1e-4)
            assert torch.allclose(fast(**batch).start_logits, ref, atol=1e-4)   # a second call: no tensor kept wrong


def test_int8_refuses_a_bad_choice_and_a_gpu_model(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="choose 'feed_forward' or 'all'"):
        quantize_int8(model, "attention")
    fake = torch.nn.Parameter(torch.zeros(1, device="meta"))
    monkeypatch.setattr(torch.nn.Sequential, "parameters", lambda self: iter([fake]))
    with pytest.raises(ValueError, match="makes a CPU model and this one is on meta"):
        quantize_int8(model)


def _tiny_int8_pair():
    cfg = qa_config("roberta", vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=48, max_length=40)
    torch.manual_seed(0)
    model = build_qa_model(cfg, "sdpa").eval()
    return model, quantize_int8(model)


def test_the_labelled_steps_give_the_same_output_and_are_switched_off_after_profiling():
    from kit.bench import INT8_STEPS, random_batch, where_time_goes
    model, fast = _tiny_int8_pair()
    batch = random_batch(60, 1, 24)
    layer = next(m for m in fast.modules() if isinstance(m, Int8Linear))
    x = torch.randn(3, 32)
    plain = layer(x)
    layer.label_steps = True
    assert torch.equal(layer(x), plain)     # the ranges only label the same three steps
    layer.label_steps = False
    parts = where_time_goes(fast, batch, repeats=1)
    assert set(INT8_STEPS) <= set(parts) and all(parts[s] > 0 for s in INT8_STEPS)
    # the steps run inside the attention and feed-forward blocks: they cannot take longer than those
    assert sum(parts[s] for s in INT8_STEPS) <= parts["attention"] + parts["feed_forward"]
    assert not any(m.label_steps for m in fast.modules() if isinstance(m, Int8Linear))
    assert not set(INT8_STEPS) & set(where_time_goes(model, batch, repeats=1))   # fp32: no int8 steps


def test_gemm_limit_times_each_linear_shape_once_and_weighs_them_by_their_layers():
    from kit.int8 import gemm_limit
    model, _ = _tiny_int8_pair()
    rows = gemm_limit(model, tokens=16, rounds=2)
    by_shape = {r["shape"]: r for r in rows}
    # per layer: query, key and value stacked (32 -> 96), attention output (32 -> 32), intermediate (32 -> 48),
    # output (48 -> 32); the QA head stays fp32 in quantize_int8, so it is not counted
    assert {s: r["layers"] for s, r in by_shape.items()} == {
        "16x32 @ 32x96": 2, "16x32 @ 32x32": 2, "16x32 @ 32x48": 2, "16x48 @ 48x32": 2, "all linears": 8}
    total = by_shape.pop("all linears")
    assert total["fp32_ms"] == pytest.approx(sum(r["layers"] * r["fp32_ms"] for r in by_shape.values()))
    assert total["int8_gemm_ms"] == pytest.approx(sum(r["layers"] * r["int8_gemm_ms"] for r in by_shape.values()))
    assert all(r["speedup"] == pytest.approx(r["fp32_ms"] / r["int8_gemm_ms"]) for r in rows)


def test_kit_bench_gemm_limit_prints_and_writes_each_shape(tmp_path, capsys):
    import json
    from kit.__main__ import main
    model, _ = _tiny_int8_pair()
    model.save_pretrained(tmp_path / "m")
    main(["bench", "--gemm-limit", "--model", str(tmp_path / "m"), "--seq-lens", "16", "--rounds", "2",
          "--out", str(tmp_path / "gemm.json")])
    out = capsys.readouterr().out
    assert "16 tokens, median of 2 rounds" in out and "all linears" in out
    report = json.loads((tmp_path / "gemm.json").read_text())
    assert [r["layers"] for r in report["models"][str(tmp_path / "m")]] == [2, 2, 2, 2, 8]
