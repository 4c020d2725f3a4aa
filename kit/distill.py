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

Two loss arithmetics (`normalisation`):
  "masked"  (the kit's default) windows padded only to the batch's longest; every mean, softmax and cross-entropy
            over real tokens alone (real query × real key for the maps); the teacher runs as the loop runs the
            student (under autocast where mixed precision is on).
  "padded"  the paper's code (AdrianBZG/tinyroberta-distillation-qa-es at 29bad11) as it computes: every window
            padded to `pad_to` (its max_length, 384); plain means (nn.MSELoss) over the whole padded tensors, padded
            query rows, keys and tokens included; KL and task cross-entropy over all positions (padding gets
            probability); the student's maps as HF's eager attention returns them in train mode (after dropout);
            the teacher outside autocast (fp32), as the reference runs it beside an accelerate-prepared student.
  The kit prefers masking: a padded position is no part of the text, so "padded" lets how much padding a batch
  happens to carry change the weight of the dense terms against the task and logit terms (notebook 02 measures it).

Less work per update. The paper's layer map reads 6 of the teacher's 24 attention maps and 7 of its 25 hidden
states. With `teacher_outputs="mapped"` (the default) the teacher computes a map only in the layers the map reads
(`use_attention_maps(..., layers=...)`: the other layers run PyTorch's fused SDPA kernel and return none) and keeps
only the hidden states the map reads (transformers' `output_hidden_states=[indices]`, where the installed version
supports it; older ones return all). `teacher_outputs="all"` is the plain way, every map and state: the same loss,
kept to measure the difference (`kit bench --paper-pair --train-step --teacher-outputs mapped all`).
"""
from __future__ import annotations

import contextlib
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
        dropped = nn.functional.dropout(probs, p=dropout, training=module.training)
        out = torch.matmul(dropped, value)
        # normalisation="padded" reads the map eager attention returns (after dropout in train mode), as the paper's
        # code does; the kit's default compares the clean probabilities
        if not return_scores and getattr(module, "kit_map_after_dropout", False):
            probs = dropped
        return out.transpose(1, 2).contiguous(), (scores if return_scores else probs)
    return attention


ATTENTION_IMPLEMENTATIONS = {"probs": "kit_probs", "scores": "kit_scores"}
for _kind, _name in ATTENTION_IMPLEMENTATIONS.items():
    AttentionInterface.register(_name, _attention(_kind == "scores"))
    AttentionMaskInterface.register(_name, eager_mask)


def use_attention_maps(model, kind: str = "probs", layers=None, after_dropout: bool = False):
    """Make `model` return pre-dropout probabilities ("probs") or pre-softmax scores ("scores") as attentions: of
    every layer, or only of `layers` (0-based indices), the others running SDPA and returning no map (so
    `outputs.attentions` then holds the maps of `layers` alone, in order; `attention_maps` indexes them).
    after_dropout: return the probabilities after attention dropout (train mode), as HF's eager attention does."""
    if kind not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attention kind {kind!r}: choose 'probs' (the paper) or 'scores' (TinyBERT).")
    model.set_attn_implementation(ATTENTION_IMPLEMENTATIONS[kind])
    for module in model.modules():
        if type(module).__name__.endswith("SelfAttention") and hasattr(module, "layer_idx"):
            module.kit_no_map = layers is not None and module.layer_idx not in layers
            module.kit_map_after_dropout = after_dropout
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


NORMALISATIONS = ("masked", "padded")


def pad_to_length(batch: dict, length: int, pad_id: int) -> dict:
    """`batch` with every window padded to `length` tokens (pad_id, mask 0), as the paper's code pads them all."""
    width = batch["input_ids"].shape[1]
    if width > length:
        raise ValueError(f"a window of {width} tokens is longer than pad_to={length}: give the windows' max_length.")
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
    return {k: (nn.functional.pad(v, (0, length - width), value=fill[k]) if k in fill else v)
            for k, v in batch.items()}


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
                 heads: str = "match", teacher_outputs: str = "mapped", normalisation: str = "masked",
                 pad_to: int | None = None):
        super().__init__()
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation {normalisation!r}: choose 'masked' (real tokens only, the kit's) or "
                             f"'padded' (the paper's code: windows padded to max_length, padding in every mean).")
        if normalisation == "padded" and not pad_to:
            raise ValueError("normalisation 'padded' pads every window to the run's max_length: pass pad_to=max_length.")
        if normalisation == "padded" and hasattr(teacher, "for_windows"):   # a kit.teacher_outputs.SavedTeacher
            raise ValueError("normalisation 'padded' needs the live teacher: saved teacher outputs hold no logits "
                             "for padded positions (use normalisation 'masked' with --teacher-outputs).")
        self.normalisation, self.pad_to = normalisation, pad_to
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
            use_attention_maps(student, attention, after_dropout=normalisation == "padded")
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
        terms = self.terms(student, batch)
        loss = sum(getattr(self.weights, name) * value for name, value in terms.items())
        return loss, {k: v.detach() for k, v in terms.items()}

    def terms(self, student, batch) -> dict:
        """{term: its value, still in the graph} for one batch (forward sums them with their weights)."""
        w, padded = self.weights, self.normalisation == "padded"
        if padded:
            batch = pad_to_length(batch, self.pad_to, student.config.pad_token_id)
        labels = {k: batch[k] for k in ("start_positions", "end_positions")}
        inputs = {k: v for k, v in batch.items() if k not in labels}
        mask = None if padded else inputs["attention_mask"]     # None: every mean over all positions
        want = dict(output_attentions=bool(w.attention), output_hidden_states=bool(w.hidden))
        s = student(**inputs, **want)
        terms = {"task": task_ce(s.start_logits, s.end_logits, labels["start_positions"], labels["end_positions"], mask)}
        if w.logits or w.attention or w.hidden:
            device_type = inputs["input_ids"].device.type
            # "padded": the teacher in fp32, outside the loop's autocast, as the paper's code runs it
            with torch.no_grad(), torch.autocast(device_type, enabled=False) if padded else contextlib.nullcontext():
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
        return terms


def term_gradient_norms(loss_fn: DistillLoss, student, batch) -> dict:
    """{term: the norm of its weighted gradient over the student's weights and the projection} on one batch: how
    hard each term pulls, which its value alone does not say."""
    params = [p for p in list(student.parameters()) + list(loss_fn.projections.parameters()) if p.requires_grad]
    terms = loss_fn.terms(student, batch)
    norms = {}
    for k, (name, value) in enumerate(terms.items()):
        grads = torch.autograd.grad(getattr(loss_fn.weights, name) * value, params, retain_graph=k < len(terms) - 1,
                                    allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))
    return norms

def distill(teacher, student, features, cfg, *, pad_id: int, stages: str = "one", weights: DistillWeights | None = None,
            layer_map: LayerMap | None = None, temperature: float = 1.0, attention: str = "probs",
            projection: str = "shared", heads: str = "match", evaluate=None, save_extra=None,
            inputs: dict | None = None, normalisation: str = "masked", pad_to: int | None = None) -> list[dict]:
    """Distil `teacher` into `student` with kit.train.train; return the log of every stage.

    stages="one" (the paper): every term of `weights` from the first step. stages="two" (TinyBERT, deepset):
    first the student's layers learn to imitate the teacher's (the attention and hidden weights, in
    cfg.out_dir/stage1), then its prediction layer (the task and logits weights), each for cfg.epochs.
    Only the student is saved, in cfg.out_dir: the projection lives in the loss, so the saved model is a
    plain AutoModelForQuestionAnswering. `inputs`: what else decides the student (e.g. its init), for
    kit.train.train to record and check on a resume. normalisation, pad_to: the loss arithmetic (DistillLoss).
    The projection's initial weights come from the random state at the call: seed it (kit distill seeds
    cfg.seed before it builds the student, so both come from the run's seed).
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
        loss_fn = DistillLoss(teacher, student, layer_map, stage_weights, temperature, attention, projection, heads,
                              normalisation=normalisation, pad_to=pad_to)
        # Before the last stage the QA head has not been trained, so F1 would choose nothing: no evaluation.
        history += train(student, features, stage_cfg, pad_id=pad_id, loss_fn=loss_fn,
                         evaluate=evaluate if last else None, save_extra=save_extra, inputs=inputs)
    return history



def compare_arithmetics(teacher, student, batch, *, pad_to: int, projection_state: dict | None = None,
                        **loss_kwargs) -> list[dict]:
    """One batch through both loss arithmetics (DistillLoss's normalisation), the student in eval mode (no dropout,
    so only the arithmetic differs): per term its value under each, their ratio, and its share of the summed
    gradient norms under each (term_gradient_norms). `projection_state`: the trained projection's weights (both
    arithmetics use it; without it, one fresh projection for both)."""
    was_training = student.training
    student.eval()
    values, shares, shared = {}, {}, None
    for arithmetic in NORMALISATIONS:
        loss_fn = DistillLoss(teacher, student, normalisation=arithmetic, pad_to=pad_to, **loss_kwargs)
        if projection_state is not None:
            loss_fn.load_state_dict(projection_state, strict=False)
        elif shared is not None:
            loss_fn.projections.load_state_dict(shared)
        shared = loss_fn.projections.state_dict()
        with torch.no_grad():
            values[arithmetic] = {k: float(v) for k, v in loss_fn.terms(student, batch).items()}
        norms = term_gradient_norms(loss_fn, student, batch)
        shares[arithmetic] = {k: v / sum(norms.values()) for k, v in norms.items()}
    use_attention_maps(student, loss_kwargs.get("attention", "probs"))   # back to the clean maps
    student.zero_grad(set_to_none=True)
    student.train(was_training)
    return [{"term": k, "masked": values["masked"][k], "padded": values["padded"][k],
             "padded / masked": values["padded"][k] / values["masked"][k],
             "gradient share, masked": shares["masked"][k], "gradient share, padded": shares["padded"][k]}
            for k in values["masked"]]


# ----------------------------------------------------------------------------- what a stage trained (notebook 02)
def part_of(name: str) -> str:
    """The part of a BERT-like QA model that a parameter's name belongs to: "embeddings", "QA head", "layer <i>"
    (0-based) or "other"."""
    if "embeddings" in name:
        return "embeddings"
    if "qa_outputs" in name:
        return "QA head"
    return "layer " + name.split("layer.")[1].split(".")[0] if "layer." in name else "other"


def changed_by_part(model, reference: dict) -> dict[str, tuple[int, int]]:
    """{part: (tensors that differ from `reference`, tensors)} over `model`'s named parameters, parts in sorted order
    (`part_of`); `reference` maps the same names to tensors (e.g. the student saved after stage 1)."""
    counts = {}
    for name, p in model.named_parameters():
        changed, total = counts.get(part_of(name), (0, 0))
        differs = not torch.equal(p.detach().cpu(), reference[name].detach().cpu())
        counts[part_of(name)] = (changed + differs, total + 1)
    return dict(sorted(counts.items()))


def loss_gap(log: list[dict], weights: "DistillWeights", terms) -> float:
    """The largest |loss − Σ weight·term| over a log's training lines, the sum over `terms` only: about 0 when the
    logged loss is exactly those terms (a stage of distill(stages="two") trains with its own half of the terms)."""
    return max(abs(e["loss"] - sum(getattr(weights, t) * e[t] for t in terms)) for e in log if e["kind"] == "train")
