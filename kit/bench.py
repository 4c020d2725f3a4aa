"""Measured speed: latency of models after warm-up, as a median over many timed runs, with every model timed
in every round (interleaved), and FLOPs, sizes, and where a forward spends its time.

    times = interleaved_times({"teacher": t, "student": s}, {1: batch}, rounds=20)   # the one timing primitive
    rows = interleaved_latency(models, timing_batches(examples, tokenizer, (1, 8)))  # median, p90, per model
    python -m kit bench --paper-pair --model runs/demo/teacher --int8                 # run_bench, on the CLI

Why a median after warm-up: the first calls pay for memory allocation and kernel selection, and a
shared machine adds outliers; the median of many runs is what a user sees in steady state.
Why interleaved: timing one model after the other lets a slow spell of a shared machine fall on one of them
only; we saw the same ratio move from 0.88 to 1.07 of its FLOPs bound between two such runs, and two models
of one shape come out 15% apart when each was timed 6 times in a row. So every measurement of the kit (the
CLI, notebook 04, results/) times all the models it compares in the same rounds: `interleaved_times`.
On GPU every timing waits for the device (torch.cuda.synchronize), or it would time only the launch.
Never time while another job shares the cores: both slow down and the numbers mean nothing.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch

from .features import collate, make_features
from .inference import with_precision
from .models import flops_per_token   # noqa: F401 (kit.bench.flops_per_token: the speed side of a model)
from .device import INT8_ON_CPU, batch_to, model_device, place, synchronize
from .device import device as kit_device
from .precision import bf16_supported, cpu_description


@torch.no_grad()
def time_forward(model, batch: dict, warmup: int = 1, repeats: int = 1) -> list[float]:
    """Milliseconds of each of `repeats` forward passes on `batch`, after `warmup` untimed ones: one model's
    turn in a round of `interleaved_times` (time several models with that, not with this in a loop)."""
    where = model_device(model)
    batch = batch_to(batch, model)   # a batch follows its model (kit.device); a multi-task "task" stays as it is
    was_training = model.training
    model.eval()
    times = []
    for i in range(warmup + repeats):
        synchronize(where)
        t0 = time.perf_counter()
        model(**batch)
        synchronize(where)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    model.train(was_training)
    return times


def interleaved_times(models: dict, batches: dict, rounds: int, warmup: int = 1, repeats: int = 1) -> dict:
    """{model name: {batch key: [ms, ...]}}: each of `rounds` rounds takes the models in turn and times each on
    every batch (`warmup` untimed passes that bring its weights back into cache, then `repeats` timed ones),
    so `rounds * repeats` times each, and a slow spell of the machine falls on all models alike."""
    times = {name: {key: [] for key in batches} for name in models}
    for model in models.values():
        place(model)   # kit.device's rule: all on device() (int8 copies stay on the CPU), each timed where it runs
    for _ in range(rounds):
        for name, model in models.items():
            for key, batch in batches.items():
                times[name][key] += time_forward(model, batch, warmup, repeats)
    return times


def median_p90(times: list[float]) -> dict:
    times = sorted(times)
    return {"latency_ms": round(statistics.median(times), 3),
            "latency_p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 3)}


def interleaved_latency(models: dict, batches: dict, rounds: int = 20, warmup: int = 1, repeats: int = 1) -> dict:
    """{model name: {batch key: row}}: interleaved_times summed up, each row the median and p90 of the model's
    `rounds * repeats` timed runs on that batch (CONTRACTS.md: the median of at least 20), its shape and
    throughput."""
    times = interleaved_times(models, batches, rounds, warmup, repeats)
    out = {}
    for name, by_key in times.items():
        out[name] = {}
        for key, t in by_key.items():
            bs, seq = batches[key]["input_ids"].shape
            lat = median_p90(t)
            out[name][key] = {"batch_size": int(bs), "seq_len": int(seq), **lat, "runs": len(t), "rounds": rounds,
                              "sequences_per_s": round(1000 * bs / lat["latency_ms"], 2),
                              "tokens_per_s": round(1000 * bs * seq / lat["latency_ms"], 1)}
    return out


def interleaved_shapes(models: dict, vocab_size: int, batch_sizes=(1, 8), seq_lens=(384,), rounds: int = 20,
                       warmup: int = 1, repeats: int = 1) -> dict[str, list[dict]]:
    """{model name: one row per shape}: latency (median, p90) and throughput of every model at every batch size
    and sequence length, one interleaved run per shape (all models in every round), on random token ids
    (`random_batch`: speed depends on how many tokens, not which; `vocab_size` the smallest of the models')."""
    out = {name: [] for name in models}
    for seq in seq_lens:
        for bs in batch_sizes:
            rows = interleaved_latency(models, {0: random_batch(vocab_size, bs, seq)}, rounds, warmup, repeats)
            for name in models:
                out[name].append(rows[name][0])
    return out


def random_batch(vocab_size: int, batch_size: int, seq_len: int, seed: int = 0) -> dict:
    """Token ids with no padding: speed does not depend on which tokens, only on how many."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch_size, seq_len), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def timing_batches(examples, tokenizer, batch_sizes=(1,), max_length: int = 384, stride: int = 128) -> dict[int, dict]:
    """{batch size: a batch of windows of `examples`}, the windows that fill `max_length` first, in file order:
    latency is defined on full windows (CONTRACTS.md: 384 tokens); short paragraphs give the longest they have."""
    feats = make_features(examples, tokenizer, max_length, stride)
    if len(feats) < max(batch_sizes):
        raise ValueError(f"{len(feats)} windows, fewer than batch size {max(batch_sizes)}: give more examples.")
    longest = sorted(range(len(feats)), key=lambda i: -len(feats.input_ids[i]))   # stable: file order among equals
    return {b: collate(feats, longest[:b], tokenizer.pad_token_id, with_labels=False) for b in batch_sizes}


def entry_models(run_dir, entries: list[dict], device=None) -> dict:
    """{summary entry name: its model as it was scored}: the folder of the entry's `base` model under
    `run_dir` (the entry's own name when it has none) in its `precision` (fp32 when none), each folder loaded
    once, on `device` (default kit.device.device(); int8 copies on the CPU). A multi-task student loads as its
    QA model, the part that answers questions and is timed."""
    from .models import load_qa_model
    loaded, out = {}, {}
    for e in entries:
        base, precision = e.get("base", e["name"]), e.get("precision", "fp32")
        if base not in loaded:
            folder = Path(run_dir) / base
            if not (folder / "config.json").exists():
                raise FileNotFoundError(f"{folder}: no saved model for the summary entry {e['name']!r} of "
                                        f"{Path(run_dir) / 'summary.json'}. Rerun the notebook that trains it, or "
                                        f"remove the entry from the summary.")
            loaded[base] = place(load_qa_model(folder, attn_implementation="sdpa").eval(), device)
        out[e["name"]] = with_precision(loaded[base], precision)
    return out


def speedup_table(teacher_rows: list[dict], student_rows: list[dict], teacher_config, student_config) -> list[dict]:
    """Measured speed-up next to the FLOPs ratio (the most a student of that size can gain) per shape."""
    out = []
    for t, s in zip(teacher_rows, student_rows):
        assert (t["batch_size"], t["seq_len"]) == (s["batch_size"], s["seq_len"])
        ratio = flops_per_token(teacher_config, t["seq_len"]) / flops_per_token(student_config, t["seq_len"])
        speedup = t["latency_ms"] / s["latency_ms"]
        out.append({"batch_size": t["batch_size"], "seq_len": t["seq_len"], "teacher_ms": t["latency_ms"],
                    "student_ms": s["latency_ms"], "speedup": round(speedup, 2), "flops_ratio": round(ratio, 2),
                    "speedup_over_flops_ratio": round(speedup / ratio, 3)})
    return out


def state_size_mb(model) -> float:
    """Megabytes of the model's state as torch.save writes it (int8 weights at one byte each)."""
    import io
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


PARTS = {"embeddings": r"embeddings$", "attention": r"layer\.\d+\.attention$",
         "feed_forward": r"layer\.\d+\.(intermediate|output)$", "qa_head": r"qa_outputs$"}


@contextlib.contextmanager
def _stderr_silenced():
    """The profiler's C++ side writes a "profiler_start/stop" line to file descriptor 2 at every start and stop
    (torch 2.13), which no setting turns off; a notebook would store them. Only that descriptor, only meanwhile."""
    import sys
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@torch.no_grad()
def where_time_goes(model, batch: dict, repeats: int = 3) -> dict:
    """Milliseconds per forward spent in the embeddings, the attention blocks, the feed-forward blocks and
    the QA head of a BERT-family model, from torch.profiler (each part's modules are labelled with
    record_function); `other` is the rest (masks, pooling of outputs, Python). In an int8 model (kit.int8) also
    what its Int8Linear layers spend in each step, inside the attention and feed-forward blocks' time:
    `int8_quantise`, `int8_gemm` and `int8_dequantise`."""
    from torch.profiler import ProfilerActivity, profile, record_function
    from .int8 import Int8Linear
    model.eval()
    handles = _label_parts(model)
    int8_layers = [m for m in model.modules() if isinstance(m, Int8Linear)]
    try:
        model(**batch)   # warm-up
        for m in int8_layers:
            m.label_steps = True
        with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                with record_function("kit::forward"):
                    model(**batch)
    finally:
        for h in handles:
            h.remove()
        for m in int8_layers:
            m.label_steps = False
    totals = {e.key: e.cpu_time_total / 1000 / repeats for e in prof.key_averages() if e.key.startswith("kit::")}
    parts = {p: round(totals.get(f"kit::{p}", 0.0), 3) for p in PARTS}
    parts["other"] = round(totals["kit::forward"] - sum(parts.values()), 3)
    if int8_layers:
        parts.update({step: round(totals.get(f"kit::{step}", 0.0), 3) for step in INT8_STEPS})
    return parts


INT8_STEPS = ("int8_quantise", "int8_gemm", "int8_dequantise")


def _label_parts(model) -> list:
    """Forward hooks that open a record_function range named after each module's part (PARTS) and close it."""
    import re
    from torch.profiler import record_function
    handles, open_ranges = [], {}
    for name, module in model.named_modules():
        part = next((p for p, pattern in PARTS.items() if re.search(pattern, name)), None)
        if part is None:
            continue
        def pre(mod, args, part=part):
            open_ranges[id(mod)] = record_function(f"kit::{part}")
            open_ranges[id(mod)].__enter__()
        def post(mod, args, output):
            open_ranges.pop(id(mod)).__exit__(None, None, None)
        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


# `python -m kit bench`: collect every model and variant first, then time them together, one interleaved run
# per shape, so that their ratios (the paper pair's speed-up, a student against its teacher) are fair.

def _item(key, name, variant, model, config, counts, seq_lens, tok=None, **extra) -> dict:
    """One timed model of the report: `key` names it in the rounds, `rows` gets one row per shape."""
    return dict(key=key, name=name, variant=variant, model=model, config=config, counts=counts,
                seq_lens=seq_lens, tok=tok, rows=[], **extra)


def compiled(model):
    """`model` through torch.compile (TorchInductor) for inference, its weights frozen into the graph, or None where
    this machine cannot compile (no C++ compiler, a torch without Inductor): `compile_error` logs why, once, and the
    eager model still runs.

    Why a benchmark offers it. In eager PyTorch every small operation is its own pass over memory; around an int8
    GEMM that is several (quantising each token, the int32 -> fp32 scaling, the bias), which spend much of what the
    integer multiply saves (kit.int8.gemm_limit). Inductor fuses them with their neighbours (the LayerNorm or GELU
    before, the residual after) into a few compiled loops; it fuses the fp32 model's elementwise work too, so the
    fair comparison is compiled int8 against compiled fp32, both timed here. The first call compiles (seconds to a
    minute per input shape): the benchmark's untimed warm-up call pays it.

    Why frozen (torch._inductor.config.freezing, set for the whole process: Inductor reads it when a model is first
    called, under no_grad). Frozen weights are constants of the compiled graph, so Inductor lays each one out once
    in the order its matrix kernels read (oneDNN's packed layouts), instead of at every call: for int8 it rewrites
    kit.int8's GEMM and scaling into oneDNN's int8 linear with a packed weight (its pattern for per-token int8),
    and fp32 linears get packed weights too. The compiled model is for inference only: it does not see later
    changes to the weights."""
    if compile_error():
        return None
    import torch._inductor.config
    torch._inductor.config.freezing = True
    return torch.compile(model)


@functools.cache
def compile_error() -> str:
    """"" where torch.compile works on this machine, else why not (logged once): something tiny is compiled first,
    so that a missing compiler shows here, not in the middle of a timing."""
    try:
        torch.compile(lambda x: (x * 2).relu())(torch.ones(4))
        return ""
    except Exception as e:   # Inductor raises many kinds (BackendCompilerFailed, CppCompileError, ...)
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
        logging.warning("torch.compile does not work here (%s): no compiled variants are timed", reason)
        return reason


def _variants(name, model, config, seq_lens, int8=False, bf16=False, tok=None, compile=False) -> list[dict]:
    """The fp32 model and the precisions asked for: bf16 (always on a GPU), int8 (CPU only); with `compile`, each
    of them again through torch.compile (variant "<precision>+compile", key "<name>[_<precision>]_compiled")."""
    from .models import count_params
    gpu = kit_device().type == "cuda"
    counts = count_params(model)   # int8 layers hold their weights as buffers, not Parameters: count the fp32 model
    model = place(model).eval()
    if int8 and gpu:
        logging.warning("%s: %s is timed without its int8 copy on this GPU run (KIT_DEVICE=cpu times it)",
                        INT8_ON_CPU, name)
    # bf16 when asked (refused where it would be emulated), and on a GPU that computes it natively (not a T4)
    precisions = ["fp32"] + ["bf16"] * (bf16 or (gpu and bf16_supported())) + ["int8"] * (int8 and not gpu)
    items = [_item(name if p == "fp32" else f"{name}_{p}", name, p, with_precision(model, p), config, counts,
                   seq_lens, tok) for p in precisions]
    for it in list(items) if compile else []:
        fast = compiled(it["model"])
        if fast is not None:
            items.append(_item(f"{it['key']}_compiled", name, f"{it['variant']}+compile", fast, config, counts,
                               seq_lens, tok))
    return items


def _fit(seq_lens: list[int], config, source, given: bool) -> list[int]:
    """The window lengths a model can read: `seq_lens`, or (when they were not given) capped at its longest."""
    from .data import DataError
    from .models import max_window
    longest = max_window(config)
    if max(seq_lens) <= longest:
        return list(seq_lens)
    if given:
        raise DataError(f"--seq-lens {max(seq_lens)}: {source} reads at most {longest} tokens "
                        f"(its position embeddings). Give --seq-lens {longest} or less.")
    logging.warning("%s reads at most %d tokens: timing windows of %d instead of %s", source, longest, longest,
                    seq_lens)
    return sorted({min(s, longest) for s in seq_lens})


def _collect(models, paper_pair, summaries, models_dir, depths, int8, bf16, seq_lens, given,
             compile=False) -> list[dict]:
    """Every model to time: the paper pair (random weights), each --model and its --depths copies (the same
    shape with fewer layers, random weights: speed depends on the shape, not the values), and each entry of
    the --summary files as it was scored (its `base` model in its `precision`)."""
    from .models import build_qa_model, load_qa_model, load_tokenizer
    from .results import read_summary
    items = []
    torch.manual_seed(0)
    if paper_pair:
        from .paper import paper_configs
        for name, cfg in zip(("paper_teacher", "paper_student"), paper_configs()):
            items += _variants(name, build_qa_model(cfg, "sdpa"), cfg, seq_lens, int8, bf16, compile=compile)
    for path in models:
        model = load_qa_model(path, attn_implementation="sdpa")
        fitted = _fit(seq_lens, model.config, path, given)
        items += _variants(Path(path).name, model, model.config, fitted, int8, bf16, load_tokenizer(path), compile)
        for depth in depths:
            cfg = copy.deepcopy(model.config)
            cfg.num_hidden_layers = depth
            items += _variants(f"{Path(path).name}_{depth}layers", build_qa_model(cfg, "sdpa"), cfg, fitted, int8, bf16,
                               compile=compile)
    entries = [(file, e) for file in summaries for e in read_summary(file)]
    if kit_device().type == "cuda" and any(e.get("precision") == "int8" for _, e in entries):
        logging.warning("%s: the summaries' int8 entries are not timed on this GPU run (KIT_DEVICE=cpu times them)",
                        INT8_ON_CPU)
        entries = [(file, e) for file, e in entries if e.get("precision") != "int8"]
    loaded = entry_models(models_dir, [e for _, e in entries])   # each model folder loaded once
    for file, e in entries:
        model, counts = loaded[e["name"]], {k: e[k] for k in ("params", "non_embedding_params") if k in e}
        items.append(_item(e["name"], e["name"], e.get("precision", "fp32"), model, model.config, counts,
                           _fit(seq_lens, model.config, f"{file}: {e['name']}", given), summary=file,
                           reference=e["role"] == "teacher"))
    return items


def _time_all(items: list[dict], batch_sizes, rounds: int, warmup: int, repeats: int) -> None:
    """One interleaved run per shape over every item that reads windows that long; each gets its rows."""
    shapes = sorted({(seq, bs) for it in items for seq in it["seq_lens"] for bs in batch_sizes})
    vocab = min(it["config"].vocab_size for it in items)   # random ids every model can read
    for seq, bs in shapes:
        group = {it["key"]: it["model"] for it in items if seq in it["seq_lens"]}
        logging.info("timing %d models on batches of %d x %d tokens, %d rounds", len(group), bs, seq, rounds)
        with torch.inference_mode():
            rows = interleaved_latency(group, {0: random_batch(vocab, bs, seq)}, rounds, warmup, repeats)
        for it in items:
            if it["key"] in rows:
                it["rows"].append(rows[it["key"]][0])
    ref = next((it for it in items if it.get("reference")), items[0])   # a summary's teacher, else the first
    ref_ms = {(r["batch_size"], r["seq_len"]): r["latency_ms"] for r in ref["rows"]}
    for it in items:
        for r in it["rows"]:
            if (r["batch_size"], r["seq_len"]) in ref_ms:
                r[f"speedup_vs_{ref['key']}"] = round(ref_ms[(r["batch_size"], r["seq_len"])] / r["latency_ms"], 2)


def _report_entry(it: dict, examples=None, data=None) -> dict:
    """A model's row of benchmark.json: sizes, FLOPs, latency rows and, with `examples`, its EM/F1."""
    entry = {"name": it["name"], "variant": it["variant"], **it["counts"], "size_mb": round(state_size_mb(it["model"]), 1),
             "flops_per_token": {str(s): flops_per_token(it["config"], s) for s in it["seq_lens"]}, "rows": it["rows"]}
    if examples is not None and it["tok"] is not None:
        from .inference import evaluate_model
        longest = max(it["seq_lens"])
        metrics, _ = evaluate_model(it["model"], it["tok"], examples, max_length=longest, stride=min(128, longest // 4))
        entry.update(dataset=data, exact_match=metrics["exact_match"], f1=metrics["f1"], n=metrics["n"])
    return entry


def compiled_ratios(items: list[dict]) -> list[dict]:
    """For each model and shape timed with --int8 --compile: int8's speed-up over fp32, eager and compiled, and what
    compiling gives each, all from the same interleaved rounds (latency medians)."""
    ms = {(it["name"], it["variant"]): {(r["batch_size"], r["seq_len"]): r["latency_ms"] for r in it["rows"]}
          for it in items if "summary" not in it}
    rows = []
    for (name, variant), fp32 in ms.items():
        need = [(name, v) for v in ("int8", "fp32+compile", "int8+compile")]
        if variant != "fp32" or not all(k in ms for k in need):
            continue
        int8, fp32_c, int8_c = (ms[k] for k in need)
        for shape, t in fp32.items():
            rows.append({"model": name, "batch_size": shape[0], "seq_len": shape[1],
                         "int8_vs_fp32_eager": round(t / int8[shape], 2),
                         "int8_vs_fp32_compiled": round(fp32_c[shape] / int8_c[shape], 2),
                         "compile_fp32": round(t / fp32_c[shape], 2), "compile_int8": round(int8[shape] / int8_c[shape], 2),
                         "int8_compiled_vs_fp32_eager": round(t / int8_c[shape], 2)})
    return rows


def _record_latencies(items: list[dict]) -> None:
    """Each --summary entry gets `latency_ms` (batch 1, its longest window: CONTRACTS.md) and
    `latency_ms_batch<b>` for the other batch sizes, written back to its file in the file's order. The contract's
    latency is the CPU's: on a GPU the same numbers go to `latency_ms_cuda[_batch<b>]` instead, and int8 entries
    (not timed there) keep theirs."""
    from .results import read_summary, record
    key = "latency_ms" if kit_device().type == "cpu" else "latency_ms_cuda"
    by_key = {it["key"]: it for it in items if "summary" in it}
    for file in dict.fromkeys(it["summary"] for it in by_key.values()):
        for e in read_summary(file):
            if e["name"] not in by_key:
                continue
            rows = by_key[e["name"]]["rows"]
            longest = max(r["seq_len"] for r in rows)
            for r in (r for r in rows if r["seq_len"] == longest):
                e[key if r["batch_size"] == 1 else f"{key}_batch{r['batch_size']}"] = r["latency_ms"]
            record(file, e)


def run_bench(models=(), paper_pair: bool = False, summaries=(), models_dir=None, depths=(), int8=False,
              bf16=False, data=None, batch_sizes=(1, 8), seq_lens=None, rounds: int = 20, warmup: int = 1,
              repeats: int = 1, out=None, compile: bool = False) -> dict:
    """What `python -m kit bench` does: collect the models (see _collect) and their variants, time them all
    in interleaved rounds (one run per shape, the median and p90 of `rounds * repeats` timed runs each), score
    them on `data` if given, add the latencies to the --summary files, and write the report to `out`.
    models_dir and out default to the demo profile's folder, <runs root>/demo (kit.results.run_dir: $KIT_RUNS
    moves it), found when called."""
    import platform
    from .results import run_dir
    models_dir = run_dir("demo") if models_dir is None else models_dir
    out = run_dir("demo") / "benchmark.json" if out is None else out
    given, seq_lens = seq_lens is not None, list(seq_lens or [384])
    if summaries:   # a summary's latency_ms is at batch 1 (CONTRACTS.md)
        batch_sizes = sorted({1, *batch_sizes})
    items = _collect(models, paper_pair, summaries, models_dir, depths, int8, bf16, seq_lens, given, compile)
    if not items:
        raise ValueError("nothing to time: give --paper-pair, --model DIR or --summary FILE.")
    _time_all(items, batch_sizes, rounds, warmup, repeats)
    settings = dict(batch_sizes=list(batch_sizes), seq_lens=seq_lens, rounds=rounds, warmup=warmup, repeats=repeats)
    gpu_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu_name}", "device": str(kit_device()),
              "cpu": cpu_description(), "cpu_native_bf16": bf16_supported("cpu"),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "settings": settings, "models": []}
    examples = None
    if data:
        from .data import load_squad
        examples, _ = load_squad(data)
    for it in items:
        report["models"].append(_report_entry(it, examples, data))
        print(json.dumps({k: v for k, v in report["models"][-1].items() if k != "flops_per_token"}))
    if paper_pair:
        t, s = (next(it for it in items if it["key"] == k) for k in ("paper_teacher", "paper_student"))
        report["paper_pair"] = speedup_table(t["rows"], s["rows"], t["config"], s["config"])
        head = min(report["paper_pair"], key=lambda r: (r["batch_size"], -r["seq_len"]))   # batch 1, 384 tokens
        report.update(speedup=head["speedup"], flops_ratio=head["flops_ratio"],
                      speedup_shape=[head["batch_size"], head["seq_len"]])
        for row in report["paper_pair"]:
            print(json.dumps({"paper_pair": row}))
    if compile:
        report["compiled"] = compiled_ratios(items)
        for row in report["compiled"]:
            print(json.dumps({"compiled": row}))
    _record_latencies(items)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return report
