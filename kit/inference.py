"""Answer questions with a QA model and score the answers: the path behind `python -m kit predict/evaluate`."""
from __future__ import annotations

import os

import torch
from tqdm import tqdm   # the text bar: tqdm.auto warns in kernels without ipywidgets (the stored notebooks)

from .device import batch_to, place
from .features import collate, length_batches, make_features, postprocess
from .int8 import quantize_int8
from .models import fit_window, sdpa_attention
from .metrics import PROTOCOLS, squad_scores
from .precision import to_bf16

PRECISIONS = ("fp32", "bf16", "int8")   # what a model answers in (kit.precision holds the hardware checks)


@torch.no_grad()
def window_logits(model, feats, pad_id: int, batch_size: int = 64):
    """Start/end logits of every window; windows are batched by length so little padding is computed, and attention
    runs fused (kit.models.sdpa_attention). The model runs on kit.device.device() (moved there first, as
    kit.device's rule says), each batch where the model is."""
    place(model)
    was_training = model.training
    model.eval()
    start, end = [None] * len(feats), [None] * len(feats)
    with sdpa_attention(model):   # no attention maps needed here: the fused kernel, whatever the model trains with
        for idx in tqdm(length_batches([len(ids) for ids in feats.input_ids], batch_size), desc="predict",
                        leave=False, mininterval=5,
                        disable=len(feats) < 4 * batch_size or bool(os.environ.get("TQDM_DISABLE"))):
            batch = batch_to(collate(feats, idx, pad_id, with_labels=False), model)
            out = model(**batch)
            for row, f_i in enumerate(idx):
                n = len(feats.input_ids[f_i])
                start[f_i] = out.start_logits[row, :n].float().cpu()
                end[f_i] = out.end_logits[row, :n].float().cpu()
    model.train(was_training)
    return start, end


def predict_answers(model, tokenizer, examples, max_length: int = 384, stride: int = 128, batch_size: int = 64,
                    n_best: int = 20, max_answer_length: int = 30, version_2: bool | None = None,
                    null_threshold: float = 0.0) -> dict[str, str]:
    """{question id: answer text} for every example ("" = no answer; only when version_2)."""
    if version_2 is None:  # answer "" only if the data can have unanswerable questions
        version_2 = any(e.is_impossible for e in examples)
    max_length, stride = fit_window(model, max_length, stride)   # never longer than the model reads
    feats = make_features(examples, tokenizer, max_length, stride)
    start, end = window_logits(model, feats, tokenizer.pad_token_id, batch_size)
    return postprocess(examples, feats, start, end, n_best, max_answer_length, version_2, null_threshold)


def evaluate_model(model, tokenizer, examples, protocol: str = "kit", **kwargs) -> tuple[dict, dict[str, str]]:
    """(EM/F1 metrics, the predictions they were computed from), scored by `protocol` (kit.metrics.PROTOCOLS): "kit"
    all examples with Spanish normalisation; "paper" the first 200, English normalisation, one best span."""
    p = PROTOCOLS[protocol]
    examples = examples[:p.first] if p.first else examples
    predictions = predict_answers(model, tokenizer, examples, **{"n_best": p.n_best, **kwargs})
    metrics = squad_scores(examples, predictions, p.language)
    return (metrics if protocol == "kit" else {**metrics, "protocol": protocol}), predictions


def score_protocols(models: dict, tokenizer, examples, max_length: int = 384, stride: int = 128) -> list[dict]:
    """Each model of {name: model} scored by every protocol of kit.metrics.PROTOCOLS on the same file and windows:
    one row per model and protocol (questions scored, EM, F1)."""
    rows = []
    for name, model in models.items():
        for protocol in PROTOCOLS:
            metrics, _ = evaluate_model(model, tokenizer, examples, protocol, max_length=max_length, stride=stride)
            rows.append({"model": name, "protocol": protocol, "questions": metrics["n"],
                         "exact_match": metrics["exact_match"], "f1": metrics["f1"]})
    return rows


def answer(model, tokenizer, question: str, context: str, max_length: int = 384, stride: int = 128) -> str:
    """One answer to one question: what `pipeline("question-answering")` did before transformers 5.3
    removed it. Always a span of `context` (the best one), never "no answer"."""
    from .data import Example
    ex = Example(id="q", title="", question=question, context=context, answers=[], is_impossible=False)
    return predict_answers(model, tokenizer, [ex], max_length, stride, version_2=False)["q"]


def with_precision(model, precision: str):
    """`model` for inference in `precision`: fp32 as it is (in eval mode, on kit.device.device()), a bf16 copy
    (to_bf16, there too) or a copy whose encoder nn.Linear layers multiply in int8 (kit.int8.quantize_int8: made
    on the CPU, where int8 runs, whatever the device)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {PRECISIONS}.")
    if precision == "int8":
        return quantize_int8(model)
    place(model)
    return to_bf16(model) if precision == "bf16" else model.eval()
