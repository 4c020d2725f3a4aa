"""The distillation losses, each a short function with its formula. Shapes: B windows, L tokens, H heads.

Notation: z_s, z_t are student/teacher logits over the L tokens of a window (start or end), T the
temperature, p = softmax(z / T); m ∈ {0,1}^L marks real (non-padding) tokens.

  logit_kd_loss      T² · (1/B) Σ_b Σ_i p_t,i log(p_t,i / p_s,i)       KL(teacher ‖ student), the paper's
                     nn.KLDivLoss(reduction="batchmean")(log_softmax(z_s/T), softmax(z_t/T)) · T²
  soft_cross_entropy T² · (1/B) Σ_b Σ_i −p_t,i log p_s,i               TinyBERT's prediction-layer loss:
                     KL plus the teacher's entropy (same gradient for the student, different value)
  attention_mse      mean over real (query, key) pairs and heads of (A_s − A_t)²
  hidden_mse         mean over real tokens and features of (W h_s + b − h_t)²

Given `attention_mask`, padding never counts: padded positions get a very negative logit before any softmax,
and are left out of every mean (the kit's arithmetic, DistillLoss(normalisation="masked")). Without it, every
position counts, padding included: the arithmetic of the paper's code, which pads every window to 384 tokens
(DistillLoss(normalisation="padded") passes no mask). Attention maps are compared either as post-softmax probabilities (what the paper's code
reads from `outputs.attentions`) or as pre-softmax scores (TinyBERT); both are just tensors here —
`kit.distill` decides which ones it collects.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

NEG = -1e4  # "minus infinity" that stays finite in fp16
UNLABELLED = -100  # a window's start/end label when nobody gave its answer (PyTorch's usual ignore index)


def mask_logits(logits: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    return logits if attention_mask is None else logits.masked_fill(attention_mask == 0, NEG)


def task_ce(start_logits, end_logits, start_positions, end_positions, attention_mask=None):
    """(CE(start) + CE(end)) / 2, the usual extractive-QA loss (HF's QA heads compute the same), averaged over
    the windows that have a label: an UNLABELLED window counts in no term here (in distillation, the teacher's
    logits teach it), and a batch without any label gives 0."""
    s, e = mask_logits(start_logits, attention_mask), mask_logits(end_logits, attention_mask)
    labelled = start_positions != UNLABELLED
    if not labelled.any():
        return (s.sum() + e.sum()) * 0.0          # zero, but still part of the graph
    return (F.cross_entropy(s[labelled], start_positions[labelled])
            + F.cross_entropy(e[labelled], end_positions[labelled])) / 2


def logit_kd_loss(student_logits, teacher_logits, temperature: float = 1.0, attention_mask=None):
    """KL(teacher ‖ student) of the token distributions, batch mean, times T² (Hinton et al.)."""
    T = temperature
    log_p_s = F.log_softmax(mask_logits(student_logits, attention_mask).float() / T, dim=-1)
    p_t = F.softmax(mask_logits(teacher_logits, attention_mask).float() / T, dim=-1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * T * T


def soft_cross_entropy(student_logits, teacher_logits, temperature: float = 1.0, attention_mask=None):
    """Cross-entropy against the teacher's soft targets, batch mean, times T²."""
    T = temperature
    log_p_s = F.log_softmax(mask_logits(student_logits, attention_mask).float() / T, dim=-1)
    p_t = F.softmax(mask_logits(teacher_logits, attention_mask).float() / T, dim=-1)
    return -(p_t * log_p_s).sum(-1).mean() * T * T


def attention_mse(student_att, teacher_att, attention_mask=None, heads: str = "match"):
    """MSE between attention maps [B, H, L, L] over real query/key pairs.

    heads="match": the head counts must be equal (head h against head h);
    heads="mean":  average each model's heads first, for students with fewer heads.
    """
    if student_att.shape[1] != teacher_att.shape[1]:
        if heads != "mean":
            raise ValueError(f"the student has {student_att.shape[1]} attention heads and the teacher "
                             f"{teacher_att.shape[1]}: give the student the same number of heads, or compare "
                             f"head-averaged maps with heads='mean'.")
    if heads == "mean":
        student_att, teacher_att = student_att.mean(1, keepdim=True), teacher_att.mean(1, keepdim=True)
    diff = (student_att.float() - teacher_att.float()) ** 2
    if attention_mask is None:
        return diff.mean()
    m = attention_mask.float()
    pairs = m[:, None, :, None] * m[:, None, None, :]          # [B, 1, L, L]: real query × real key
    return (diff * pairs).sum() / (pairs.sum() * diff.shape[1])


def hidden_mse(student_hidden, teacher_hidden, attention_mask=None, projection=None):
    """MSE between hidden states [B, L, D] over real tokens, the student's projected to the teacher's width."""
    if projection is not None:
        student_hidden = projection(student_hidden)
    if student_hidden.shape[-1] != teacher_hidden.shape[-1]:
        raise ValueError(f"student hidden width {student_hidden.shape[-1]} ≠ teacher {teacher_hidden.shape[-1]}: "
                         f"pass a projection (nn.Linear(student width, teacher width)).")
    diff = ((student_hidden.float() - teacher_hidden.float()) ** 2).mean(-1)   # [B, L]
    if attention_mask is None:
        return diff.mean()
    m = attention_mask.float()
    return (diff * m).sum() / m.sum()
