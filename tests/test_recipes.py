"""`kit distill` (kit.recipes) and `kit publish` (kit.publish): a student trained by a recipe from the command line,
recorded beside it, and published as results/es-local's entries are. The teacher is conftest's tiny 2-layer model,
with its eight questions."""
import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kit.cli import add_options, options
from kit.publish import Publication, parse_command
from kit.recipes import Recipe
from kit.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
LOOP = ["--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--max-length", "64", "--stride", "16",
        "--threads", "1", "--mixed-precision", "no", "--save-every", "2"]


def kit(*args):
    return subprocess.run([sys.executable, "-m", "kit", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def _parser(build):
    from kit import __main__ as cli
    parser = argparse.ArgumentParser()
    getattr(cli, build)(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("build, command, classes", [
    ("_parser_distill", ["distill", "--out", "o"], (Recipe, TrainConfig)),
    ("_parser_publish", ["publish"], (Publication,)),
])
def test_generated_options_have_the_dataclasses_defaults_and_help(build, command, classes):
    parser = _parser(build)
    args = parser.parse_args(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command[0]]
    helps = {a.dest: a.help or "" for a in sub._actions}
    for cls in classes:
        skip = ("resume", "out_dir") if cls is TrainConfig else ()
        assert cls(**options(args, cls, skip)) == cls()          # every default is the dataclass's
        for f in dataclasses.fields(cls):
            if f.name not in skip:
                assert f.metadata["help"] in helps[f.name], f.name   # and every help text


def test_cli_option_types_follow_the_annotations():
    parser = argparse.ArgumentParser()
    add_options(parser, Recipe)
    args = parser.parse_args(["--layers", "8", "--temperature", "2", "--teacher-layers", "0,2,4"])
    recipe = Recipe(**options(args, Recipe))
    assert (recipe.layers, recipe.temperature, recipe.teacher_layers) == (8, 2.0, "0,2,4")
    assert recipe.layer_list() == [0, 2, 4]
    with pytest.raises(SystemExit):      # a mistyped value is refused before anything runs
        parser.parse_args(["--layers", "eight"])


def test_kit_distill_trains_records_its_recipe_and_refuses_another(tiny, tmp_path):
    teacher, out, data = tiny[4], tmp_path / "student", str(tiny[0])
    recipe = ["--teacher", teacher, "--train", data, "--layers", "1", "--init", "teacher_layers"]
    r = kit("distill", *recipe, "--out", out, *LOOP)
    assert r.returncode == 0, r.stderr
    assert (out / "config.json").exists() and (out / "log.jsonl").exists()
    record = json.loads((out / "recipe.json").read_text())
    assert record["recipe"] == dataclasses.asdict(Recipe(teacher=str(teacher), train=data, layers=1,
                                                         init="teacher_layers", max_length=64, stride=16))
    assert record["train_config"]["batch_size"] == 4 and record["train_config"]["num_threads"] == 1
    # the recorded command reruns the same run: parsed by the kit's own parser, it gives the same recipe and config
    parsed, config, _ = parse_command(record["command"], "student")
    assert parsed == record["recipe"]
    assert {k: v for k, v in config.items() if k != "resume"} == \
        {k: v for k, v in record["train_config"].items() if k != "resume"}
    # the student learnt from teacher layer 1 (the top of the uniform block); layer 0 instead is another recipe
    r = kit("distill", *recipe, "--teacher-layers", "0", "--out", out, *LOOP)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "teacher_layers '' -> '0'" in r.stderr and "--fresh" in r.stderr
    assert json.loads((out / "recipe.json").read_text()) == record      # the refused run changed nothing
    r = kit("distill", *recipe, "--teacher-layers", "0", "--out", out, *LOOP, "--fresh")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "recipe.json").read_text())["recipe"]["teacher_layers"] == "0"


def test_baseline_and_multitask_recipes_train_without_the_teacher(tiny, tmp_path):
    from kit.multitask import MultiTaskModel
    from kit.recipes import train_recipe
    base = Recipe(teacher=str(tiny[4]), train=str(tiny[0]), mode="baseline", layers=1, init="teacher_layers",
                  max_length=64, stride=16)
    cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-3, num_threads=1, mixed_precision="no", log_every=1)
    log = train_recipe(base, cfg.replace(out_dir=str(tmp_path / "baseline")))
    assert {k for e in log if e["kind"] == "train" for k in e} >= {"task", "loss"}
    assert not {"logits", "attention", "hidden"} & {k for e in log for k in e}     # no teacher term
    multi = dataclasses.replace(base, tasks="qa,answerability")
    log = train_recipe(multi, cfg.replace(out_dir=str(tmp_path / "multi"), max_updates=4))
    assert {"qa/loss", "answerability/loss"} <= {k for e in log for k in e}     # both tasks trained
    assert set(MultiTaskModel.from_pretrained(tmp_path / "multi").task_spec) == {"qa", "answerability"}


def test_recipe_models_load_with_sdpa_and_the_loss_switches_them_where_it_reads_maps(tiny, tmp_path):
    from kit.recipes import train_recipe
    base = Recipe(teacher=str(tiny[4]), train=str(tiny[0]), layers=1, init="teacher_layers", max_length=64, stride=16)
    cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-3, num_threads=1, mixed_precision="no", log_every=1,
                      max_updates=8)
    for name, recipe, maps in (("logits", dataclasses.replace(base, attention_weight=0.0), False),
                               ("paper", base, True),
                               # MultiTaskLoss distils the maps whatever the recipe's weights
                               ("multi", dataclasses.replace(base, tasks="qa,answerability", attention_weight=0.0),
                                True)):
        log = train_recipe(recipe, cfg.replace(out_dir=str(tmp_path / name)))
        terms = {k.removeprefix("qa/") for e in log for k in e}
        assert ("attention" in terms) == maps, name
        assert {"task", "logits", "hidden"} <= terms, name


@pytest.fixture(scope="module")
def distilled(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("distilled") / "student"
    r = kit("distill", "--teacher", tiny[4], "--train", tiny[0], "--layers", "1", "--out", out, *LOOP)
    assert r.returncode == 0, r.stderr
    return out


def test_kit_publish_writes_every_file_and_republishes_the_same_numbers(tiny, distilled, tmp_path):
    from kit.models import count_params, load_qa_model
    from kit.train import read_log
    res, test = tmp_path / "results", tiny[0]
    r = kit("publish", "--name", "s", "--role", "student", "--model", distilled, "--data", test, "--results", res)
    assert r.returncode == 0, r.stderr
    entry = json.loads((res / "summary.json").read_text())[0]
    assert entry["name"] == "s" and entry["role"] == "student" and entry["n"] == len(tiny[1])
    assert {k: entry[k] for k in ("params", "non_embedding_params")} == count_params(load_qa_model(distilled))
    params = json.loads((res / "s.params.json").read_text())
    recorded = json.loads((distilled / "recipe.json").read_text())
    assert params["command"] == recorded["command"] and params["recipe"] == recorded["recipe"]
    assert params["train_config"] == json.loads((distilled / "train_config.json").read_text())
    assert params["train_wall_seconds"] == [e["seconds"] for e in read_log(distilled) if "seconds" in e][-1]
    assert params["metrics"] == {k: entry[k] for k in ("exact_match", "f1", "n")}
    assert (res / "s.log.jsonl").read_text() == (distilled / "log.jsonl").read_text()
    predictions = json.loads((res / "s.predictions.json").read_text())
    assert set(predictions) == {e.id for e in tiny[1]}
    # latency measured later (notebook 04, kit bench --summary) stays when the same answers are published again
    (res / "summary.json").write_text(json.dumps([dict(entry, latency_ms=12.5)]))
    r = kit("publish", "--name", "s", "--role", "student", "--predictions", res / "s.predictions.json",
            "--data", test, "--results", res)
    assert r.returncode == 0, r.stderr
    assert json.loads((res / "summary.json").read_text()) == [dict(entry, latency_ms=12.5)]
    # an int8 copy of the same weights: an entry of role int8 naming its base, no params.json of its own
    r = kit("publish", "--name", "s_int8", "--precision", "int8", "--model", distilled, "--data", test,
            "--results", res)
    assert r.returncode == 0, r.stderr
    copy = json.loads((res / "summary.json").read_text())[1]
    assert (copy["role"], copy["base"], copy["params"]) == ("int8", "s", entry["params"])
    assert not (res / "s_int8.params.json").exists()


def test_a_model_published_from_kit_runs_is_recorded_without_the_machines_path(tiny, distilled, tmp_path,
                                                                             monkeypatch):
    import shutil
    root = tmp_path / "elsewhere" / "runs-root"
    shutil.copytree(distilled, root / "es" / "student")
    config = root / "es" / "student" / "train_config.json"   # as a run trained there records itself
    config.write_text(json.dumps({**json.loads(config.read_text()), "out_dir": str(root / "es" / "student")}))
    monkeypatch.setenv("KIT_RUNS", str(root))
    res = tmp_path / "results"
    r = kit("publish", "--name", "student", "--role", "student", "--model", root / "es" / "student", "--data",
            tiny[0], "--results", res)
    assert r.returncode == 0, r.stderr
    params = json.loads((res / "student.params.json").read_text())
    assert "--model runs/es/student" in params["publish"]
    assert params["train_config"]["out_dir"] == "runs/es/student"
    assert str(tmp_path / "elsewhere") not in json.dumps(params)


def test_a_published_command_must_be_the_runs_own_and_gives_the_recipe_its_paths(tiny, distilled, tmp_path):
    res, test = tmp_path / "results", tiny[0]
    command = ('python -m kit distill --teacher "${KIT_RUNS:-runs}/t" --train "$KIT_SQUAD_ES_LOCAL/train.json" '
               '--layers LAYERS --max-length 64 --stride 16 --out "${KIT_RUNS:-runs}/student"')
    r = kit("publish", "--name", "student", "--role", "student", "--model", distilled, "--data", test, "--results",
            res, "--command", command.replace("LAYERS", "2"))
    assert r.returncode != 0 and "layers is 1 in its recipe.json, 2 in the command" in r.stderr
    r = kit("publish", "--name", "student", "--role", "student", "--model", distilled, "--data", test, "--results",
            res, "--command", command.replace("LAYERS", "1"))
    assert r.returncode == 0, r.stderr
    recipe = json.loads((res / "student.params.json").read_text())["recipe"]
    assert (recipe["teacher"], recipe["train"], recipe["layers"]) == \
        ("${KIT_RUNS:-runs}/t", "$KIT_SQUAD_ES_LOCAL/train.json", 1)


@pytest.mark.parametrize("args, words", [
    (["publish", "--name", "s", "--role", "student", "--model", "runs/nope"], ["runs/nope", "no such model"]),
    (["publish", "--name", "s", "--role", "studnet", "--model", "MODEL"], ["--role 'studnet'", "baseline, int8"]),
    (["publish", "--name", "s", "--role", "student"], ["--model DIR", "--predictions FILE"]),
    (["publish", "--name", "s", "--role", "student", "--predictions", "nope.json"], ["nope.json", "no such file"]),
    (["distill", "--out", "o", "--layer-map", "copied"],
     ["layer_map 'copied' needs teacher_layers", "--teacher-layers"]),
    (["distill", "--out", "o", "--mode", "teach"], ["mode 'teach'", "distill, baseline"]),
])
def test_bad_input_fails_with_a_message_naming_the_fix(tiny, args, words):
    r = kit(*[tiny[4] if a == "MODEL" else a for a in args])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr


def test_a_published_command_must_be_one_the_kit_accepts():
    with pytest.raises(ValueError, match="must be a `python -m kit train|distill"):
        parse_command("python results/es-local/distill_students.py student 1", "student")
    with pytest.raises(ValueError, match="does not parse.*--layerz"):
        parse_command("python -m kit distill --out o --layerz 8", "student")
