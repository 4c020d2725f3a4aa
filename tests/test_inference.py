"""Scoring runs attention fused (kit.models.sdpa_attention) whatever the model trains with: the same logits as
eager, padding included, and the model gets its own attention back afterwards."""
import dataclasses

import pytest
import torch

from kit.features import length_batches, make_features
from kit.inference import window_logits
from kit.models import build_qa_model, sdpa_attention
from kit.multitask import MultiTaskModel
from kit.task_metrics import head_predictions
from kit.tasks import task_windows


def _uneven(examples):
    """The tiny questions with contexts of different lengths (a sentence repeated 0-3 times before them), so that
    batches are padded and sorting by length changes the order."""
    out = []
    for i, ex in enumerate(examples):
        extra = "Toledo es una ciudad. " * (i % 4)
        out.append(dataclasses.replace(ex, context=extra + ex.context,
                                       answers=[{**a, "answer_start": a["answer_start"] + len(extra)} for a in ex.answers]))
    return out


def _eager_logits(model, feats, pad_id):
    """Each window alone, no padding, eager attention: the reference the batched scoring must reproduce."""
    model.eval()
    start, end = [], []
    with torch.no_grad():
        for ids in feats.input_ids:
            out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
            start.append(out.start_logits[0]), end.append(out.end_logits[0])
    return start, end


def test_window_logits_scores_with_sdpa_and_equals_eager_window_by_window(tiny, monkeypatch):
    _, examples, tok, cfg, _ = tiny
    torch.manual_seed(0)
    model = build_qa_model(cfg)                      # eager, as the kit loads models for distillation
    feats = make_features(_uneven(examples), tok, 64, 16)      # several windows per question, of different lengths
    assert len({len(ids) for ids in feats.input_ids}) > 1
    seen = []
    real_forward = type(model).forward

    def recording_forward(self, *args, **kwargs):
        seen.append(self.config._attn_implementation)
        return real_forward(self, *args, **kwargs)
    monkeypatch.setattr(type(model), "forward", recording_forward)
    start, end = window_logits(model, feats, tok.pad_token_id, batch_size=3)   # padded batches, sorted by length
    monkeypatch.undo()
    assert seen and set(seen) == {"sdpa"}
    assert model.config._attn_implementation == "eager"
    ref_start, ref_end = _eager_logits(model, feats, tok.pad_token_id)
    for got, ref in zip(start + end, ref_start + ref_end):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_head_predictions_keep_the_windows_order_and_equal_eager(tiny):
    _, examples, tok, cfg, _ = tiny
    torch.manual_seed(0)
    model = MultiTaskModel(build_qa_model(cfg), {"qa": {"kind": "qa", "labels": []},
                                                 "answerability": {"kind": "sequence", "labels": ["no", "yes"]}}).eval()
    feats = task_windows("answerability", _uneven(examples), tok, 64, 16)[0]
    assert len({len(ids) for ids in feats.input_ids}) > 1
    got = head_predictions(model, "answerability", feats, tok.pad_token_id, batch_size=3)
    assert model.qa.config._attn_implementation == "eager"
    with torch.no_grad():
        for ids, logits in zip(feats.input_ids, got):
            ref = model(task="answerability", input_ids=torch.tensor([ids]),
                        attention_mask=torch.ones(1, len(ids), dtype=torch.long))[0]
            torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)


def test_sdpa_attention_gives_the_model_its_attention_back_after_an_error(tiny):
    _, _, _, cfg, _ = tiny
    model = build_qa_model(cfg)
    with pytest.raises(RuntimeError, match="inside"):
        with sdpa_attention(model):
            assert model.config._attn_implementation == "sdpa"
            raise RuntimeError("inside")
    assert model.config._attn_implementation == "eager"
    already = build_qa_model(cfg, "sdpa")
    with sdpa_attention(already):
        assert already.config._attn_implementation == "sdpa"
    assert already.config._attn_implementation == "sdpa"
    plain = torch.nn.Linear(2, 2)                    # not a transformers model: used as it is
    with sdpa_attention(plain) as m:
        assert m is plain


def test_length_batches_group_windows_shortest_first_and_cover_each_once():
    assert length_batches([5, 2, 9, 2, 7], 2) == [[1, 3], [0, 4], [2]]
    assert length_batches([], 4) == []
