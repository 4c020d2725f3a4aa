"""Where models and batches live: one rule, followed by every path of the kit (scoring, timing, prediction,
training, multi-task, sweep, bench).

    device()                 # where models run: $KIT_DEVICE if set ("cpu" or "cuda"), else CUDA when torch
                             # sees a GPU, else the CPU
    place(model)             # a model moved there before it runs (in place, as nn.Module.to); int8 stays on the CPU
    batch_to(batch, model)   # a batch goes where its model's weights are, never to a global choice

The rule:
  1. Models are loaded and built on the CPU (transformers' default), and run on `device()`: the training loop
     puts them there (accelerate, told to use the CPU when device() is the CPU), and the inference paths
     (kit.inference.window_logits, kit.task_metrics, kit.bench) `place` them before their first batch. A model
     trained or scored on a GPU therefore stays on it afterwards, as with transformers' Trainer.
  2. A batch always follows its model (`batch_to`). Code that feeds a model by hand (a notebook's heatmap, a
     worked example) does the same, so it works wherever the model was left.
  3. int8 (kit.int8) is CPU only: an int8 copy is made on, and stays on, the CPU, and a GPU run that skips
     int8 says so (`INT8_ON_CPU`).

KIT_DEVICE=cpu pins the CPU on a GPU machine (the tests of CPU-only behaviour do this; so can a user who wants
CPU numbers). Which GPU: CUDA_VISIBLE_DEVICES, as for accelerate (the loop and the scoring must agree, so the
kit takes no GPU index). On a GPU the timings wait for the device (synchronize), or they would time the launch.
"""
from __future__ import annotations

import os

import torch

KIT_DEVICE = "KIT_DEVICE"
INT8_ON_CPU = "int8 runs on the CPU only (kit.int8)"


def device() -> torch.device:
    """Where the kit runs models: $KIT_DEVICE, else "cuda" when a GPU is visible, else "cpu"."""
    chosen = os.environ.get(KIT_DEVICE, "").strip().lower()
    if not chosen:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if chosen not in ("cpu", "cuda"):
        raise ValueError(f"{KIT_DEVICE}={chosen!r}: choose cpu or cuda (CUDA_VISIBLE_DEVICES picks the GPU).")
    if chosen == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{KIT_DEVICE}=cuda but torch sees no CUDA GPU (torch {torch.__version__}): unset "
                         f"{KIT_DEVICE}, set it to cpu, or install a CUDA build of torch.")
    return torch.device(chosen)


def model_device(model) -> torch.device:
    """The device of a model's weights (its first parameter or, for an int8 copy without any, its first buffer)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def cpu_only(model) -> bool:
    """Whether `model` must stay on the CPU: an int8 copy (kit.int8 marks it)."""
    return bool(getattr(model, "kit_cpu_only", False))


def place(model, target=None):
    """`model` on `target` (default: device()), moved in place unless it is there already; CPU-only models
    (int8, or anything that is not a torch module) are left where they are."""
    target = torch.device(target) if target is not None else device()
    if not isinstance(model, torch.nn.Module) or cpu_only(model):   # e.g. an ONNX Runtime session (kit.export)
        return model
    if model_device(model).type == target.type:   # cuda:0 is "cuda" (one visible GPU index)
        return model
    return model.to(target)


def batch_to(batch: dict, model) -> dict:
    """The tensors of `batch` on the device of `model`'s weights (other values, e.g. a task name, as they are)."""
    where = model_device(model)
    return {k: v.to(where) if torch.is_tensor(v) else v for k, v in batch.items()}


def synchronize(where) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; a timing without this times the launch)."""
    where = torch.device(where)
    if where.type == "cuda":
        torch.cuda.synchronize(where)

