"""Vocabulary trimming: keep only the embedding rows of the tokens that the data uses.

A multilingual encoder spends most of its parameters on its vocabulary: multilingual-e5-small has
118M parameters, 96M of them in a 250k x 384 embedding, while Spanish QA text uses a few tens of
thousands of those tokens. Trimming keeps the rows of the tokens that a set of texts produces (plus
every special token), renumbers them in their old order, and rewrites the tokenizer to match.

Why the logits stay identical on those texts: a Unigram (SentencePiece) tokenizer picks the
best-scoring segmentation among its pieces. Every piece of the old best segmentation of a kept text is
kept, and removing other pieces only removes candidates, so the best one is unchanged; the model then
looks up the same vectors under new ids. Text outside the set may segment differently (a missing piece
falls back to smaller ones or <unk>). Trim with the text the model is trained and validated on, never with its
test set (a deployed model does not see its test text in advance); `unseen_text_report` counts what unseen text
becomes, and `with_rows_for` rebuilds the model as it would have been had other texts been kept too, so that
the cost can be measured.

    model, tok = load_qa_model(DIR), load_tokenizer(DIR)
    keep = used_token_ids(tok, texts)
    small, small_tok = trim_vocabulary(model, tok, keep, "runs/x/teacher-trimmed")
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn


def used_token_ids(tokenizer, texts, batch_size: int = 1000) -> list[int]:
    """Sorted ids of every token that `texts` produce, plus every special and added token."""
    ids = set(tokenizer.all_special_ids) | {int(i) for i in tokenizer.added_tokens_decoder}
    texts = list(texts)
    for i in range(0, len(texts), batch_size):
        for row in tokenizer(texts[i:i + batch_size], add_special_tokens=False)["input_ids"]:
            ids.update(row)
    return sorted(ids)


def _trimmed_tokenizer_json(spec: dict, keep: list[int]) -> dict:
    model = spec["model"]
    if model["type"] != "Unigram":
        raise ValueError(f"vocabulary trimming supports Unigram (SentencePiece: XLM-R, multilingual-e5) "
                         f"tokenizers; this one is {model['type']}, whose merges or greedy matching would need "
                         f"tokens outside the kept set. Train a smaller tokenizer instead.")
    n_model = len(model["vocab"])
    beyond = sorted(t["id"] for t in spec.get("added_tokens", []) if t["id"] >= n_model)
    if [i for i in keep if i >= n_model] != beyond:
        raise ValueError("keep must hold every added token (e.g. <mask>); build it with used_token_ids.")
    # added tokens beyond the piece list stay after it, in their order: enumerate(keep) numbers them so
    new_id = {old: new for new, old in enumerate(keep)}
    model["vocab"] = [model["vocab"][i] for i in keep if i < n_model]
    if model.get("unk_id") is not None:
        model["unk_id"] = new_id[model["unk_id"]]
    for token in spec.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    post = spec.get("post_processor") or {}
    for processor in [post] + post.get("processors", []):
        for special in (processor.get("special_tokens") or {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
    return spec


def trim_vocabulary(model, tokenizer, keep: list[int], out_dir):
    """Write the model and tokenizer with only the `keep` token ids to `out_dir`; return both, reloaded."""
    from transformers import AutoTokenizer
    keep = sorted(set(keep))
    vocab = model.get_input_embeddings().weight.shape[0]
    if not keep or keep[-1] >= vocab:
        raise ValueError(f"keep holds ids outside the model's vocabulary of {vocab} rows.")
    missing = sorted(set(tokenizer.all_special_ids) - set(keep))
    if missing:
        raise ValueError(f"keep lacks the special token ids {missing}; build it with used_token_ids.")
    out = Path(out_dir)
    tokenizer.save_pretrained(out)
    spec = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    (out / "tokenizer.json").write_text(json.dumps(_trimmed_tokenizer_json(spec, keep), ensure_ascii=False),
                                        encoding="utf-8")

    new_id = {old: new for new, old in enumerate(keep)}
    old_emb = model.get_input_embeddings()
    emb = nn.Embedding(len(keep), old_emb.embedding_dim, padding_idx=new_id.get(old_emb.padding_idx),
                       device=old_emb.weight.device)   # where the model is (kit.device: a GPU after scoring there)
    with torch.no_grad():
        emb.weight.copy_(old_emb.weight[torch.tensor(keep, device=old_emb.weight.device)])
    model.set_input_embeddings(emb)
    model.config.vocab_size = len(keep)
    for field in ("pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id"):
        old = getattr(model.config, field, None)
        if isinstance(old, int) and old in new_id:
            setattr(model.config, field, new_id[old])
    model.save_pretrained(out, safe_serialization=True)
    return model, AutoTokenizer.from_pretrained(str(out))


def unseen_text_report(full_tokenizer, trimmed_tokenizer, examples) -> dict:
    """How the questions of `examples` (question and context) read after trimming, against the full vocabulary:
    `tokens` (full vocabulary), `tokens not kept` (pieces the trimmed vocabulary lacks), `tokens after` and `unk
    after` (the trimmed tokenizer's pieces and how many are <unk>), `questions` and `questions affected` (whose
    question or context splits differently)."""
    kept = set(trimmed_tokenizer.get_vocab())
    unk = trimmed_tokenizer.unk_token
    pieces = lambda tok, text: tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
    report = dict.fromkeys(("questions", "questions affected", "tokens", "tokens not kept", "tokens after",
                            "unk after"), 0)
    seen = {}
    for e in examples:
        differs = False
        for text in (e.question, e.context):
            if text not in seen:
                full, after = pieces(full_tokenizer, text), pieces(trimmed_tokenizer, text)
                seen[text] = (len(full), sum(p not in kept for p in full), len(after), after.count(unk), full != after)
            n, missing, n_after, n_unk, changed = seen[text]
            report["tokens"] += n; report["tokens not kept"] += missing
            report["tokens after"] += n_after; report["unk after"] += n_unk
            differs |= changed
        report["questions"] += 1
        report["questions affected"] += differs
    return report


def with_rows_for(model, tokenizer, source_weight, source_tokenizer, texts, out_dir):
    """The trimmed `model` with the rows of the tokens that `texts` use added back from `source_weight` (the input
    embeddings of the untrimmed model it came from; `source_tokenizer`, its tokenizer): the model that trimming
    with `texts` too would have given, when the rows of those tokens were never trained (their pre-trained
    values; fine-tuning only shrinks such rows by its weight decay). Written to `out_dir`; returns it and its
    tokenizer, as trim_vocabulary does."""
    import copy
    ours, theirs = tokenizer.get_vocab(), source_tokenizer.get_vocab()
    keep = sorted(set(used_token_ids(source_tokenizer, texts)) | {theirs[p] for p in ours})
    own = model.get_input_embeddings()
    weight = source_weight.detach().to(own.weight.device, own.weight.dtype).clone()
    with torch.no_grad():   # every row the trimmed model has: its own (fine-tuned) value
        weight[torch.tensor([theirs[p] for p in ours])] = own.weight[torch.tensor(list(ours.values()))]
    wide = copy.deepcopy(model)
    piece = {i: p for p, i in ours.items()}
    emb = nn.Embedding(*weight.shape, padding_idx=theirs[piece[own.padding_idx]] if own.padding_idx is not None
                       else None, device=weight.device)
    with torch.no_grad():
        emb.weight.copy_(weight)
    wide.set_input_embeddings(emb)
    wide.config.vocab_size = weight.shape[0]
    for field in ("pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id"):
        old = getattr(model.config, field, None)
        if isinstance(old, int) and old in piece:
            setattr(wide.config, field, theirs[piece[old]])
    return trim_vocabulary(wide, source_tokenizer, keep, out_dir)


def size_on_disk_mb(model_dir) -> float:
    """Megabytes of weights in a saved model directory."""
    return sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors")) / 2**20


def size_row(name: str, model, tokenizer) -> dict:
    """One row of a table of model sizes (notebook 01, section 3): the tokenizer's distinct vocabulary entries, the
    rows of the input embedding table (a checkpoint may pad it past the vocabulary), the layers, the parameters
    (kit.models.count_params) and the megabytes of the state as saved (kit.bench.state_size_mb: fp32 here)."""
    from .bench import state_size_mb
    from .models import count_params
    return {"model": name, "vocabulary entries": len(tokenizer),
            "embedding rows": model.get_input_embeddings().weight.shape[0],
            "layers": model.config.num_hidden_layers, **count_params(model), "MB (fp32)": state_size_mb(model)}
