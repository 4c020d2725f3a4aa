"""Dense (layer-to-layer) distillation as a loss for the one training loop.

    loss_fn = DistillLoss(teacher, student, LayerMap.uniform(6, 24))
    train(student, features, cfg, pad_id=..., loss_fn=loss_fn)      # kit.train.train, as for a teacher

For each batch the frozen teacher (eval mode, no gradients) and the student both read the windows;
the loss is the weighted sum of
    task        cross-entropy of the gold start/end tokens            (kit.losses.task_ce)
    logits      KL(teacher ‖ student) on start and on end logits      (kit.losses.logit_kd_loss, ·T²)
    attention   Σ over mapped layers of attention_mse                 (kit.losses.attention_mse)
    hidden      Σ over mapped hidden states of hidden_mse, the student's projected by a learned Linear
The paper uses all four with weight 1, T = 1, one shared projection, LayerMap.uniform.

Attention maps. Eager attention returns the maps *after dropout* in train mode, which would make the
target noisy. We register two attention functions that compute exactly what eager does but return
  "probs":  the softmax probabilities before dropout (what the paper's code compares), or
  "scores": the scaled scores q·kᵀ/√d before softmax (TinyBERT's choice; they are ~100x larger, so the
            attention term weighs more against the task loss).
Each is registered together with the eager mask function: without it, the padding mask is silently
dropped.

Less work per update. The paper's layer map reads 6 of the teacher's 24 attention maps and 7 of its 25 hidden
states. With `teacher_outputs="mapped"` (the default) the teacher computes a map only in the layers the map reads
(`use_attention_maps(..., layers=...)`: the other layers run PyTorch's fused SDPA kernel and return none) and keeps
only the hidden states the map reads (transformers' `output_hidden_states=[indices]`, where the installed version
supports it; older ones return all). `teacher_outputs="all"` is the plain way, every map and state: the same loss,
kept to measure the difference (`kit bench --paper-pair --train-step --teacher-outputs mapped all`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from .layermap import LayerMap
from .losses import attention_mse, hidden_mse, logit_kd_loss, task_ce
from .train import train


def _attention(return_scores: bool):
    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        if getattr(module, "kit_no_map", False):   # a layer whose map nobody reads: the fused kernel, no map
            kwargs.pop("output_attentions", None)   # (asked of the model, not of this layer: SDPA would warn)
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                          **kwargs)
        scaling = query.size(-1) ** -0.5 if scaling is None else scaling
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
        masked = scores + attention_mask if attention_mask is not None else scores
        probs = nn.functional.softmax(masked, dim=-1)
        out = torch.matmul(nn.functional.dropout(probs, p=dropout, training=module.training), value)
        return out.transpose(1, 2).contiguous(), (scores if return_scores else probs)
    return attention


ATTENTION_IMPLEMENTATIONS = {"probs": "kit_probs", "scores": "kit_scores"}
for _kind, _name in ATTENTION_IMPLEMENTATIONS.items():
    AttentionInterface.register(_name, _attention(_kind == "scores"))
    AttentionMaskInterface.register(_name, eager_mask)


def use_attention_maps(model, kind: str = "probs", layers=None):
    """Make `model` return pre-dropout probabilities ("probs") or pre-softmax scores ("scores") as attentions: of
    every layer, or only of `layers` (0-based indices), the others running SDPA and returning no map (so
    `outputs.attentions` then holds the maps of `layers` alone, in order; `attention_maps` indexes them)."""
    if kind not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attention kind {kind!r}: choose 'probs' (the paper) or 'scores' (TinyBERT).")
    model.set_attn_implementation(ATTENTION_IMPLEMENTATIONS[kind])
    for module in model.modules():
        if type(module).__name__.endswith("SelfAttention") and hasattr(module, "layer_idx"):
            module.kit_no_map = layers is not None and module.layer_idx not in layers
    return model


def attention_maps(outputs, n_layers: int, layers=None) -> dict:
    """{layer index: its map} from a forward's `attentions`: all `n_layers`, or (after use_attention_maps with
    `layers`) the maps of those layers in order."""
    maps = outputs.attentions
    if layers is not None and len(maps) == len(layers) != n_layers:
        return dict(zip(sorted(layers), maps))
    return dict(enumerate(maps))


def check_same_tokenizer(teacher_tokenizer, student_tokenizer):
    """Dense distillation compares the same token positions, so both models must share one vocabulary."""
    if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise ValueError(f"teacher and student tokenizers differ ({len(teacher_tokenizer)} vs "
                         f"{len(student_tokenizer)} tokens): token positions would not line up. Build the student "
                         f"with kit.student.build_student (it keeps the teacher's vocabulary) and save the "
                         f"teacher's tokenizer beside it.")


@dataclass
class DistillWeights:
    task: float = 1.0
    logits: float = 1.0
    attention: float = 1.0
    hidden: float = 1.0


class DistillLoss(nn.Module):
    """loss_fn(student, batch) -> (loss, {term: value}) for kit.train.train; holds the frozen teacher
    and the trainable projection(s) (the loop trains and checkpoints them, and never saves them
    with the student)."""

    def __init__(self, teacher, student, layer_map: LayerMap | None = None, weights: DistillWeights | None = None,
                 temperature: float = 1.0, attention: str = "probs", projection: str = "shared",
                 heads: str = "match", teacher_outputs: str = "mapped"):
        super().__init__()
        n_s, n_t = student.config.num_hidden_layers, teacher.config.num_hidden_layers
        self.layer_map = (layer_map or LayerMap.uniform(n_s, n_t)).validate(n_s, n_t)
        self.weights = weights or DistillWeights()
        self.temperature, self.heads = temperature, heads
        self.attention, self.projection = attention, projection   # recorded with a checkpoint (kit.checkpoint)
        self.teacher = teacher.eval().requires_grad_(False)
        if teacher_outputs not in ("mapped", "all"):
            raise ValueError(f"teacher_outputs {teacher_outputs!r}: choose 'mapped' (only what the layer map reads) "
                             f"or 'all'.")
        # what the teacher computes and keeps for the loss (a choice of speed and memory: the loss is the same)
        mapped = teacher_outputs == "mapped"
        self.teacher_maps = sorted({j for _, j in self.layer_map.attention}) if mapped else None
        self.teacher_hidden = sorted({j for _, j in self.layer_map.hidden}) if mapped else True
        if self.weights.attention:
            use_attention_maps(self.teacher, attention, self.teacher_maps)
            use_attention_maps(student, attention)
            if heads == "match" and student.config.num_attention_heads != teacher.config.num_attention_heads:
                raise ValueError(f"student has {student.config.num_attention_heads} heads, teacher "
                                 f"{teacher.config.num_attention_heads}: use the same count or heads='mean'.")
        d_s, d_t = student.config.hidden_size, teacher.config.hidden_size
        n_proj = {"shared": 1, "per_layer": len(self.layer_map.hidden)}[projection]
        self.projections = nn.ModuleList(nn.Linear(d_s, d_t) for _ in range(n_proj if d_s != d_t else 0))

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher stays in eval mode: no dropout in the targets
        return self

    def forward(self, student, batch):
        w = self.weights
        labels = {k: batch[k] for k in ("start_positions", "end_positions")}
        inputs = {k: v for k, v in batch.items() if k not in labels}
        mask = inputs["attention_mask"]
        want = dict(output_attentions=bool(w.attention), output_hidden_states=bool(w.hidden))
        s = student(**inputs, **want)
        terms = {"task": task_ce(s.start_logits, s.end_logits, labels["start_positions"], labels["end_positions"], mask)}
        if w.logits or w.attention or w.hidden:
            with torch.no_grad():
                t = self.teacher(**inputs, output_attentions=bool(w.attention),
                                 output_hidden_states=self.teacher_hidden if w.hidden else False)
        if w.logits:
            T = self.temperature
            terms["logits"] = (logit_kd_loss(s.start_logits, t.start_logits, T, mask)
                               + logit_kd_loss(s.end_logits, t.end_logits, T, mask))
        if w.attention:
            t_maps = attention_maps(t, self.teacher.config.num_hidden_layers, self.teacher_maps)
            terms["attention"] = sum(attention_mse(s.attentions[i], t_maps[j], mask, self.heads)
                                     for i, j in self.layer_map.attention)
        if w.hidden:
            proj = lambda k: self.projections[k % len(self.projections)] if len(self.projections) else None
            terms["hidden"] = sum(hidden_mse(s.hidden_states[i], t.hidden_states[j], mask, proj(k))
                                  for k, (i, j) in enumerate(self.layer_map.hidden))
        loss = sum(getattr(w, name) * value for name, value in terms.items())
        return loss, {k: v.detach() for k, v in terms.items()}


def distill(teacher, student, features, cfg, *, pad_id: int, stages: str = "one", weights: DistillWeights | None = None,
            layer_map: LayerMap | None = None, temperature: float = 1.0, attention: str = "probs",
            projection: str = "shared", heads: str = "match", evaluate=None, save_extra=None,
            inputs: dict | None = None) -> list[dict]:
    """Distil `teacher` into `student` with kit.train.train; return the log of every stage.

    stages="one" (the paper): every term of `weights` from the first step. stages="two" (TinyBERT, deepset):
    first the student's layers learn to imitate the teacher's (the attention and hidden weights, in
    cfg.out_dir/stage1), then its prediction layer (the task and logits weights), each for cfg.epochs.
    Only the student is saved, in cfg.out_dir: the projection lives in the loss, so the saved model is a
    plain AutoModelForQuestionAnswering. `inputs`: what else decides the student (e.g. its init), for
    kit.train.train to record and check on a resume.
    """
    w = weights or DistillWeights()
    if stages == "one":
        plan = (w,)
    elif stages == "two":
        plan = (DistillWeights(task=0.0, logits=0.0, attention=w.attention, hidden=w.hidden),
                DistillWeights(task=w.task, logits=w.logits, attention=0.0, hidden=0.0))
    else:
        raise ValueError(f"stages {stages!r}: choose 'one' (the paper) or 'two' (TinyBERT).")
    history = []
    for k, stage_weights in enumerate(plan):
        last = k == len(plan) - 1
        stage_cfg = cfg if last else cfg.replace(out_dir=f"{cfg.out_dir}/stage{k + 1}")
        loss_fn = DistillLoss(teacher, student, layer_map, stage_weights, temperature, attention, projection, heads)
        # Before the last stage the QA head has not been trained, so F1 would choose nothing: no evaluation.
        history += train(student, features, stage_cfg, pad_id=pad_id, loss_fn=loss_fn,
                         evaluate=evaluate if last else None, save_extra=save_extra, inputs=inputs)
    return history

