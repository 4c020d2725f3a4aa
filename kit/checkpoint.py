"""The training loop's checkpoint: what a run must write so that it can be continued, and only by itself.

`out_dir/checkpoint-last/` holds the full training state (accelerate's model, optimiser, scheduler and every
process's RNG; the loss's own trainable part as safetensors; `trainer_state.json` with the progress, the log so
far, the elapsed time and the running sums of the log interval in progress) and `run.json`, the run's identity:

    config      every TrainConfig field that changes the result, and the number of processes
    data        a digest of the training windows and labels (all tasks, for multi-task data)
    model       a digest of the model's shape: parameter names, sizes and dtypes (its weights change as it trains)
    loss        the loss's settings (weights, temperature, layer map, attention kind...) and a digest of its frozen
                modules' weights: a student's teacher
    inputs      whatever else the caller says decides the result (e.g. how a student was initialised)
    allowed     log and save intervals and the thread count: they may change between a run and its resume

A resume whose identity differs is refused (`ResumeRefused`), naming the differences, the folder, and the ways
out; an allowed difference is said. A checkpoint is written to a fresh folder and swapped in with two renames,
so a kill at any moment leaves a complete one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from array import array
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LOSS_STATE = "loss_state.safetensors"
RUN_FILE = "run.json"
# TrainConfig fields that do not change what is learned; `resume`, `out_dir`, `tensorboard` and `progress_every` say
# how and where, not what (TensorBoard's events are rewritten from the log at each start: it may be switched on at
# a resume)
ALLOWED = ("log_every", "save_every", "num_threads")
NOT_RECORDED = ("resume", "out_dir", "tensorboard", "progress_every")


class ResumeRefused(ValueError):
    """A checkpoint was written by a run with other settings, data or teacher: continuing it would mix two runs."""


# ----------------------------------------------------------------------------- digests
def digest(*objects) -> str:
    """A short sha256 of tensors, modules (their state_dict), lists, dicts, dataclasses and plain values."""
    h = hashlib.sha256()
    for obj in objects:
        _feed(h, obj)
    return h.hexdigest()[:16]


def _feed(h, obj):
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy())
    elif isinstance(obj, torch.nn.Module):
        _feed(h, dict(obj.state_dict()))
    elif isinstance(obj, (list, tuple)):
        if obj and all(isinstance(r, list) and all(type(x) is int for x in r) for r in obj[:3]):
            for row in obj:  # token ids: the fast path (a whole SQuAD-es is 35M of them)
                h.update(array("q", row).tobytes() + b";")
        else:
            h.update(b"[")
            for item in obj:
                _feed(h, item)
            h.update(b"]")
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=str):
            h.update(str(key).encode() + b":")
            _feed(h, obj[key])
        h.update(b"}")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        skip = getattr(obj, "NOT_TRAINED_ON", ())   # e.g. Features' character offsets: slow to hash, never read
        h.update(type(obj).__name__.encode())
        _feed(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in skip})
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(repr(obj).encode() + b",")
    elif callable(obj):          # e.g. a builder stored in a task: its name, never its address
        h.update(getattr(obj, "__qualname__", type(obj).__name__).encode())
    elif hasattr(obj, "__dict__"):
        h.update(type(obj).__name__.encode())
        _feed(h, {k: v for k, v in vars(obj).items() if not k.startswith("_")})
    else:
        h.update(repr(obj).encode())


def _plain(value):
    """`value` as JSON if it is made of plain values (numbers, strings, tuples, small dataclasses), else None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return None if any(i is None for i in items) and any(v is not None for v in value) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return None if any(v is None and getattr(value, k) is not None for k, v in fields.items()) else fields
    return None


def loss_settings(loss_module: torch.nn.Module) -> dict:
    """The loss's plain attributes (DistillLoss: weights, temperature, layer map, heads, attention kind)."""
    settings = {}
    for name, value in vars(loss_module).items():
        if name.startswith("_") or name == "training":
            continue
        plain = _plain(value)
        if plain is not None:
            settings[name] = plain
    return settings


def run_identity(cfg, model, data, loss_module, processes: int, threads: int, inputs: dict | None = None) -> dict:
    """What run.json records (see the module docstring); `cfg` is a TrainConfig."""
    fields = dataclasses.asdict(cfg)
    frozen = {n: t for n, t in loss_module.state_dict(keep_vars=True).items() if not t.requires_grad}
    return {"config": {k: v for k, v in fields.items() if k not in ALLOWED + NOT_RECORDED} | {"processes": processes},
            "data": digest(data),
            "model": digest([(n, tuple(p.shape), str(p.dtype)) for n, p in model.state_dict().items()]),
            "loss": {"settings": loss_settings(loss_module), "frozen_weights": digest(frozen)},
            "inputs": {str(k): _plain(v) for k, v in (inputs or {}).items()},
            "allowed": {k: fields[k] for k in ALLOWED} | {"threads": threads}}


def differences(saved: dict, current: dict) -> tuple[list[str], list[str]]:
    """(refused, allowed): what differs between the identity in a checkpoint and this run's, in words."""
    refused = []
    for key in sorted(set(saved["config"]) | set(current["config"])):
        old, new = saved["config"].get(key), current["config"].get(key)
        if old != new:
            refused.append(f"{key} {old!r} -> {new!r}")
    if saved["data"] != current["data"]:
        refused.append("the training data (its windows or labels)")
    if saved["model"] != current["model"]:
        refused.append("the model's shape (its parameters' names or sizes)")
    old_s, new_s = saved["loss"]["settings"], current["loss"]["settings"]
    for key in sorted(set(old_s) | set(new_s)):
        if old_s.get(key) != new_s.get(key):
            refused.append(f"loss {key} {old_s.get(key)!r} -> {new_s.get(key)!r}")
    if saved["loss"]["frozen_weights"] != current["loss"]["frozen_weights"]:
        refused.append("the loss's frozen weights (a student's teacher)")
    old_i, new_i = saved.get("inputs", {}), current.get("inputs", {})
    for key in sorted(set(old_i) | set(new_i)):
        if old_i.get(key) != new_i.get(key):
            refused.append(f"{key} {old_i.get(key)!r} -> {new_i.get(key)!r}")
    allowed = []
    for key, new in current["allowed"].items():
        old = saved["allowed"].get(key)
        if old != new:
            why = " (the last bits of CPU results may differ)" if key == "threads" else ""
            allowed.append(f"{key} {new} (was {old}){why}")
    return refused, allowed


def refusal(folder: Path, refused: list[str]) -> str:
    return (f"{folder} was written by a run with other settings than this one: {'; '.join(refused)}. "
            f"Continuing it would mix two runs. Either rerun with the old values (they are in {folder / RUN_FILE}), "
            f"or start fresh: --fresh on the command line (kit train, kit reproduce), resume=False in TrainConfig "
            f"or a notebook's parameters, or delete {folder}.")


# ----------------------------------------------------------------------------- the folder
def swap_in(tmp: Path, target: Path):
    """Replace `target` by the complete folder `tmp` with two renames: a kill at any moment leaves either
    the new checkpoint, or the previous one (as target or, between the renames, as target.old)."""
    old = target.with_name(target.name + ".old")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def restore_interrupted_swap(target: Path):
    """Killed between the two renames of `swap_in`: the previous checkpoint is complete, put it back.
    Call it from one process only (Checkpointer does), the others waiting."""
    old = target.with_name(target.name + ".old")
    if not target.exists() and (old / "trainer_state.json").exists():
        os.replace(old, target)


class Checkpointer:
    """Saves and restores `folder` (out_dir/checkpoint-last) for the loop, on every process of `accelerator`."""

    def __init__(self, accelerator, folder: Path, loss_module: torch.nn.Module, identity: dict):
        self.accelerator, self.folder, self.loss_module, self.identity = accelerator, Path(folder), loss_module, identity

    def resume(self) -> dict | None:
        """The saved trainer state, after checking the run's identity; None when there is nothing to resume."""
        acc = self.accelerator
        if acc.is_main_process:
            restore_interrupted_swap(self.folder)
        acc.wait_for_everyone()   # the others look only once the folder is back in place
        if not (self.folder / "trainer_state.json").exists():
            return None
        run_file = self.folder / RUN_FILE
        if run_file.exists():
            refused, allowed = differences(json.loads(run_file.read_text()), self.identity)
            if refused:
                raise ResumeRefused(refusal(self.folder, refused))
            if allowed:
                acc.print(f"resuming with {'; '.join(allowed)}")
        else:
            acc.print(f"{self.folder} was written by an older kit that did not record its settings: resuming "
                      f"without checking them")
        acc.load_state(str(self.folder))
        if (self.folder / LOSS_STATE).exists():   # the loss's own trainable part (distillation's projection)
            self.loss_module.load_state_dict(load_file(self.folder / LOSS_STATE, device=str(acc.device)), strict=False)
        state = json.loads((self.folder / "trainer_state.json").read_text())
        acc.print(f"resuming from {self.folder}: epoch {state['epoch']}, batch {state['batch']}, "
                  f"update {state['update']}")
        return state

    def save(self, state: dict):
        # Written to a fresh folder, then swapped in. Every process saves (its own RNG state goes into
        # random_states_<rank>.pkl; the main process writes weights, optimiser and scheduler).
        acc, tmp = self.accelerator, self.folder.with_name(self.folder.name + ".tmp")
        acc.wait_for_everyone()
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp), safe_serialization=True)
        acc.wait_for_everyone()
        if acc.is_main_process:
            (tmp / "trainer_state.json").write_text(json.dumps(state))
            (tmp / RUN_FILE).write_text(json.dumps(self.identity, indent=1))
            # as safetensors, not accelerate's pickled custom state: nothing in a checkpoint needs unpickling
            trainable = {n: p.detach().cpu().contiguous() for n, p in self.loss_module.named_parameters()
                         if p.requires_grad}
            if trainable:
                save_file(trainable, tmp / LOSS_STATE)
            swap_in(tmp, self.folder)
        acc.wait_for_everyone()
