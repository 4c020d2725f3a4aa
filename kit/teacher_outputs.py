"""The teacher's answers, computed once: distil the task and logit terms from a file instead of a live teacher.

    python -m kit teacher-outputs --teacher runs/es-local/teacher --train train-v1.1.json --out outputs.safetensors
    python -m kit distill --teacher runs/es-local/teacher --teacher-outputs outputs.safetensors \
        --attention-weight 0 --hidden-weight 0 ...          # the same student as with the live teacher

Why. A teacher is trained once, but every student's run used to load it and run it on every window of every epoch;
on a new machine it had to be retrained first (73 min for es-local's on 2 cores). The logit term needs only the
teacher's start and end logits of each training window, and those never change: the teacher is frozen and in eval
mode. So they are computed once, saved compactly (fp16: about 1.5 KB per 384-token window) and read back.

What it cannot do. The dense terms (attention maps, hidden states) need the teacher's insides, about 2 MB per
window and layer: those still need the live teacher. A run that asks for them from a file is refused.

What the file is: safetensors (gzip'd when its name ends in .gz: about half the size), with
    start_logits, end_logits   every window's logits, concatenated (a window has as many as its tokens), fp16
    lengths                    each window's token count, in window order
and metadata: a digest of the windows' token ids (`windows`), of the tokenizer's vocabulary (`tokenizer`),
max_length, stride, the teacher (its directory, a digest of its weights, its depth and width), the files read and
the precision the teacher ran in. `SavedTeacher.for_windows` refuses a file whose windows, tokenizer, max_length or
stride are not the run's, naming the field and the fix.

In the loss, a `SavedTeacher` stands in for the teacher: called like a model on a batch, it finds each row's window
by its token ids and returns the saved logits, padded as the batch is. DistillLoss does not know the difference.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import load as load_tensors, save as save_tensors
from torch import nn

from .checkpoint import digest
from .losses import NEG

FORMAT = "kit-teacher-outputs-1"


class TeacherOutputsMismatch(ValueError):
    """A file of teacher outputs that was computed on other windows, with another tokenizer or window settings."""


def windows_digest(feats) -> str:
    """What decides the teacher's logits of a set of windows: their token ids, in order."""
    return digest(feats.input_ids, feats.token_type_ids)


def tokenizer_digest(tokenizer) -> str:
    return digest(sorted(tokenizer.get_vocab().items()))


def unlabelled_files(unlabelled: str) -> list[str]:
    """The files of an `unlabelled` option: one path, or several separated by commas, in the order given."""
    return [f.strip() for f in unlabelled.split(",") if f.strip()]


def teacher_windows(train: str, tokenizer, max_length: int, stride: int, unlabelled: str = ""):
    """The windows a recipe trains on (kit.recipes), also what `kit teacher-outputs` scores: the questions of
    `train`, then those of each `unlabelled` file (comma-separated, in order) as windows without labels
    (Features.without_labels). A question already read, with the same context, is left out and counted."""
    from .data import load_squad
    from .features import make_features
    examples, report = load_squad(train)
    print(report)
    feats = make_features(examples, tokenizer, max_length, stride)
    print(f"{len(examples)} questions -> {len(feats)} windows of at most {max_length} tokens")
    # a v2 file repeats its v1.1 twin's answerable questions: those are already labelled windows
    seen = {(e.question, e.context) for e in examples}
    for path in unlabelled_files(unlabelled):
        extra, report = load_squad(path)
        print(report)
        new = [e for e in extra if (e.question, e.context) not in seen]
        seen.update((e.question, e.context) for e in new)
        more = make_features(new, tokenizer, max_length, stride).without_labels()
        print(f"{len(new)} unlabelled questions of {Path(path.split('#')[0]).name} -> {len(more)} more windows (they "
              f"learn from the teacher alone); {len(extra) - len(new)} left out: already among the windows before")
        feats = feats + more
    return feats


@torch.no_grad()
def save_teacher_outputs(teacher, tokenizer, feats, out, *, max_length: int, stride: int, teacher_name: str = "",
                         sources: str = "", precision: str = "fp32", batch_size: int = 64,
                         dtype: torch.dtype = torch.float16) -> Path:
    """Run `teacher` once over `feats` and write its start/end logits (in `dtype`) with what they depend on."""
    from .inference import window_logits, with_precision
    model = with_precision(teacher, precision)
    start, end = window_logits(model, feats, tokenizer.pad_token_id, batch_size)
    config = teacher.config
    meta = {"format": FORMAT, "windows": windows_digest(feats), "n_windows": len(feats),
            "tokenizer": tokenizer_digest(tokenizer), "vocab_size": len(tokenizer),
            "max_length": max_length, "stride": stride, "sources": sources, "precision": precision,
            "teacher": teacher_name, "teacher_weights": digest(teacher),
            "teacher_config": {"num_hidden_layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
                               "num_attention_heads": config.num_attention_heads}}
    tensors = {"start_logits": torch.cat(start).to(dtype), "end_logits": torch.cat(end).to(dtype),
               "lengths": torch.tensor([len(s) for s in start], dtype=torch.int32)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = save_tensors(tensors, metadata={k: json.dumps(v) for k, v in meta.items()})
    # FILE.safetensors.gz: gzip'd (fp16 logits halve; a committed file stays small), mtime 0 so reruns are identical
    out.write_bytes(gzip.compress(data, 9, mtime=0) if out.name.endswith(".gz") else data)
    return out


def _read(path) -> tuple[dict, bytes]:
    """(metadata, the safetensors bytes) of a file, gunzipped when its name ends in .gz."""
    raw = Path(path).read_bytes()
    raw = gzip.decompress(raw) if str(path).endswith(".gz") else raw
    n = int.from_bytes(raw[:8], "little")   # safetensors: an 8-byte header length, then the JSON header
    return json.loads(raw[8:8 + n]).get("__metadata__") or {}, raw


def read_metadata(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"teacher outputs {path}: no such file. Write it with python -m kit teacher-outputs "
                                f"--teacher DIR --train FILE --out {path}")
    try:
        raw = _read(path)[0]
    except (OSError, ValueError, EOFError) as e:
        raise TeacherOutputsMismatch(f"teacher outputs {path}: not a readable safetensors file ({e}). Write it with "
                                     f"python -m kit teacher-outputs.") from None
    meta = {k: json.loads(v) for k, v in raw.items()}
    if meta.get("format") != FORMAT:
        raise TeacherOutputsMismatch(f"teacher outputs {path}: not a file of kit teacher-outputs (format "
                                     f"{meta.get('format')!r}, expected {FORMAT!r}). Write it with python -m kit "
                                     f"teacher-outputs.")
    return meta


class SavedTeacher(nn.Module):
    """A frozen teacher that answers from a file of saved logits (see the module docstring).

    teacher = SavedTeacher.load(path).for_windows(feats, tokenizer, max_length, stride)
    DistillLoss(teacher, student, weights=DistillWeights(attention=0, hidden=0))
    The logits are buffers: they move with the loss, and the checkpoint's identity (its digest of the loss's frozen
    state) covers them, so a run cannot be resumed with another file."""

    def __init__(self, start_logits, end_logits, lengths, meta: dict, path: str = ""):
        super().__init__()
        self.register_buffer("start_logits", start_logits)
        self.register_buffer("end_logits", end_logits)
        self.register_buffer("lengths", lengths)
        self.meta, self.path = meta, path
        self.config = SimpleNamespace(**meta["teacher_config"])
        self._ends = torch.cumsum(lengths.long(), 0).tolist()
        self._rows = None   # {token ids of a window: its index}, set by for_windows

    @classmethod
    def load(cls, path) -> "SavedTeacher":
        meta = read_metadata(path)
        tensors = load_tensors(_read(path)[1])
        return cls(**{k: tensors[k] for k in ("start_logits", "end_logits", "lengths")}, meta=meta, path=str(path))

    def for_windows(self, feats, tokenizer, max_length: int, stride: int) -> "SavedTeacher":
        """Check that the file was computed on exactly these windows (refused otherwise, with the fix); bind it."""
        m, fix = self.meta, (f"write outputs for this run with python -m kit teacher-outputs --teacher DIR --train "
                             f"FILE --max-length {max_length} --stride {stride} (the run's files and windows)")
        for field, ours in (("max_length", max_length), ("stride", stride)):
            if m[field] != ours:
                raise TeacherOutputsMismatch(f"teacher outputs {self.path}: field {field} is {m[field]}, this run's "
                                             f"is {ours}: {fix}.")
        if m["tokenizer"] != tokenizer_digest(tokenizer):
            raise TeacherOutputsMismatch(f"teacher outputs {self.path}: field tokenizer differs from this run's "
                                         f"({m['vocab_size']} vs {len(tokenizer)} tokens, or other ids): token ids "
                                         f"would not mean the same. Use the tokenizer of the teacher that wrote it, "
                                         f"or {fix}.")
        if m["n_windows"] != len(feats) or m["windows"] != windows_digest(feats):
            raise TeacherOutputsMismatch(f"teacher outputs {self.path}: field windows differs: the file holds "
                                         f"{m['n_windows']} windows of {m['sources'] or 'other files'}, this run has "
                                         f"{len(feats)} other ones: {fix}.")
        self._rows = {}
        for k, ids in enumerate(feats.input_ids):
            self._rows.setdefault(tuple(ids), k)
        return self

    def window(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The saved (start, end) logits of window k, as fp32."""
        a = self._ends[k - 1] if k else 0
        return self.start_logits[a:self._ends[k]].float(), self.end_logits[a:self._ends[k]].float()

    def forward(self, input_ids, attention_mask=None, output_attentions=False, output_hidden_states=False, **_):
        if output_attentions or output_hidden_states:
            raise ValueError(f"teacher outputs {self.path} hold start/end logits only: the attention and hidden terms "
                             f"need the live teacher. Set --attention-weight 0 --hidden-weight 0 (DistillWeights("
                             f"attention=0, hidden=0)), or distil from the teacher itself (no --teacher-outputs).")
        if self._rows is None:
            raise RuntimeError("SavedTeacher.for_windows(feats, ...) binds the file to the run's windows first.")
        width = input_ids.shape[1]
        lengths = (attention_mask.sum(1) if attention_mask is not None
                   else torch.full((len(input_ids),), width)).tolist()
        start = torch.full((len(input_ids), width), NEG, dtype=torch.float32, device=input_ids.device)
        end = start.clone()
        for row, (ids, n) in enumerate(zip(input_ids.tolist(), lengths)):
            k = self._rows.get(tuple(ids[:n]))
            if k is None:
                raise TeacherOutputsMismatch(f"teacher outputs {self.path}: a batch row ({n} tokens) is none of the "
                                             f"file's windows; bind the file to the windows you train on "
                                             f"(SavedTeacher.for_windows).")
            s, e = self.window(k)
            start[row, :n], end[row, :n] = s, e
        return SimpleNamespace(start_logits=start, end_logits=end)


def describe(path) -> str:
    """One line on what a file of teacher outputs holds (printed where a run reads one)."""
    m = read_metadata(path)
    size = Path(path).stat().st_size / 1e6
    return (f"teacher outputs {path}: {m['n_windows']} windows of {m['sources']} (max_length {m['max_length']}, "
            f"stride {m['stride']}), start/end logits of {m['teacher'] or 'a teacher'} "
            f"({m['teacher_config']['num_hidden_layers']} layers, run in {m['precision']}), {size:.1f} MB")
