"""Publishing a result: a model's (or a committed predictions file's) score on a test file, written into a results
folder as every published number there is, so that each comes from a command line.

    python -m kit publish --profile es-local --name student8 --role student --model runs/es-local/student8
    python -m kit publish --profile es-local --name student8_int8 --precision int8 --model runs/es-local/student8
    python -m kit publish --profile es-local --name student8 --predictions results/es-local/student8.predictions.json

For `<name>` it writes into the results folder (default results/<profile>/):
  <name>.predictions.json   {question id: answer}, predicted by the model (or the file given, re-scored)
  summary entry             in summary.json (kit.results.record): role, parameters, EM/F1 (bf16 copies in bf16.json:
                            CONTRACTS.md keeps summary.json's latency to fp32 and int8); re-publishing keeps the
                            entry's place and what was measured on it since (latency_ms, ...)
  <name>.params.json        how it was made: the kit command that trains it, the recipe, the train config, the
                            training file, the machine, the training wall time (the run's log, kit.train.read_log)
                            and the metrics
  <name>.log.jsonl          the training log, copied from the model's directory
A precision copy (`--precision int8|bf16`) is the same weights as its `base` entry run in lower precision
(kit.inference.with_precision): it gets predictions and an entry, and its base's params.json says how it was trained.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from .cli import flags, option
from .runs import portable

# entry fields that other commands measure on the same model (notebook 04, kit bench): kept when re-published
MEASURED = ("latency_ms", "latency_ms_batch8", "answerability_accuracy_held_out")


@dataclass
class Publication:
    name: str = option("", "the entry's name, unique in the summary (e.g. student8, student8_int8)")
    role: str = option("", "teacher, student, baseline, multitask, single_task, ablation, int8 ('' for a precision "
                           "copy: int8, or its base's role)")
    model: str = option("", "the trained model's directory: it predicts, and its recipe.json, train_config.json and "
                            "log.jsonl are published")
    predictions: str = option("", "re-score this predictions file instead of predicting (parameter counts from "
                                  "--model, else from the entry already published)")
    data: str = option("", "the test file ('' = the profile's test file)")
    dataset: str = option("", "the test set's label in the summary ('' = the published entry's, else the file name)")
    precision: str = option("fp32", "fp32, or int8 / bf16: a copy of the base entry's weights in lower precision")
    base: str = option("", "a precision copy's base entry ('' = the name without its _int8/_bf16)")
    profile: str = option("demo", "the profile whose test file and results folder are meant")
    results: str = option("", "the results folder ('' = results/<profile>)")
    command: str = option("", "the kit command that trained the model ('' = the one in the model's recipe.json or "
                              "the published params.json)")
    note: str = option("", "a note for params.json (e.g. an unusual history of the run)")
    max_length: int = option(384, "tokens per window when predicting")
    stride: int = option(128, "tokens two windows share when predicting")


def publish(pub: Publication) -> dict:
    """Score and write everything for `pub` (see the module docstring); return the summary entry."""
    from .data import load_squad
    from .metrics import squad_scores
    from .results import record
    command, pub = publish_command(pub), _checked(pub)
    out = Path(pub.results)
    examples, _ = load_squad(pub.data)
    predictions = _predictions(pub, examples)
    metrics = squad_scores(examples, predictions)
    summary = out / ("bf16.json" if pub.precision == "bf16" else "summary.json")
    entry = _entry(pub, metrics, out)
    record(summary, entry)
    target = out / f"{pub.name}.predictions.json"
    if not target.exists() or json.loads(target.read_text()) != predictions:   # the same answers: the file stays
        target.write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
    if pub.precision == "fp32":
        _write_run(pub, metrics, out, command)
    print(json.dumps({"name": pub.name, "summary": str(summary), **metrics}))
    return entry


def _checked(pub: Publication) -> Publication:
    """`pub` with its defaults filled in, or a ValueError naming the option and the fix."""
    from .inference import PRECISIONS
    from .models import check_model_source
    from .profiles import test_file
    from .results import ROLES
    if not pub.name:
        raise ValueError("kit publish: give --name, the entry's name in the summary (e.g. student8).")
    if pub.precision not in PRECISIONS:
        raise ValueError(f"--precision {pub.precision!r}: choose one of {', '.join(PRECISIONS)}.")
    if pub.role and pub.role not in ROLES:
        raise ValueError(f"--role {pub.role!r} of {pub.name}: choose one of {', '.join(sorted(ROLES))}.")
    if not pub.role and pub.precision == "fp32":
        raise ValueError(f"--role: say what {pub.name} is ({', '.join(sorted(ROLES))}).")
    if not pub.model and not pub.predictions:
        raise ValueError(f"kit publish {pub.name}: give --model DIR (the trained model) or --predictions FILE.")
    if pub.model:
        check_model_source(pub.model)   # a wrong directory fails here, naming it, before anything is read
    if pub.predictions and not Path(pub.predictions).is_file():
        raise FileNotFoundError(f"--predictions {pub.predictions}: no such file; give the {pub.name}.predictions.json "
                                f"that `kit predict` or an earlier `kit publish` wrote.")
    base = pub.base or (pub.name.rsplit("_", 1)[0] if pub.precision != "fp32" else "")
    return dataclasses.replace(pub, base=base, data=pub.data or test_file(pub.profile),
                               results=pub.results or f"results/{pub.profile}")


def _predictions(pub: Publication, examples) -> dict[str, str]:
    if pub.predictions:
        predictions = json.loads(Path(pub.predictions).read_text())
        missing = [e.id for e in examples if e.id not in predictions]
        if missing:
            raise ValueError(f"{Path(pub.predictions).name}: no answer for {len(missing)} question(s) of "
                             f"{Path(pub.data).name} (e.g. {missing[0]!r}): predictions of another test file? "
                             f"Predict them again with --model.")
        return predictions
    from .inference import predict_answers, with_precision
    from .models import load_tokenizer
    model = with_precision(_load(pub.model), pub.precision)
    return predict_answers(model, load_tokenizer(pub.model), examples, pub.max_length, pub.stride)


def _load(model_dir: str):
    from .models import load_qa_model
    return load_qa_model(model_dir, attn_implementation="sdpa").eval()


def _entry(pub: Publication, metrics: dict, out: Path) -> dict:
    """The summary entry: as kit.results.summary_entry makes it, the parameters counted on the fp32 model (or
    taken from the entry already published when only predictions are given)."""
    from .models import count_params
    from .results import read_summary
    published = {e["name"]: e for f in ("summary.json", "bf16.json") for e in read_summary(out / f)}
    old = published.get(pub.name, {})
    known = old or published.get(pub.base, {})
    if pub.model:
        counts = count_params(_load(pub.model))
    elif "params" in known:
        counts = {k: known[k] for k in ("params", "non_embedding_params")}
    else:
        raise ValueError(f"{pub.name}: no published entry to take its parameter counts from in "
                         f"{out / 'summary.json'}; give --model DIR as well as --predictions.")
    role = pub.role or ("int8" if pub.precision == "int8" else published.get(pub.base, {}).get("role"))
    if not role:
        raise ValueError(f"--role: {pub.name}'s base {pub.base!r} has no entry in {out / 'summary.json'} to take "
                         f"its role from; publish the base first or give --role.")
    copy = {"base": pub.base, "precision": pub.precision} if pub.precision != "fp32" else {}
    entry = {"name": pub.name, "role": role, **counts, "dataset": pub.dataset or old.get("dataset") or
             Path(pub.data).name, "exact_match": metrics["exact_match"], "f1": metrics["f1"], "n": metrics["n"], **copy}
    if pub.predictions:   # the same answers as before: what was measured on the model still holds, in its place
        entry = {k: entry.get(k, old[k]) for k in old if k in entry or k in MEASURED} | entry
    return entry


def _write_run(pub: Publication, metrics: dict, out: Path, publish_command: str):
    """<name>.params.json and <name>.log.jsonl: how the model was trained."""
    old_file = out / f"{pub.name}.params.json"
    old = json.loads(old_file.read_text()) if old_file.exists() else {}
    log = out / f"{pub.name}.log.jsonl"
    if pub.model and (Path(pub.model) / "log.jsonl").exists():
        log.write_text((Path(pub.model) / "log.jsonl").read_text())
    params = params_record(pub, metrics, old, log if log.exists() else None, publish_command)
    old_file.write_text(json.dumps(params, indent=1, ensure_ascii=False) + "\n")


def params_record(pub: Publication, metrics: dict, old: dict, log: Path | None, publish: str = "") -> dict:
    """The params.json of a published model: what its run recorded (recipe.json, train_config.json, the log),
    else what its earlier params.json said, with the command that trains it checked by the kit's parser."""
    from .recipes import read_recipe
    run = (read_recipe(pub.model) or {}) if pub.model else {}
    command = pub.command or run.get("command") or old.get("command", "")
    recipe, train_config, train_file = parse_command(command, pub.name)
    config_file = Path(pub.model or "-") / "train_config.json"
    params = dict(old)
    if pub.command and recipe and run.get("recipe"):   # the command is published: it must be the run's own
        _same_recipe(pub, run["recipe"], recipe)
        run = {**run, "recipe": recipe}   # in the command's words: $KIT_SQUAD_ES_LOCAL/..., not this machine's paths
    params.update(command=command, publish=publish or publish_command(pub), recipe=run.get("recipe") or recipe)
    params["train_config"] = (json.loads(config_file.read_text()) if config_file.exists()
                              else old.get("train_config") or train_config)
    if "out_dir" in params["train_config"]:   # a run under $KIT_RUNS is recorded as runs/..., not a machine's path
        params["train_config"]["out_dir"] = portable(params["train_config"]["out_dir"])
    params["train_file"] = params.get("train_file") or train_file
    params["machine"] = run.get("machine") or old.get("machine")
    if log is not None:
        from .train import read_log
        params["train_wall_seconds"] = next(e["seconds"] for e in reversed(read_log(log)) if "seconds" in e)
    params["metrics"] = metrics
    if pub.note:
        params["note"] = pub.note
    return {k: v for k, v in params.items() if v not in (None, "")}


# Recipe fields that name files: a command writes them portably ($KIT_SQUAD_ES_LOCAL/..., ${KIT_RUNS:-runs}/...)
# where the run recorded the paths of the machine it ran on.
PATH_FIELDS = ("teacher", "train", "unlabelled", "eval", "teacher_outputs", "init_from", "from_model",
               "answerability_file")


def _same_recipe(pub: Publication, ran: dict, command: dict) -> None:
    """Refuse a --command whose recipe differs from the run's recipe.json in anything but the paths."""
    differ = [k for k in command if k not in PATH_FIELDS and k in ran and ran[k] != command[k]]
    if differ:
        raise ValueError(f"{pub.name}: --command does not train the run in {pub.model}: "
                         + "; ".join(f"{k} is {ran[k]!r} in its recipe.json, {command[k]!r} in the command"
                                     for k in differ) + ". Publish the command that trained it.")


def parse_command(command: str, name: str) -> tuple[dict | None, dict, str]:
    """(recipe, train config, training file) of a `python -m kit train|distill ...` command, parsed by the kit's own
    parser: a command that the kit would refuse is refused here, before it is published as the way to train a model."""
    import argparse
    import contextlib
    import io
    from .cli import options
    from .recipes import SKIP, Recipe, distill_arguments, train_arguments
    from .train import TrainConfig
    words = shlex.split(command)
    if words[:3] != ["python", "-m", "kit"] or len(words) < 4 or words[3] not in ("train", "distill"):
        raise ValueError(f"{name}: the command that trains it must be a `python -m kit train|distill ...` command "
                         f"(give --command, or publish a model that `kit distill` wrote); got {command!r}.")
    parser = argparse.ArgumentParser(prog="python -m kit", exit_on_error=False)
    sub = parser.add_subparsers(dest="command")
    train_arguments(sub.add_parser("train"))
    distill_arguments(sub.add_parser("distill"))
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            args = parser.parse_args(words[3:])
    except (SystemExit, argparse.ArgumentError) as e:
        why = err.getvalue().strip().splitlines()[-1:] or [str(e)]
        raise ValueError(f"{name}: its command does not parse ({why[0]}): {command}") from None
    config = {**options(args, TrainConfig, SKIP), "out_dir": args.out}
    recipe = dataclasses.asdict(Recipe(**options(args, Recipe))) if words[3] == "distill" else None
    return recipe, config, args.train


def publish_command(pub: Publication) -> str:
    """This publication as a `python -m kit publish` command line (its non-default options)."""
    return shlex.join(["python", "-m", "kit", "publish",
                       *flags(dataclasses.replace(pub, model=portable(pub.model)), skip=("command", "note"))])
