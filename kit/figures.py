"""Notebook 02's figures: the attention heatmaps (teacher against student, pair by pair of the layer map) and the label
sweep's two plots. Drawing only; what they draw is computed by kit.losses (attention_mse) and kit.sweep.

    mse = heatmaps(teacher, student, tokenizer, example, layer_map.attention, "probs", "after distillation")
    plot_sweep(rows, teacher_f1=95.9, title="3-layer students")
    plot_rounds(rows, first_seed=0)
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .device import batch_to
from .distill import use_attention_maps
from .losses import attention_mse
from .sweep import ARMS

ARM_COLORS = {"with teacher": "tab:blue", "without teacher": "tab:orange"}


def pair_mse(student_maps, teacher_maps, attention_mask, pairs, heads: str = "match") -> dict[tuple[int, int], float]:
    """{(student layer, teacher layer): attention_mse of the two maps over the real tokens} for each pair of the layer
    map; maps are indexed by layer (0-based), each [batch, heads, tokens, tokens]."""
    return {(s, t): attention_mse(student_maps[s], teacher_maps[t], attention_mask, heads).item() for s, t in pairs}


def attention_maps(model, enc, attention: str = "probs") -> list[torch.Tensor]:
    """Every layer's attention map of `model` on the encoded window `enc`, on the CPU (the model runs where it is,
    kit.device, in eval mode, and is left in the mode it was in)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = use_attention_maps(model, attention)(**batch_to(enc, model), output_attentions=True)
    model.train(was)
    return [a.cpu() for a in out.attentions]


def heatmaps(teacher, student, tokenizer, example, pairs, attention: str, title: str, n_max: int = 24) -> dict:
    """Teacher map against student map for each pair of the layer map, on one question (`example`: its question and
    context; mean over heads), drawn on one colour scale; returns {(student layer, teacher layer): attention_mse
    over the whole window} (`pair_mse`)."""
    enc = tokenizer(example.question, example.context, return_tensors="pt")
    n = min(n_max, enc["input_ids"].shape[1])
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0, :n].tolist())
    heads = "match" if student.config.num_attention_heads == teacher.config.num_attention_heads else "mean"
    maps = {"teacher": attention_maps(teacher, enc, attention), "student": attention_maps(student, enc, attention)}
    mse = pair_mse(maps["student"], maps["teacher"], enc["attention_mask"], pairs, heads)
    shown = {(row, col): maps[who][layer][0].mean(0)[:n, :n] for col, (s, t) in enumerate(pairs)
             for row, (who, layer) in enumerate((("teacher", t), ("student", s)))}
    lo = 0.0 if attention == "probs" else min(m.min().item() for m in shown.values())
    hi = max(m.max().item() for m in shown.values())
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.6 * len(pairs) + 1, 7.4), squeeze=False, layout="constrained")
    step = max(1, -(-n // 12))   # at most 12 token labels per axis
    for (row, col), m in shown.items():
        s, t = pairs[col]
        ax = axes[row, col]
        im = ax.imshow(m, cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"teacher layer {t} (attentions[{t}])" if row == 0 else
                     f"student layer {s} (attentions[{s}])\nMSE to the teacher {mse[(s, t)]:.5f}", fontsize=9)
        ax.set_xticks(range(0, n, step), tokens[::step], rotation=90, fontsize=7)
        ax.set_yticks(range(0, n, step), tokens[::step], fontsize=7)
        if row == 1:
            ax.set_xlabel("key (attended to)", fontsize=8)
        if col == 0:
            ax.set_ylabel("query (attending)", fontsize=8)
    kind = "attention probability" if attention == "probs" else "attention score (pre-softmax)"
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=f"{kind} (mean over heads)")
    fig.suptitle(f"{title}: first {n} tokens of: {example.question}")
    plt.show()
    return mse


def plot_sweep(rows: list[dict], teacher_f1: float, title: str):
    """Test F1 against the labelled share (log scale), one line per arm: the mean over seeds, a band from the
    lowest to the highest seed, a dot per run; the teacher's F1 as a dashed line."""
    shares = sorted({r["labelled share"] for r in rows})
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for arm in ARMS:
        f1 = [[r["f1"] for r in rows if r["arm"] == arm and r["labelled share"] == s] for s in shares]
        ax.plot(shares, [sum(v) / len(v) for v in f1], "o-", color=ARM_COLORS[arm], label=arm)
        ax.fill_between(shares, [min(v) for v in f1], [max(v) for v in f1], color=ARM_COLORS[arm], alpha=0.25)
        ax.scatter([s for s, v in zip(shares, f1) for _ in v], [x for v in f1 for x in v], color=ARM_COLORS[arm], s=12)
    ax.axhline(teacher_f1, color="gray", ls="--", label="teacher")
    ax.set(xscale="log", xlabel="share of the sweep's questions with a gold answer", ylabel="test F1", title=title)
    ax.set_xticks(shares, [f"{s:g}" for s in shares])
    ax.legend()
    plt.show()


def plot_rounds(rows: list[dict], first_seed: int):
    """Every run's validation F1 by round, one panel per labelled share (a run trained longer has more rounds);
    a dot marks the run's best round, the one it is read at."""
    shares = sorted({r["labelled share"] for r in rows})
    fig, axes = plt.subplots(1, len(shares), figsize=(4.2 * len(shares), 3.2), sharey=True, squeeze=False)
    for ax, share in zip(axes[0], shares):
        longest = 1
        for r in (r for r in rows if r["labelled share"] == share):
            rounds = range(1, len(r["validation_f1"]) + 1)
            longest = max(longest, len(rounds))
            ax.plot(rounds, r["validation_f1"], color=ARM_COLORS[r["arm"]], alpha=0.7,
                    label=r["arm"] if r["seed"] == first_seed else None)
            ax.plot(r["best_round"], r["validation_f1"][r["best_round"] - 1], "o", color=ARM_COLORS[r["arm"]])
        ax.set(title=f"{100 * share:g}% of the labels", xlabel="round", xticks=list(range(1, longest + 1)))
    axes[0, 0].set_ylabel("validation F1")
    axes[0, 0].legend(fontsize=8)
    plt.tight_layout()
    plt.show()
