"""Command line: `python -m kit {predict,evaluate,train,generate-data} ...` (see `--help` of each).

    python -m kit predict  --model runs/demo/teacher --data data/test.json --out pred.json
    python -m kit evaluate --model runs/demo/teacher --data data/test.json     # last line: one JSON object
    python -m kit train    --model DIR_OR_HUB_ID --train train.json --out runs/x/teacher --epochs 3

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
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-answer-length", type=int, default=30, help="in tokens")
    p.add_argument("--null-threshold", type=float, default=0.0, help="v2: answer '' when null beats best span by this")


def _load_for_inference(args):
    from .data import load_squad
    from .models import check_model_source, load_qa_model, load_tokenizer
    check_model_source(args.model)   # fail on a wrong path before reading the data
    examples, report = load_squad(args.data)
    logging.info("%s", report)
    model, tok = load_qa_model(args.model, attn_implementation="sdpa"), load_tokenizer(args.model)
    return model, tok, examples


def _predict(args, model, tok, examples):
    from .inference import predict_answers
    return predict_answers(model, tok, examples, args.max_length, args.stride, args.batch_size,
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
    from .train import TrainConfig, train
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
                      freeze_word_embeddings=args.freeze_word_embeddings, num_threads=args.threads)
    t0 = time.time()
    train(model, feats, cfg, pad_id=tok.pad_token_id, evaluate=evaluate, save_extra=tok.save_pretrained)
    print(json.dumps({"out": args.out, "train_seconds": round(time.time() - t0, 1)}))


def cmd_generate(args):
    from .generate import write_default_data
    for split, path in write_default_data(args.out, args.seed).items():
        print(split, path)


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
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("generate-data", help="regenerate the embedded Spanish data set")
    p.add_argument("--out", default="data")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from .data import DataError
    try:
        args.func(args)
    except (DataError, FileNotFoundError, ValueError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
