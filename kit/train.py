"""The one training loop: teachers, distilled students and multi-task students all go through `train`.

What changes between them is only the loss: `loss_fn(model, batch) -> (loss, {term: value})`.
A teacher uses `task_loss` (cross-entropy on start and end positions); a distilled student passes a
loss that also runs a frozen teacher and adds the distillation terms; a multi-task student passes
kit.tasks.MultiTaskData as its data (each batch from one task, chosen by a sampler) and
kit.tasks.MultiTaskLoss, which picks the loss by the batch's task.

The loop, on accelerate (fp16/bf16 on GPU, fp32 on CPU or bf16 where it is native; one or several processes):
  * AdamW with a linear warm-up then linear decay, clipping, and gradient accumulation that follows the big
    batch update for update (see `train`);
  * a fixed shuffling order per (seed, epoch), so a resumed run sees the same batches;
  * an evaluation after every epoch; the best model so far is saved with `save_pretrained`
    in `out_dir` (it is what later notebooks load), the full training state (model, optimiser,
    scheduler, RNG, progress) in `out_dir/checkpoint-last`, written atomically;
  * `resume=True` continues from `checkpoint-last` when it exists, even mid-epoch, and only a run with the same
    settings, data, model shape and loss (kit.checkpoint: anything else is refused with what differs);
  * a metrics log, `out_dir/log.jsonl`, one JSON object per line, that a notebook can plot; a resumed run's
    log reads as an uninterrupted one's (its `seconds` continue from the checkpoint's).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from tqdm import tqdm   # the text bar: tqdm.auto warns in kernels without ipywidgets (the stored notebooks)
from transformers import get_linear_schedule_with_warmup

from .checkpoint import Checkpointer, run_identity
from .features import Features, collate
from .losses import task_ce

# TQDM_DISABLE=1 (set by `kit run`/`kit reproduce` for the notebooks they execute) silences the bars: tqdm
# reads it only where no `disable` is given, and the loop gives one (other processes stay quiet).
QUIET = bool(os.environ.get("TQDM_DISABLE"))


@dataclass
class TrainConfig:
    out_dir: str = "runs/demo/model"
    epochs: float = 3             # may be fractional (e.g. 0.5) for quick checks
    max_updates: int = 0          # stop after this many optimiser steps (0: epochs decide): equal budgets
    batch_size: int = 32          # per process and per accumulation step
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1           # fraction of all optimiser steps
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"  # "auto" = fp16 on CUDA, bf16 on a CPU with native bf16, else fp32; "no", "fp16", "bf16"
    seed: int = 0
    log_every: int = 20           # optimiser steps between training-loss log lines
    save_every: int = 0           # optimiser steps between checkpoints (0: at epoch ends only)
    resume: bool = True           # continue from out_dir/checkpoint-last if it exists
    freeze_word_embeddings: bool = False  # e.g. a 250k-row multilingual vocabulary on a small data set
    num_threads: int = 0          # torch CPU threads (0: leave torch's default)
    group_by_length: bool = True  # batch windows of similar length: less padding, same data per epoch

    def replace(self, **overrides) -> "TrainConfig":
        """A copy with some fields changed; an unknown name is an error, not a silent no-op."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid: {sorted(known)}")
        return dataclasses.replace(self, **overrides)


MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")


def resolve_mixed_precision(choice: str) -> str:
    """What accelerate is told. "auto" is the fastest precision the hardware does well: fp16 on CUDA, bf16 on a
    CPU that multiplies bf16 natively (AVX512-BF16 or AMX), plain fp32 ("no") elsewhere. On the es-local e5-small
    shapes bf16 made a teacher update about 1.5x and a distillation update about 1.7x faster on this kit's
    machine, every loss term within 0.5% of fp32's on the same batch (results/es-local/bf16_training_speed.py).
    "no" gives the same fp32 numbers on every CPU (the es-local profile's published runs). "bf16" on a CPU
    without native bf16 is refused: emulated, it would be slower than fp32."""
    if choice not in MIXED_PRECISIONS:
        raise ValueError(f"mixed_precision {choice!r}: choose one of {', '.join(MIXED_PRECISIONS)}.")
    cuda = torch.cuda.is_available()
    if choice == "auto":
        from .bench import bf16_supported
        return "fp16" if cuda else "bf16" if bf16_supported() else "no"
    if choice == "fp16" and not cuda:
        raise ValueError("mixed_precision 'fp16' needs a CUDA GPU and none is visible: on a CPU use 'no' "
                         "(or 'bf16' where the CPU has native bf16).")
    if choice == "bf16" and not cuda:
        from .bench import bf16_supported
        if not bf16_supported():
            raise ValueError("mixed_precision 'bf16': this CPU has no native bfloat16 matrix multiply "
                             "(AVX512-BF16 or AMX), so bf16 training would be slower than fp32; use 'no'.")
    return choice


def task_loss(model, batch):
    """Cross-entropy of the gold start and end tokens, averaged, padding masked (kit.losses.task_ce):
    the same task term that a distilled student's loss contains, so baselines compare like with like."""
    inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
    out = model(**inputs)
    loss = task_ce(out.start_logits, out.end_logits, batch["start_positions"], batch["end_positions"],
                   batch["attention_mask"])
    return loss, {"task": loss.detach()}


def epoch_batches(feats: Features, batch_size: int, seed: int, group_by_length: bool) -> list[list[int]]:
    """The batches of one epoch, a pure function of the seed (a resumed run sees the same ones).

    With `group_by_length`, the shuffled windows are sorted by length inside chunks of 50 batches
    and the batches are then shuffled: each batch pads to a similar length, and the order stays random.
    """
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(feats), generator=g).tolist()
    if group_by_length:
        chunk = 50 * batch_size
        order = [i for c in range(0, len(order), chunk)
                 for i in sorted(order[c:c + chunk], key=lambda j: len(feats.input_ids[j]))]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
    return batches


def global_batches(data, batch_size: int, seed: int, group_by_length: bool) -> list[tuple[str | None, list[int]]]:
    """(task, window indices) of every batch of one epoch: task None for one QA data set (Features), a task
    name for kit.tasks.MultiTaskData, whose sampler chooses the task of each batch."""
    if hasattr(data, "epoch_batches"):
        return data.epoch_batches(batch_size, seed, group_by_length)
    return [(None, b) for b in epoch_batches(data, batch_size, seed, group_by_length)]


def split_update(indices: list[int], rank: int, world: int, micro: int) -> list[list[int]]:
    """This process's micro-batches of one update's windows: its share (every world-th window, at least one), cut
    into consecutive pieces of at most `micro` windows. With k pieces of b, the update sees the same windows as
    one batch of k·b would (kit.train's accumulation)."""
    share = indices[rank::world] or indices[:1]
    return [share[i:i + micro] for i in range(0, len(share), micro)]


def train(model, train_data, cfg: TrainConfig, *, pad_id: int, loss_fn=task_loss,
          evaluate=None, save_extra=None, metric: str = "f1", inputs: dict | None = None) -> list[dict]:
    """Train `model` in place; return the log (also in out_dir/log.jsonl).

    train_data: the windows of one QA data set (kit.features.Features), or several tasks'
    (kit.tasks.MultiTaskData, whose batches carry their task's name to `loss_fn`).

    evaluate(model) -> dict of metrics (with `metric`, higher is better), called after each epoch.
    save_extra(out_dir) saves what belongs beside the best model (e.g. its tokenizer).
    inputs: anything else that decides the result and that the config, the data, the model's shape and the loss
    do not show (e.g. {"init": "teacher_layers"}): recorded in the checkpoint, and a resume must match it.

    Gradient accumulation: each update takes batch_size·grad_accum windows (per process) from the epoch's plan,
    exactly those that one batch of that size would take, in micro-batches of batch_size; each micro-batch's
    loss is weighted by its share of the update's windows, so the update follows the one big batch (exactly for
    per-window means such as the task and logit terms; the token-averaged attention and hidden terms also when
    the windows are equally long). A checkpoint is only ever taken between updates.
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    mp = resolve_mixed_precision(cfg.mixed_precision)
    # Several processes without CUDA (`accelerate launch --multi_gpu --num_processes 2` on a CPU machine):
    # accelerate forms the gloo process group only when told that it runs on CPU.
    several_cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    multitask = hasattr(train_data, "epoch_batches")
    # A multi-task batch leaves the other tasks' heads unused, which DDP must be told about.
    ddp = [DistributedDataParallelKwargs(find_unused_parameters=True)] if multitask else []
    # accelerate keeps one precision per process and refuses another; a notebook kernel may train in bf16 after
    # fp32, so forget the old choice (the process group, PartialState, stays as it is)
    if AcceleratorState._shared_state.get("_mixed_precision", mp) != mp:
        AcceleratorState._reset_state()
    # no gradient_accumulation_steps: the loop splits each update into its micro-batches itself (see above)
    accelerator = Accelerator(mixed_precision=mp, cpu=several_cpu_processes, kwargs_handlers=ddp)
    set_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    # A loss can hold trainable parts of its own (distillation's projection): train and checkpoint them too.
    loss_module = loss_fn if isinstance(loss_fn, torch.nn.Module) else torch.nn.Module()
    loss_module.to(accelerator.device).train()
    world, rank = accelerator.num_processes, accelerator.process_index
    identity = run_identity(cfg, model, train_data, loss_module, world, torch.get_num_threads(), inputs)
    named = list(model.named_parameters()) + list(loss_module.named_parameters())
    params = [p for _, p in named if p.requires_grad]
    no_decay = [p for n, p in named if p.requires_grad and (p.ndim < 2 or "LayerNorm" in n)]
    decay_ids = {id(p) for p in no_decay}
    groups = [{"params": [p for p in params if id(p) not in decay_ids], "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # fused AdamW is ~10x faster on CPU over large embeddings, and available on CUDA too
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)

    update_size = cfg.batch_size * cfg.grad_accum * world       # windows per optimiser step, all processes
    updates_per_epoch = len(global_batches(train_data, update_size, cfg.seed * 1000, cfg.group_by_length))
    total_updates = cfg.max_updates or max(1, math.ceil(updates_per_epoch * cfg.epochs))
    # accelerate steps a prepared scheduler once per process at each update, hence the factor `world`
    # (warm-up rounded in updates first, so that 1 and N processes follow the same schedule)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total_updates) * world,
                                                total_updates * world)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    checkpoint = Checkpointer(accelerator, out / "checkpoint-last", loss_module, identity)
    state = checkpoint.resume() if cfg.resume else None
    # the log so far is the checkpoint's: lines written after it (a kill between two saves) are dropped
    state = state or {"epoch": 0, "batch": 0, "update": 0, "best": None, "history": []}
    if accelerator.is_main_process:
        (out / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in state["history"]))
        (out / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    # the clock and the open log interval continue from the checkpoint: a resumed log reads as one run's
    t0 = time.time() - state.get("seconds", 0.0)
    sums, counts = state.get("sums", {}), state.get("counts", {})

    def log(entry):
        state["history"].append(entry)
        if accelerator.is_main_process:
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")

    def save_checkpoint():
        checkpoint.save({**state, "seconds": time.time() - t0, "sums": sums, "counts": counts})

    def run_eval():
        model.eval()
        with torch.no_grad():
            metrics = evaluate(accelerator.unwrap_model(model))
        model.train()
        log({"kind": "eval", "epoch": state["epoch"], "update": state["update"], **metrics})
        accelerator.print(f"epoch {state['epoch']}: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()
                                                                   if isinstance(v, float)))
        if state["best"] is None or metrics[metric] > state["best"]:
            state["best"] = metrics[metric]
            save_model(accelerator, model, out, save_extra)

    def micro_step(task, indices, weight, sync: bool):
        batch = (collate(train_data, indices, pad_id) if task is None
                 else train_data.collate(task, indices, pad_id))
        batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        # DDP averages gradients over processes at the backward of an update's last micro-batch only
        with (contextlib.nullcontext() if sync else accelerator.no_sync(model)), accelerator.autocast():
            loss, terms = loss_fn(model, batch)
            if not torch.isfinite(loss):
                ckpt = out / "checkpoint-last"
                raise FloatingPointError(
                    f"the loss became {loss.item()} at update {state['update']} (epoch {state['epoch'] + 1}, batch "
                    f"{state['batch']}); training stopped. The last good state is in {ckpt if ckpt.exists() else out}. "
                    f"Lower the learning rate, or use bf16 instead of fp16.")
            accelerator.backward(loss * weight)
        return {k: float(v) * weight for k, v in {"loss": loss.detach(), **terms}.items()}

    def optimizer_step():
        if world > 1:
            # DDP averages the model's gradients over processes, but not those of the loss's own
            # parameters (the projection), which it does not wrap: average them here.
            for p in loss_module.parameters():
                if p.grad is not None:
                    p.grad = accelerator.reduce(p.grad, reduction="mean")
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(params, cfg.max_grad_norm)  # the projection too
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()

    model.train()
    total_epochs = math.ceil(total_updates / updates_per_epoch)
    while state["epoch"] < total_epochs and state["update"] < total_updates:
        epoch = state["epoch"]
        plan = global_batches(train_data, update_size, cfg.seed * 1000 + epoch, cfg.group_by_length)
        bar = tqdm(range(state["batch"], len(plan)), desc=f"epoch {epoch + 1}/{total_epochs}",
                   disable=not accelerator.is_main_process or QUIET, leave=False, mininterval=5)
        for b_i in bar:
            task, indices = plan[b_i]
            micro = split_update(indices, rank, world, cfg.batch_size)
            n = sum(map(len, micro))
            update_terms = {}
            for j, piece in enumerate(micro):   # the update's loss: the window-weighted mean of its pieces
                for k, v in micro_step(task, piece, len(piece) / n, sync=j == len(micro) - 1).items():
                    update_terms[k] = update_terms.get(k, 0.0) + v
            optimizer_step()
            for k, v in update_terms.items():   # a multi-task term: over its task's updates
                sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
            state["batch"], state["update"] = b_i + 1, state["update"] + 1
            if state["update"] % cfg.log_every == 0 or state["update"] == total_updates:
                # the mean over all processes: what one process with the whole global batch would log
                local = torch.tensor([sums[k] / counts[k] for k in sums], device=accelerator.device)
                entry = dict(zip(sums, accelerator.reduce(local, reduction="mean").tolist()))
                log({"kind": "train", "epoch": epoch + b_i / len(plan), "update": state["update"],
                     "lr": scheduler.get_last_lr()[0], "seconds": round(time.time() - t0, 2), **entry})
                bar.set_postfix(loss=f"{entry['loss']:.3f}")
                sums, counts = {}, {}
            if cfg.save_every and state["update"] % cfg.save_every == 0:
                save_checkpoint()
            if state["update"] >= total_updates:
                break
        bar.close()
        state["epoch"], state["batch"] = epoch + 1, 0
        if evaluate is not None:
            run_eval()
        save_checkpoint()
    if evaluate is None:
        save_model(accelerator, model, out, save_extra)
    accelerator.wait_for_everyone()
    return state["history"]


def save_model(accelerator, model, out: Path, save_extra=None):
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(out, safe_serialization=True)
        if save_extra is not None:
            save_extra(out)


def read_log(path) -> list[dict]:
    """The entries of a training log: `path` is a run's out_dir (its log.jsonl) or a .jsonl file.

    Logs written before the kit carried a run across a resume (e.g. the committed results/es-local/*.log.jsonl)
    repeat the updates that were redone after a kill, and their clock restarts at each resume. Such a log is
    read as one run: the redone stretch replaces the first attempt, and each resumed stretch's seconds continue
    from the last entry before it (so the minutes lost between the checkpoint and the kill are not counted);
    a warning says so."""
    path = Path(path)
    path = path if path.suffix == ".jsonl" else path / "log.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    repaired, resumes = _as_one_run(entries)
    if resumes:
        logging.getLogger(__name__).warning(
            "%s: an older kit's log of a run resumed %d time(s); read as one run (redone updates once, seconds "
            "continued across each resume)", path, resumes)
    return repaired


def _as_one_run(entries: list[dict]) -> tuple[list[dict], int]:
    key = lambda e: (e["update"], e["kind"] != "train")   # an epoch's eval follows its last train entry
    kept, offset, resumes = [], 0.0, 0
    for entry in entries:
        entry = dict(entry)
        last_seconds = next((e["seconds"] for e in reversed(kept) if "seconds" in e), None)
        if kept and key(entry) <= key(kept[-1]):                     # a resumed stretch redoes some updates
            kept = [e for e in kept if key(e) < key(entry)]
            last_seconds = next((e["seconds"] for e in reversed(kept) if "seconds" in e), 0.0)
            offset, resumes = last_seconds, resumes + 1
        elif "seconds" in entry and last_seconds is not None and entry["seconds"] + offset < last_seconds:
            offset, resumes = last_seconds, resumes + 1              # resumed exactly at a logged update
        if "seconds" in entry:
            entry["seconds"] = round(entry["seconds"] + offset, 2)
        kept.append(entry)
    return kept, resumes
