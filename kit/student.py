"""Student construction: a smaller model of the teacher's kind that reads the teacher's tokens.

    student = build_student(teacher, num_hidden_layers=6, hidden_size=512, num_attention_heads=16,
                            intermediate_size=3072)                     # the paper: random initialisation
    student = build_student(teacher, num_hidden_layers=6, init="teacher_layers")   # DistilBERT style

The student copies everything from the teacher's config that is not its shape: the architecture, the
vocabulary (dense distillation compares the same token positions, so the tokenizer is shared), the
position embeddings and the padding index. `init` chooses where its weights come from:
  "random"          fresh weights from the config's initialiser (the paper's SpanishTinyRoBERTa);
  "teacher_layers"  the teacher's embeddings, QA head and every k-th encoder layer (DistilBERT keeps
                    every other layer). Only possible when the widths match, since a layer's weights
                    are square in the hidden size.
"""
from __future__ import annotations

import copy
import re

from .layermap import LayerMap
from .models import build_qa_model

LAYER_INDEX = re.compile(r"(\.layers?\.)(\d+)\.")

# The paper's SpanishTinyRoBERTa, for a RoBERTa-large teacher (24×1024×16).
PAPER_STUDENT = dict(num_hidden_layers=6, hidden_size=512, num_attention_heads=16, intermediate_size=3072)


def student_config(teacher_config, *, num_hidden_layers: int, hidden_size: int | None = None,
                   num_attention_heads: int | None = None, intermediate_size: int | None = None, **overrides):
    """The teacher's config with a new shape; unspecified sizes keep the teacher's (FFN scales with width)."""
    cfg = copy.deepcopy(teacher_config)
    hidden = hidden_size or teacher_config.hidden_size
    heads = num_attention_heads or teacher_config.num_attention_heads
    if hidden % heads:
        raise ValueError(f"student hidden_size {hidden} is not divisible by num_attention_heads {heads}.")
    if not 1 <= num_hidden_layers:
        raise ValueError(f"a student needs at least one layer, not {num_hidden_layers}.")
    ratio = teacher_config.intermediate_size / teacher_config.hidden_size
    cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads = num_hidden_layers, hidden, heads
    cfg.intermediate_size = intermediate_size or int(ratio * hidden)
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"student config has no field {key!r}.")
        setattr(cfg, key, value)
    return cfg


def teacher_layers_for(n_student: int, n_teacher: int) -> list[int]:
    """Which teacher layers a "teacher_layers" student starts from: the top layer of each block of
    k = n_teacher / n_student (for 12 → 6: 1, 3, 5, 7, 9, 11), the same layers that the uniform
    LayerMap asks it to imitate."""
    return [t for _, t in LayerMap.uniform(n_student, n_teacher).attention]


def build_student(teacher, *, num_hidden_layers: int, hidden_size: int | None = None,
                  num_attention_heads: int | None = None, intermediate_size: int | None = None,
                  init: str = "random", teacher_layers: list[int] | None = None,
                  attn_implementation: str = "eager", **overrides):
    """A student QA model for `teacher` (see the module docstring)."""
    cfg = student_config(teacher.config, num_hidden_layers=num_hidden_layers, hidden_size=hidden_size,
                         num_attention_heads=num_attention_heads, intermediate_size=intermediate_size, **overrides)
    student = build_qa_model(cfg, attn_implementation=attn_implementation)
    if init == "random":
        return student
    if init != "teacher_layers":
        raise ValueError(f"init {init!r}: choose 'random' (the paper) or 'teacher_layers' (DistilBERT style).")
    t_cfg = teacher.config
    for field in ("hidden_size", "num_attention_heads", "intermediate_size"):
        if getattr(cfg, field) != getattr(t_cfg, field):
            raise ValueError(f"init='teacher_layers' copies whole layers, so the student's {field} must equal the "
                             f"teacher's ({getattr(cfg, field)} vs {getattr(t_cfg, field)}); use init='random' "
                             f"for a narrower student.")
    layers = teacher_layers or teacher_layers_for(num_hidden_layers, t_cfg.num_hidden_layers)
    if len(layers) != num_hidden_layers or not all(0 <= t < t_cfg.num_hidden_layers for t in layers):
        raise ValueError(f"teacher_layers {layers}: give {num_hidden_layers} teacher layer indices in "
                         f"0..{t_cfg.num_hidden_layers - 1}.")
    t_state = teacher.state_dict()
    state = {}
    for name in student.state_dict():
        # "roberta.encoder.layer.<i>.…" (BERT, RoBERTa) or "model.layers.<i>.…" (ModernBERT): take teacher layer layers[i]
        source = LAYER_INDEX.sub(lambda m: f"{m.group(1)}{layers[int(m.group(2))]}.", name, count=1)
        state[name] = t_state[source].clone()
    student.load_state_dict(state)
    return student
