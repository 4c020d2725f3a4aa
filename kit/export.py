"""Serve a kit QA model on a CPU with ONNX Runtime: export it, check the export, add int8, and run it through
the kit's own windows and post-processing (transformers 5 has no question-answering pipeline).

    python -m kit export   --model runs/demo/student --out runs/demo/student-onnx --data data/test.json
    python -m kit evaluate --model runs/demo/student-onnx --data data/test.json                  # model.onnx
    python -m kit evaluate --model runs/demo/student-onnx --data data/test.json --precision int8 # the int8 default
    model = load_onnx_model("runs/demo/student-onnx")     # an OnnxQAModel: predict_answers, evaluate_model, bench

The exporter is the one torch 2.13 recommends, `torch.onnx.export(..., dynamo=True)` (torch.export, then
onnxscript), with dynamic batch and sequence axes; `--exporter torchscript` takes the older tracer. Every export
is checked: its logits on a few windows against the PyTorch model's, the largest difference printed and the
export refused (deleted) above `tolerance`.

int8 variants, each its own file beside model.onnx (fp32):
  * "per-token" (model_int8_per_token.onnx): the kit's own scheme (kit.int8) written as ONNX operators. Each
    encoder MatMul's weight is stored in int8 with one scale per output channel; its input is rounded to int8 at
    run time with one scale per token (ReduceMax over the hidden axis), then MatMulInteger, then both scales.
  * "dynamic" (model_int8_dynamic.onnx): onnxruntime.quantization.quantize_dynamic, per-channel weights but one
    scale for the whole activation tensor: one large activation sets the step for every token (notebook 04).
With `data`, every file is scored through the kit's windows; a variant that loses more than 1% of the fp32 F1 is
printed with its loss and never made `int8_default` (what `--precision int8` loads).
Needs the optional extra: pip install "es-qa-distill-kit[export]" (onnx, onnxruntime, onnxscript).
"""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import torch

FP32_FILE = "model.onnx"
INT8_FILES = {"per-token": "model_int8_per_token.onnx", "dynamic": "model_int8_dynamic.onnx"}
INT8_KEEPS = 0.99            # a variant becomes the int8 default only if it keeps this share of the fp32 F1
TOLERANCE = 1e-3             # largest |logit difference| an fp32 export may have against its PyTorch model
OPSET = 18
EXTRA = "export"              # pip install "es-qa-distill-kit[export]": onnx, onnxruntime, onnxscript


class ExportRefused(ValueError):
    """An export whose logits differ from its PyTorch model's by more than the tolerance (its file is removed)."""


def require(*names: str):
    """Import the export extra's modules, or fail (kit.optional.MissingPackage: the command line prints it and
    exits 2) naming the one missing and the pip command."""
    from .optional import require as require_optional
    modules = [require_optional(n, EXTRA, "ONNX export and ONNX Runtime inference (kit export, an ONNX --model)")
               for n in names]
    return modules[0] if len(modules) == 1 else modules


class _Logits(torch.nn.Module):
    """A QA model as a function of named tensors to (start_logits, end_logits): what the exporter traces."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return out.start_logits, out.end_logits


def input_names(tokenizer) -> list[str]:
    """The inputs `kit.features.collate` gives the model: token_type_ids only where the tokenizer makes them."""
    return ["input_ids", "attention_mask"] + ["token_type_ids"] * ("token_type_ids" in tokenizer.model_input_names)


@contextlib.contextmanager
def _quiet():
    """The exporter's own printed progress and UserWarnings, kept out of a command's or notebook's output."""
    import io
    import warnings
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)   # and onnxscript's optimizer's log (a line per merged initializer)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def export_graph(model, names: list[str], path, exporter: str = "dynamo", opset: int = OPSET) -> str:
    """Write `model` (eval mode, CPU) to `path` as ONNX with dynamic batch and sequence axes; returns what
    exporter wrote it. A batch of 2 windows as the example: a batch of 1 would fix that axis to 1."""
    from .models import max_window
    longest = max_window(model.config)
    ids = torch.full((2, min(16, longest)), 5, dtype=torch.long)
    example = tuple(torch.ones_like(ids) if n == "attention_mask" else ids if n == "input_ids"
                    else torch.zeros_like(ids) for n in names)
    wrapped = _Logits(model.eval(), names).eval()
    common = dict(input_names=names, output_names=["start_logits", "end_logits"], opset_version=opset)
    big = sum(p.numel() for p in model.parameters()) * 4 > 1.8 * 2**30    # protobuf's 2 GB limit
    if exporter == "dynamo":
        from torch.export import Dim
        batch, seq = Dim("batch", max=4096), Dim("sequence", min=2, max=longest)
        shapes = {n: {0: batch, 1: seq} for n in names}
        with _quiet():   # its progress lines and a warning per renamed axis say nothing about the result
            torch.onnx.export(wrapped, example, str(path), dynamo=True, dynamic_shapes=shapes, external_data=big,
                              verbose=False, **common)
        return f"torch.onnx.export(dynamo=True), torch {torch.__version__}, opset {opset}"
    if exporter == "torchscript":
        axes = {n: {0: "batch", 1: "sequence"} for n in names + common["output_names"]}
        with _quiet():
            torch.onnx.export(wrapped, example, str(path), dynamo=False, dynamic_axes=axes, **common)
        return f"torch.onnx.export(dynamo=False), torch {torch.__version__}, opset {opset}"
    raise ValueError(f"exporter {exporter!r}: choose 'dynamo' (torch's recommended exporter) or 'torchscript'.")


class OnnxQAModel:
    """An exported QA model in an ONNX Runtime session, with what the kit's inference and timing paths use of a
    PyTorch model: called with named tensors it returns start/end logits as torch tensors; `.config`, `eval()`,
    `train(False)`, `training`, `parameters()` (one empty CPU tensor, for device look-ups) and `kit_cpu_only`
    (kit.device leaves it on the CPU)."""
    training = False
    kit_cpu_only = True   # kit.device.place leaves it where it is: ONNX Runtime's CPU provider

    def __init__(self, path, config, threads: int | None = None):
        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()   # as many threads as torch uses
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")   # idle threads sleep, not spin
        opts.log_severity_level = 3
        self.path, self.config = Path(path), config
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **_):
        from transformers.modeling_outputs import QuestionAnsweringModelOutput
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        given["attention_mask"] = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        given["token_type_ids"] = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        feeds = {n: given[n].detach().cpu().to(torch.long).numpy() for n in self.input_names}
        start, end = self.session.run(["start_logits", "end_logits"], feeds)
        return QuestionAnsweringModelOutput(start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end))

    forward = __call__

    def eval(self):
        return self

    def train(self, mode: bool = True):
        if mode:
            raise ValueError(f"{self.path.name}: an ONNX model is for inference only; train the PyTorch model.")
        return self

    def parameters(self):
        yield torch.zeros(0)

    def buffers(self):
        return iter(())

    def to(self, device):
        if torch.device(device).type != "cpu":
            raise ValueError(f"{self.path.name}: the kit runs ONNX models on the CPU (onnxruntime's CPU provider).")
        return self

    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20

    def __repr__(self):
        return f"OnnxQAModel({self.path.parent.name}/{self.path.name}, {self.config.model_type})"


def is_onnx_dir(source) -> bool:
    path = Path(str(source))
    return path.is_dir() and (path / FP32_FILE).is_file()


def export_info(folder) -> dict:
    path = Path(folder) / "export.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def onnx_file(folder, precision: str = "fp32", file: str | None = None) -> Path:
    """The file of `folder` that `precision` (or an explicit `file`) names: model.onnx for fp32, the export's
    int8 default for int8."""
    folder = Path(folder)
    if file:
        chosen = folder / file
    elif precision == "fp32":
        chosen = folder / FP32_FILE
    elif precision == "int8":
        info = export_info(folder)
        if not info.get("int8_default"):
            made = {k: v for k, v in info.get("files", {}).items() if k != "fp32"}
            raise ValueError(f"{folder}: no int8 default in export.json (variants here: {made or 'none'}; a variant "
                             f"that lost over {100 - 100 * INT8_KEEPS:.0f}% of the fp32 F1 is never the default). "
                             f"Name one with --onnx-file, or export again with --int8 per-token.")
        chosen = folder / info["int8_default"]
    else:
        raise ValueError(f"precision {precision!r}: an ONNX export runs in fp32 or int8 (bf16 is for PyTorch models).")
    if not chosen.is_file():
        raise FileNotFoundError(f"{chosen}: no such ONNX file. The files of {folder.name}: "
                                f"{sorted(p.name for p in folder.glob('*.onnx'))}.")
    return chosen


def load_onnx_model(folder, precision: str = "fp32", file: str | None = None, threads: int | None = None):
    """An OnnxQAModel of an export folder (see onnx_file for which file), with the exported model's config."""
    from transformers import AutoConfig
    return OnnxQAModel(onnx_file(folder, precision, file), AutoConfig.from_pretrained(str(folder)), threads)


def load_onnx_tokenizer(folder):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(folder), use_fast=True)


def check_batches(tokenizer, config, examples=None, max_length: int = 384, stride: int = 128) -> list[dict]:
    """A few windows to compare an export with its model: the 4 longest windows of `examples` and 4 short ones
    padded together, or (without examples) random token ids of two shapes, one row padded."""
    from .features import collate, make_features
    from .models import max_window
    if examples:
        feats = make_features(examples, tokenizer, min(max_length, max_window(config)), stride)
        order = sorted(range(len(feats)), key=lambda i: -len(feats.input_ids[i]))
        groups = [order[:4], order[-4:]]
        return [collate(feats, g, tokenizer.pad_token_id, with_labels=False) for g in groups if g]
    g = torch.Generator().manual_seed(0)
    batches = []
    for bs, seq in ((1, min(max_length, max_window(config))), (3, min(24, max_window(config)))):
        ids = torch.randint(5, config.vocab_size, (bs, seq), generator=g)
        mask = torch.ones_like(ids)
        mask[-1, seq // 2:] = 0
        batch = {"input_ids": ids.masked_fill(mask == 0, tokenizer.pad_token_id), "attention_mask": mask}
        if "token_type_ids" in input_names(tokenizer):
            batch["token_type_ids"] = torch.zeros_like(ids)
        batches.append(batch)
    return batches


@torch.no_grad()
def max_logit_diff(reference, other, batches: list[dict]) -> float:
    """The largest |start or end logit difference| of two models over the real (unpadded) tokens of `batches`."""
    worst = 0.0
    for batch in batches:
        a, b = reference(**batch), other(**batch)
        keep = batch["attention_mask"].bool()
        for x, y in ((a.start_logits, b.start_logits), (a.end_logits, b.end_logits)):
            worst = max(worst, (x.float() - y.float()).abs()[keep].max().item())
    return worst


def check_export(model, exported: "OnnxQAModel", batches: list[dict], tolerance: float = TOLERANCE) -> float:
    """max |Δlogit| of an fp32 export against its PyTorch model; above `tolerance` the file is deleted and the
    export refused."""
    diff = max_logit_diff(model.eval(), exported, batches)
    shapes = ", ".join("x".join(map(str, b["input_ids"].shape)) for b in batches)
    print(f"{exported.path.name}: max |Δlogit| {diff:.2e} against the PyTorch model on windows of {shapes} "
          f"(tolerance {tolerance:g})")
    if not diff <= tolerance:   # a NaN is refused too
        exported.path.unlink(missing_ok=True)
        raise ExportRefused(f"{exported.path}: its logits differ from the PyTorch model's by up to {diff:.3g}, more "
                            f"than the tolerance {tolerance:g}, so the export was refused and the file removed. "
                            f"Try --exporter torchscript (or the other one), or a larger --tolerance if the "
                            f"difference is expected.")
    return diff


def _qa_head_matmuls(graph, weights: dict) -> set[str]:
    """The MatMul nodes of the QA head (weights of 2 columns: start and end): they stay fp32, as in kit.int8."""
    return {n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights
            and len(weights[n.input[1]].shape) == 2 and weights[n.input[1]].shape[1] == 2}


def _token_quantized(graph_nodes, x: str, consts: dict, make_node) -> tuple[str, str]:
    """Nodes that round `x` to uint8 (int8 + 128) with one scale per token: (quantized name, scale name)."""
    names = [f"{x}_ptq_{k}" for k in ("abs", "max", "floor", "scale", "inverse", "scaled", "round", "shift", "u8")]
    graph_nodes += [make_node("Abs", [x], [names[0]]),
                    make_node("ReduceMax", [names[0], consts["axes"]], [names[1]], keepdims=1),
                    make_node("Max", [names[1], consts["eps"]], [names[2]]),      # a token of zeros stays zeros
                    make_node("Div", [names[2], consts["127"]], [names[3]]),      # its scale: one per token
                    make_node("Div", [consts["127"], names[2]], [names[4]]),      # small tensors: divide there,
                    make_node("Mul", [x, names[4]], [names[5]]),                  # multiply the large one
                    make_node("Round", [names[5]], [names[6]]),
                    make_node("Add", [names[6], consts["128"]], [names[7]]),
                    make_node("Cast", [names[7]], [names[8]], to=2)]   # 2 = UINT8
    return names[8], names[3]


def quantize_per_token(src, dst) -> int:
    """Write `src` with every encoder MatMul in the kit's int8 scheme (kit.int8): int8 weights with one scale per
    output channel, inputs rounded to int8 per token at run time (stored as uint8 with zero point 128, the
    operand kind ONNX Runtime's integer kernels are fastest on), MatMulInteger into int32, then both scales.
    Returns how many MatMuls it rewrote. The QA head stays fp32."""
    import numpy as np
    onnx = require("onnx")
    from onnx import helper, numpy_helper
    model = onnx.load(str(src))
    graph = model.graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    head = _qa_head_matmuls(graph, weights)
    consts = {"axes": np.array([-1], np.int64), "eps": np.array(1e-12, np.float32),
              "127": np.array(127, np.float32), "128": np.array(128, np.float32), "zp": np.array(128, np.uint8)}
    consts = {k: (f"ptq_const_{k}", v) for k, v in consts.items()}
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in consts.values())
    consts = {k: name for k, (name, _) in consts.items()}
    nodes, quantized, done = [], {}, 0
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or w.ndim != 2 or node.name in head:
            nodes.append(node)
            continue
        if node.input[0] not in quantized:   # Q, K and V share their input: round it once
            quantized[node.input[0]] = _token_quantized(nodes, node.input[0], consts, helper.make_node)
        xq, x_scale = quantized[node.input[0]]
        w_scale = np.maximum(np.abs(w).max(axis=0) / 127, 1e-12).astype(np.float32)
        wq = np.round(w / w_scale).astype(np.int8)
        base = f"{node.name}_ptq"
        graph.initializer.extend([numpy_helper.from_array(wq, f"{base}_wq"),
                                  numpy_helper.from_array(w_scale, f"{base}_wscale")])
        nodes += [helper.make_node("MatMulInteger", [xq, f"{base}_wq", consts["zp"]], [f"{base}_i32"]),
                  helper.make_node("Cast", [f"{base}_i32"], [f"{base}_f32"], to=1),   # 1 = FLOAT
                  helper.make_node("Mul", [f"{base}_f32", f"{base}_wscale"], [f"{base}_w"]),
                  helper.make_node("Mul", [f"{base}_w", x_scale], list(node.output))]
        done += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]   # the fp32 weights that were replaced go
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return done


def quantize_ort_dynamic(src, dst) -> int:
    """ONNX Runtime's one-line int8: quantize_dynamic with per-channel int8 weights; its activations get one
    scale per tensor (DynamicQuantizeLinear). The QA head stays fp32 as in the other variants."""
    onnx = require("onnx")
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model = onnx.load(str(src))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    head = _qa_head_matmuls(model.graph, weights)
    logging.disable(logging.WARNING)   # its advice to pre-process the graph (shape inference) for CNNs
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=sorted(head))
    finally:
        logging.disable(logging.NOTSET)
    return sum(n.op_type == "MatMul" and n.input[1] in weights for n in model.graph.node) - len(head)


QUANTIZERS = {"per-token": quantize_per_token, "dynamic": quantize_ort_dynamic}


def score_files(folder, files: list[str], tokenizer, examples, max_length: int, stride: int) -> dict[str, dict]:
    """{file: EM/F1 metrics} of each ONNX file of `folder` through the kit's windows and postprocess."""
    from transformers import AutoConfig
    from .inference import evaluate_model
    config = AutoConfig.from_pretrained(str(folder))
    return {f: evaluate_model(OnnxQAModel(Path(folder) / f, config), tokenizer, examples, max_length=max_length,
                              stride=stride)[0] for f in files}


def choose_int8_default(made: dict[str, str], scores: dict[str, dict]) -> str | None:
    """The int8 file `--precision int8` loads: the first variant made (per-token first) that keeps INT8_KEEPS of
    the fp32 F1; without scores, the per-token variant (the kit's scheme), never the per-tensor one unscored.
    Prints each scored variant's F1 against fp32, and the loss of any that is not made the default."""
    if not scores:
        return made.get("per-token")
    fp32, default = scores[FP32_FILE]["f1"], None
    for variant, file in made.items():
        f1 = scores[file]["f1"]
        keeps = f1 / fp32 if fp32 else 1.0
        ok = keeps >= INT8_KEEPS
        print(f"{file}: F1 {f1:.2f} against {fp32:.2f} in fp32 ({f1 - fp32:+.2f}, keeps {100 * keeps:.1f}%)"
              + ("" if ok else f": loses over {100 - 100 * INT8_KEEPS:.0f}% of the F1, so it is not the int8 default"))
        if ok and default is None:
            default = file
    return default


def _clear(out: Path):
    """Remove what an earlier export wrote into `out` (only the kit's own file names)."""
    for name in [FP32_FILE, f"{FP32_FILE}.data", "export.json", *INT8_FILES.values()]:
        (out / name).unlink(missing_ok=True)


def export_model(model_dir, out, int8=("per-token",), data=None, tolerance: float = TOLERANCE,
                 exporter: str = "dynamo", max_length: int = 384, stride: int = 128) -> dict:
    """What `python -m kit export` does: `out`/model.onnx (checked against the PyTorch model, see check_export),
    its config and tokenizer, each int8 variant of `int8`, and export.json (how it was made, max |Δlogit| of each
    file, with `data` every file's EM/F1 through the kit's windows, and `int8_default`). Returns export.json."""
    import time
    require("onnx", "onnxruntime", *(["onnxscript"] if exporter == "dynamo" else []))
    from .data import load_squad
    from .models import check_model_source, fit_window, load_qa_model, load_tokenizer
    check_model_source(str(model_dir))
    unknown = [v for v in int8 if v not in INT8_FILES]
    if unknown:
        raise ValueError(f"--int8 {' '.join(unknown)}: choose from {', '.join(INT8_FILES)} (or none).")
    examples = load_squad(data)[0] if data else None
    model = load_qa_model(str(model_dir), attn_implementation="sdpa").eval()
    tok = load_tokenizer(str(model_dir))
    max_length, stride = fit_window(model, max_length, stride)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    t0 = time.time()
    how = export_graph(model, input_names(tok), out / FP32_FILE, exporter)
    print(f"wrote {out / FP32_FILE} ({(out / FP32_FILE).stat().st_size / 2**20:.1f} MB) with {how}, "
          f"in {time.time() - t0:.0f} s")
    batches = check_batches(tok, model.config, examples, max_length, stride)
    diffs = {FP32_FILE: check_export(model, OnnxQAModel(out / FP32_FILE, model.config), batches, tolerance)}
    model.config.save_pretrained(out)
    tok.save_pretrained(out)
    made = {}
    for variant in int8:
        made[variant] = INT8_FILES[variant]
        n = QUANTIZERS[variant](out / FP32_FILE, out / made[variant])
        diffs[made[variant]] = max_logit_diff(model, OnnxQAModel(out / made[variant], model.config), batches)
        print(f"wrote {out / made[variant]} ({variant} int8, {n} MatMuls; max |Δlogit| {diffs[made[variant]]:.3f} "
              f"against fp32 PyTorch, {(out / made[variant]).stat().st_size / 2**20:.1f} MB)")
    scores = score_files(out, [FP32_FILE, *made.values()], tok, examples, max_length, stride) if examples else {}
    info = {"source": str(model_dir), "exporter": how, "onnxruntime": require("onnxruntime").__version__,
            "inputs": input_names(tok), "tolerance": tolerance, "max_abs_logit_diff": diffs,
            "files": {"fp32": FP32_FILE, **{f"int8_{v}": f for v, f in made.items()}},
            "int8_default": choose_int8_default(made, scores), "data": str(data) if data else None,
            "max_length": max_length, "stride": stride, "scores": scores}
    (out / "export.json").write_text(json.dumps(info, indent=1))
    print(f"int8 default (--precision int8): {info['int8_default'] or 'none'}"
          + ("" if scores or not made else " (not scored: give --data to check its F1)"))
    return info
