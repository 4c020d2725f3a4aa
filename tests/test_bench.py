import torch
from torch.utils.flop_counter import FlopCounterMode

from kit.bench import flops_per_token, time_forward
from kit.models import build_qa_model, qa_config


def test_flops_per_token_matches_pytorch_flop_counter():
    cfg = qa_config("roberta", vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                    intermediate_size=96, max_length=64)
    model = build_qa_model(cfg).eval()
    seq = 40
    ids = torch.randint(5, 100, (2, seq))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    measured = counter.get_total_flops() / (2 * seq)
    assert abs(measured - flops_per_token(cfg, seq)) / measured < 1e-6


def test_time_forward_returns_one_time_per_repeat_and_restores_mode():
    model = build_qa_model(qa_config("roberta", vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, max_length=16)).train()
    ids = torch.randint(5, 50, (1, 8))
    times = time_forward(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, warmup=1, repeats=5)
    assert len(times) == 5 and all(t > 0 for t in times)
    assert model.training
