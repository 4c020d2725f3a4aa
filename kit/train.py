"""The one training loop: teachers, distilled students and multi-task students all go through `train`.

What changes between them is only the loss: `loss_fn(model, batch) -> (loss, {term: value})`.
A teacher uses `task_loss` (cross-entropy on start and end positions); a distilled student passes a
loss that also runs a frozen teacher and adds the distillation terms; a multi-task student passes
kit.tasks.MultiTaskData as its data (each batch from one task, chosen by a sampler) and
kit.multitask.MultiTaskLoss, which picks the loss by the batch's task.

The loop, on accelerate (fp16/bf16 on GPU, fp32 on CPU or bf16 where it is native; one or several processes):
  * AdamW with a linear warm-up then linear decay and clipping (`build_optimizer`), and gradient accumulation
    that follows the big batch update for update (`Trainer.update`);
  * a fixed shuffling order per (seed, epoch), so a resumed run sees the same batches;
  * an evaluation after every epoch; the best model so far is saved with `save_pretrained`
    in `out_dir` (it is what later notebooks load), the full training state (model, optimiser,
    scheduler, RNG, progress) in `out_dir/checkpoint-last`, written atomically (kit.checkpoint.Checkpointer);
  * `resume=True` continues from `checkpoint-last` when it exists, even mid-epoch, and only a run with the same
    settings, data, model shape and loss (kit.checkpoint: anything else is refused with what differs);
  * a metrics log, `out_dir/log.jsonl`, one JSON object per line, that a notebook can plot; a resumed run's
    log reads as an uninterrupted one's (its `seconds` continue from the checkpoint's); with `tensorboard=True`
    the same entries also go to TensorBoard, in `out_dir/tensorboard/`, rewritten from the log at each start.

Reading order: TrainConfig; the plan of an epoch (`epoch_batches`, `split_update`); `Trainer`, whose `run` is the
loop and whose hooks at update and epoch ends log, evaluate and checkpoint; `train`, which wires them up.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from tqdm import tqdm   # the text bar: tqdm.auto warns in kernels without ipywidgets (the stored notebooks)
from transformers import get_linear_schedule_with_warmup

from .checkpoint import Checkpointer, run_identity
from .cli import option
from .runs import run_dir
from .device import device
from .features import Features, collate
from .losses import task_ce
from .optional import require
from .precision import forget_accelerate_device, forget_accelerate_precision, resolve_mixed_precision

# TQDM_DISABLE=1 (set by `kit run`/`kit reproduce` for the notebooks they execute) silences the bars: tqdm
# reads it only where no `disable` is given, and the loop gives one (other processes stay quiet).
QUIET = bool(os.environ.get("TQDM_DISABLE"))
TENSORBOARD = "tensorboard"   # out_dir/tensorboard/: the TensorBoard events of a run (TrainConfig.tensorboard)


@dataclass
class TrainConfig:
    out_dir: str = option(lambda: str(run_dir("demo") / "model"), "where the best model, its log and checkpoint-last go")
    epochs: float = option(3, "passes over the training windows; may be fractional (0.5) for quick checks")
    max_updates: int = option(0, "stop after this many optimiser steps (0: epochs decide): equal budgets")
    batch_size: int = option(32, "windows per process and per accumulation step (micro-batch)")
    grad_accum: int = option(1, "micro-batches per optimiser step: the update follows batch_size·grad_accum")
    lr: float = option(5e-5, "peak learning rate of AdamW")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and LayerNorms)")
    warmup: float = option(0.1, "fraction of all optimiser steps spent warming the learning rate up")
    max_grad_norm: float = option(1.0, "gradient clipping norm (0: no clipping)")
    mixed_precision: str = option("auto", "auto (fp16 on CUDA, bf16 on a CPU with native bf16, else fp32), "
                                          "no (fp32), fp16 or bf16 (kit.precision)")
    seed: int = option(0, "seeds the weights' dropout and the shuffling of every epoch")
    log_every: int = option(20, "optimiser steps between training-loss log lines")
    save_every: int = option(0, "optimiser steps between checkpoints (0: at epoch ends only)")
    resume: bool = option(True, "continue from out_dir/checkpoint-last if it exists (only the same run)")
    freeze_word_embeddings: bool = option(False, "keep the word embeddings fixed (e.g. a 250k-row multilingual "
                                                 "vocabulary on a few thousand questions)")
    num_threads: int = option(0, "torch CPU threads (0: leave torch's default)")
    group_by_length: bool = option(True, "batch windows of similar length: less padding, same data per epoch")
    progress_every: float = option(60.0, "seconds between printed progress lines (update, loss, seconds per "
                                         "update, ETA) at log lines; 0: at every log line; negative: none, and no "
                                         "measured ETA line either (many short runs)")
    tensorboard: bool = option(False, "also write every log line's scalars to TensorBoard, in out_dir/tensorboard/ "
                                      "(accelerate's tracker; needs the tensorboard package, the kit's "
                                      "`tensorboard` or `notebooks` extra)")

    def replace(self, **overrides) -> "TrainConfig":
        """A copy with some fields changed; an unknown name is an error, not a silent no-op."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid: {sorted(known)}")
        return dataclasses.replace(self, **overrides)


def task_loss(model, batch):
    """Cross-entropy of the gold start and end tokens, averaged, padding masked (kit.losses.task_ce):
    the same task term that a distilled student's loss contains, so baselines compare like with like."""
    inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
    out = model(**inputs)
    loss = task_ce(out.start_logits, out.end_logits, batch["start_positions"], batch["end_positions"],
                   batch["attention_mask"])
    return loss, {"task": loss.detach()}


# ----------------------------------------------------------------------------- the plan of an epoch
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


def planned_updates(data, cfg: TrainConfig, processes: int = 1) -> tuple[int, int]:
    """(optimiser steps per epoch, optimiser steps of the whole run) for `data` under `cfg`: what the loop
    will do, for a schedule or a time estimate. One step takes batch_size·grad_accum·processes windows."""
    per_epoch = len(global_batches(data, cfg.batch_size * cfg.grad_accum * processes, cfg.seed * 1000,
                                   cfg.group_by_length))
    return per_epoch, cfg.max_updates or max(1, math.ceil(per_epoch * cfg.epochs))


def split_update(indices: list[int], rank: int, world: int, micro: int) -> list[list[int]]:
    """This process's micro-batches of one update's windows: its share (every world-th window, at least one), cut
    into consecutive pieces of at most `micro` windows. With k pieces of b, the update sees the same windows as
    one batch of k·b would (kit.train's accumulation)."""
    share = indices[rank::world] or indices[:1]
    return [share[i:i + micro] for i in range(0, len(share), micro)]


# ----------------------------------------------------------------------------- the pieces the loop uses
def make_accelerator(cfg: TrainConfig, multitask: bool) -> Accelerator:
    """accelerate for this run: its precision (kit.precision), one or several processes, the seed set."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    mp = resolve_mixed_precision(cfg.mixed_precision)
    # kit.device's rule: train on device(). accelerate picks a GPU whenever it sees one, so the CPU (KIT_DEVICE=cpu,
    # or no GPU) is said explicitly; several processes without CUDA (`accelerate launch --multi_gpu
    # --num_processes 2` on a CPU machine) then form a gloo process group.
    on_cpu = device().type == "cpu"
    # A multi-task batch leaves the other tasks' heads unused, which DDP must be told about.
    ddp = [DistributedDataParallelKwargs(find_unused_parameters=True)] if multitask else []
    forget_accelerate_precision(mp)   # a notebook kernel may train in bf16 after fp32
    forget_accelerate_device(on_cpu)  # ... or on the CPU after the GPU
    # TensorBoard through accelerate's tracker, in out_dir/tensorboard/ (TrainLog starts it and writes to it)
    tracking = {}
    if cfg.tensorboard and require_tensorboard():
        tracking = dict(log_with="tensorboard", project_dir=cfg.out_dir)
    # no gradient_accumulation_steps: the loop splits each update into its micro-batches itself (Trainer.update)
    accelerator = Accelerator(mixed_precision=mp, cpu=on_cpu, kwargs_handlers=ddp, **tracking)
    set_seed(cfg.seed)
    return accelerator


def require_tensorboard():
    """The tensorboard package, or kit.optional.MissingPackage saying how to install it."""
    return require("tensorboard", "tensorboard", "TensorBoard logging (TrainConfig.tensorboard, --tensorboard)")


def build_optimizer(named_params, cfg: TrainConfig, total_updates: int, processes: int, mixed_precision: str = "no"):
    """AdamW (no weight decay on biases and LayerNorms) and a linear warm-up then linear decay to 0."""
    named = [(n, p) for n, p in named_params if p.requires_grad]
    no_decay = [p for n, p in named if p.ndim < 2 or "LayerNorm" in n]
    decay_ids = {id(p) for p in no_decay}
    groups = [{"params": [p for _, p in named if id(p) not in decay_ids], "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # fused AdamW is ~10x faster on CPU over large embeddings, and available on CUDA too; but not with fp16: there
    # the GradScaler hands a fused optimiser its skip flag instead of skipping the call, so accelerate cannot see a
    # skipped step and the schedule would advance on an overflow (accelerate issue 4242). bf16 and fp32 never skip.
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=mixed_precision != "fp16")
    # accelerate steps a prepared scheduler once per process at each update, hence the factor `processes`
    # (warm-up rounded in updates first, so that 1 and N processes follow the same schedule)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total_updates) * processes,
                                                total_updates * processes)
    return optimizer, scheduler, [p for _, p in named]


# ----------------------------------------------------------------------------- the loop
class Trainer:
    """One run: the model, its data and loss, accelerate, the optimiser, the checkpointer and the progress.

    `run()` is the loop; what happens between updates is a hook: `hooks["update_end"]` and `hooks["epoch_end"]`
    are lists of functions of the trainer (`train` adds logging, checkpoints and the evaluation)."""

    def __init__(self, model, data, cfg: TrainConfig, *, pad_id: int, loss_fn, inputs: dict | None = None):
        self.cfg, self.data, self.pad_id, self.loss_fn = cfg, data, pad_id, loss_fn
        self.acc = acc = make_accelerator(cfg, multitask=hasattr(data, "epoch_batches"))
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.freeze_word_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        # A loss can hold trainable parts of its own (distillation's projection): train and checkpoint them too.
        self.loss_module = loss_fn if isinstance(loss_fn, torch.nn.Module) else torch.nn.Module()
        self.loss_module.to(acc.device).train()
        self.world, self.rank = acc.num_processes, acc.process_index
        identity = run_identity(cfg, model, data, self.loss_module, self.world, torch.get_num_threads(), inputs)
        self.updates_per_epoch, self.total_updates = planned_updates(data, cfg, self.world)
        optimizer, scheduler, self.params = build_optimizer(
            list(model.named_parameters()) + list(self.loss_module.named_parameters()), cfg, self.total_updates,
            self.world, acc.mixed_precision)
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, scheduler)
        self.checkpoint = Checkpointer(acc, self.out / "checkpoint-last", self.loss_module, identity)
        self.state = (cfg.resume and self.checkpoint.resume()) or {"epoch": 0, "batch": 0, "update": 0, "best": None,
                                                                  "history": []}
        self.log = TrainLog(self, self.state)
        self.hooks = {"update_end": [], "epoch_end": []}

    def run(self):
        state, total = self.state, self.total_updates
        self.model.train()
        total_epochs = math.ceil(total / self.updates_per_epoch)
        while state["epoch"] < total_epochs and state["update"] < total:
            epoch = state["epoch"]
            plan = global_batches(self.data, self.cfg.batch_size * self.cfg.grad_accum * self.world,
                                  self.cfg.seed * 1000 + epoch, self.cfg.group_by_length)
            bar = tqdm(range(state["batch"], len(plan)), desc=f"epoch {epoch + 1}/{total_epochs}",
                       disable=not self.acc.is_main_process or QUIET, leave=False, mininterval=5)
            for b_i in bar:
                self.log.add(self.update(*plan[b_i]))
                state["batch"], state["update"] = b_i + 1, state["update"] + 1
                self.position = epoch + b_i / len(plan)   # in epochs, for the log
                for hook in self.hooks["update_end"]:
                    hook(self)
                if "loss" in self.log.last_entry:
                    bar.set_postfix(loss=f"{self.log.last_entry['loss']:.3f}")
                if state["update"] >= total:
                    break
            bar.close()
            state["epoch"], state["batch"] = epoch + 1, 0
            for hook in self.hooks["epoch_end"]:
                hook(self)
        self.acc.wait_for_everyone()
        return state["history"]

    def update(self, task, indices) -> dict:
        """One optimiser step over one update's windows, in micro-batches; its loss terms (window-weighted means)."""
        micro = split_update(indices, self.rank, self.world, self.cfg.batch_size)
        n = sum(map(len, micro))
        terms = {}
        for j, piece in enumerate(micro):
            for k, v in self.micro_step(task, piece, len(piece) / n, sync=j == len(micro) - 1).items():
                terms[k] = terms.get(k, 0.0) + v
        if self.world > 1:
            # DDP averages the model's gradients over processes, but not those of the loss's own
            # parameters (the projection), which it does not wrap: average them here.
            for p in self.loss_module.parameters():
                if p.grad is not None:
                    p.grad = self.acc.reduce(p.grad, reduction="mean")
        if self.cfg.max_grad_norm:
            self.acc.clip_grad_norm_(self.params, self.cfg.max_grad_norm)  # the projection too
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        return terms

    def micro_step(self, task, indices, weight: float, sync: bool) -> dict:
        batch = (collate(self.data, indices, self.pad_id) if task is None
                 else self.data.collate(task, indices, self.pad_id))
        batch = {k: v.to(self.acc.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        # DDP averages gradients over processes at the backward of an update's last micro-batch only
        with (contextlib.nullcontext() if sync else self.acc.no_sync(self.model)), self.acc.autocast():
            loss, terms = self.loss_fn(self.model, batch)
            if not torch.isfinite(loss):
                self.refuse_nan(loss)
            self.acc.backward(loss * weight)
        return {k: float(v) * weight for k, v in {"loss": loss.detach(), **terms}.items()}

    def refuse_nan(self, loss):
        ckpt, s = self.out / "checkpoint-last", self.state
        raise FloatingPointError(
            f"the loss became {loss.item()} at update {s['update']} (epoch {s['epoch'] + 1}, batch {s['batch']}); "
            f"training stopped. The last good state is in {ckpt if ckpt.exists() else self.out}. "
            f"Lower the learning rate, or use bf16 instead of fp16.")

    def save_checkpoint(self):
        self.checkpoint.save({**self.state, **self.log.carried()})

    def save_model(self, save_extra=None):
        if self.acc.is_main_process:
            self.acc.unwrap_model(self.model).save_pretrained(self.out, safe_serialization=True)
            if save_extra is not None:
                save_extra(self.out)


class TrainLog:
    """out_dir/log.jsonl, kept equal to the checkpoint's history; the clock and the open interval's sums carry
    across a resume, so a resumed run's log reads as one run's.

    With `cfg.tensorboard`, every entry also goes to TensorBoard (accelerate's tracker), in out_dir/tensorboard/:
    each numeric scalar as "<kind>/<name>" (train/loss, train/lr, eval/f1, ...) at step `update`. Event files are
    append-only, so each start rewrites that folder from the history, as it rewrites log.jsonl: steps logged
    after the last checkpoint before a kill are not there twice."""

    def __init__(self, trainer: Trainer, state: dict):
        self.trainer, self.history, self.last_entry = trainer, state["history"], {}
        if trainer.acc.is_main_process:   # lines written after the checkpoint (a kill between two saves) go
            (trainer.out / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.history))
            (trainer.out / "train_config.json").write_text(json.dumps(dataclasses.asdict(trainer.cfg), indent=1))
            shutil.rmtree(trainer.out / TENSORBOARD, ignore_errors=True)   # rewritten below, or gone with the option
        self.t0 = time.time() - state.get("seconds", 0.0)
        self.sums, self.counts = state.get("sums", {}), state.get("counts", {})
        # (time, update) of the last log line, for its seconds per update; when the last progress line was printed
        self.mark, self.printed = (time.time(), state["update"]), time.time()
        self.tensorboard, self.clock = trainer.cfg.tensorboard, 0.0
        if self.tensorboard:
            trainer.acc.init_trackers(TENSORBOARD)
            for entry in self.history:
                self.to_tensorboard(entry)

    def add(self, terms: dict):
        for k, v in terms.items():   # a multi-task term: averaged over its task's updates
            self.sums[k], self.counts[k] = self.sums.get(k, 0.0) + v, self.counts.get(k, 0) + 1

    def write(self, entry: dict):
        self.history.append(entry)
        if self.trainer.acc.is_main_process:
            with open(self.trainer.out / "log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
        if self.tensorboard:
            self.to_tensorboard(entry)

    def to_tensorboard(self, entry: dict):
        """An entry's numeric scalars at its update; their wall time is the run's clock (`seconds`), so that a
        resumed run reads as one run there too (an eval entry: its epoch's last train line's)."""
        self.clock = entry.get("seconds", self.clock)
        kind = entry.get("kind", "train")
        scalars = {f"{kind}/{k}": v for k, v in entry.items()
                   if k not in ("kind", "update") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.trainer.acc.log(scalars, step=entry["update"],
                             log_kwargs={"tensorboard": {"walltime": self.t0 + self.clock}})

    def close(self):
        """Close the TensorBoard writer. (accelerate's end_training would also end the process group, which the
        caller of `train` may still use.)"""
        for tracker in self.trainer.acc.trackers:
            tracker.finish()
        self.trainer.acc.trackers.clear()

    def flush(self):
        """One training line: the mean over all processes, what one process with the whole global batch logs, with
        the seconds per update since the last line and the ETA they give (printed every cfg.progress_every s)."""
        t, now, update = self.trainer, time.time(), self.trainer.state["update"]
        local = torch.tensor([self.sums[k] / self.counts[k] for k in self.sums], device=t.acc.device)
        entry = dict(zip(self.sums, t.acc.reduce(local, reduction="mean").tolist()))
        per_update = (now - self.mark[0]) / max(1, update - self.mark[1])
        eta = per_update * (t.total_updates - update)
        self.write({"kind": "train", "epoch": t.position, "update": update, "lr": t.scheduler.get_last_lr()[0],
                    "seconds": round(now - self.t0, 2), "sec_per_update": round(per_update, 4),
                    "eta_seconds": round(eta, 1), **entry})
        quiet = t.cfg.progress_every < 0
        if not quiet and (now - self.printed >= t.cfg.progress_every or update == t.total_updates):
            loss = f", loss {entry['loss']:.4g}" if "loss" in entry else ""
            t.acc.print(f"update {update:,}/{t.total_updates:,}{loss}: {per_update:.3g} s per update, "
                        f"ETA {duration(eta)}")
            self.printed = now
        self.mark, self.last_entry, self.sums, self.counts = (now, update), entry, {}, {}

    def carried(self) -> dict:
        return {"seconds": time.time() - self.t0, "sums": self.sums, "counts": self.counts}


# ----------------------------------------------------------------------------- hooks and the entry point
CLOCK_FIELDS = ("seconds", "sec_per_update", "eta_seconds")   # the log's wall-clock fields: they differ run to run


def duration(seconds: float) -> str:
    """'2 h 05 min', '3 min 12 s' or '45 s'."""
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def measure_speed(timed: int = 3):
    """An update-end hook that times `timed` updates after the first of this start (which pays for allocation and
    kernel selection) and prints the seconds per update and the ETA of the run: measured on the machine the run
    is on, in its first seconds. Each log line then says it again (TrainLog.flush)."""
    first = {}

    def hook(t: Trainer):
        update = t.state["update"]
        if not first:
            first.update(update=update, time=time.time())
        elif update - first["update"] == timed and update < t.total_updates and t.cfg.progress_every >= 0:
            per_update = (time.time() - first["time"]) / timed
            left = t.total_updates - update
            t.acc.print(f"measured on {t.acc.device} ({t.acc.mixed_precision}): {per_update:.3g} s per update "
                        f"(updates {first['update'] + 1}-{update}); {left:,} of {t.total_updates:,} updates left: "
                        f"ETA {duration(per_update * left)}")
    return hook


def log_every(t: Trainer):
    if t.state["update"] % t.cfg.log_every == 0 or t.state["update"] == t.total_updates:
        t.log.flush()


def save_every(t: Trainer):
    if t.cfg.save_every and t.state["update"] % t.cfg.save_every == 0:
        t.save_checkpoint()


def keep_best(evaluate, metric: str, save_extra=None):
    """An epoch-end hook: evaluate, log, and save the model when `metric` beats the best so far."""
    def hook(t: Trainer):
        t.model.eval()
        with torch.no_grad():
            metrics = evaluate(t.acc.unwrap_model(t.model))
        t.model.train()
        t.log.write({"kind": "eval", "epoch": t.state["epoch"], "update": t.state["update"], **metrics})
        t.acc.print(f"epoch {t.state['epoch']}: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()
                                                               if isinstance(v, float)))
        if t.state["best"] is None or metrics[metric] > t.state["best"]:
            t.state["best"] = metrics[metric]
            t.save_model(save_extra)
    return hook


def train(model, train_data, cfg: TrainConfig, *, pad_id: int, loss_fn=task_loss,
          evaluate=None, save_extra=None, metric: str = "f1", inputs: dict | None = None) -> list[dict]:
    """Train `model` in place; return the log (also in out_dir/log.jsonl).

    train_data: the windows of one QA data set (kit.features.Features), or several tasks'
    (kit.tasks.MultiTaskData, whose batches carry their task's name to `loss_fn`).
    evaluate(model) -> dict of metrics (with `metric`, higher is better), called after each epoch; the best model
    is saved in out_dir (without `evaluate`, the last). save_extra(out_dir) saves what belongs beside it (e.g. its
    tokenizer). inputs: anything else that decides the result and that the config, the data, the model's shape and
    the loss do not show (e.g. {"init": "teacher_layers"}): recorded in the checkpoint, and a resume must match it.

    Gradient accumulation: each update takes batch_size·grad_accum windows (per process) from the epoch's plan,
    exactly those that one batch of that size would take, in micro-batches of batch_size; each micro-batch's
    loss is weighted by its share of the update's windows, so the update follows the one big batch (exactly for
    per-window means such as the task and logit terms; the token-averaged attention and hidden terms also when
    the windows are equally long). A checkpoint is only ever taken between updates.
    """
    t = Trainer(model, train_data, cfg, pad_id=pad_id, loss_fn=loss_fn, inputs=inputs)
    t.hooks["update_end"] += [measure_speed(), log_every, save_every]
    if evaluate is not None:
        t.hooks["epoch_end"].append(keep_best(evaluate, metric, save_extra))
    t.hooks["epoch_end"].append(Trainer.save_checkpoint)
    try:
        history = t.run()
    finally:
        t.log.close()
    if evaluate is None:
        t.save_model(save_extra)
        t.acc.wait_for_everyone()
    return history


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
