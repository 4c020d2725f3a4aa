"""results/es-local: every published number is scored from its committed predictions by the kit, agrees with an
independent MLQA-style scorer, and comes with the kit command that trains its model."""
import json
import re
from pathlib import Path

import pytest

import mlqa_eval
from kit.publish import parse_command
from kit.train import read_log

RESULTS = Path(__file__).resolve().parents[1] / "results" / "es-local"
SUMMARIES = ("summary.json", "bf16.json", "bf16-training/summary.json", "augmentation/summary.json")


def entries():
    return [(RESULTS / s).parent / f"{e['name']}.predictions.json" for s in SUMMARIES
            for e in json.loads((RESULTS / s).read_text())], \
        [e for s in SUMMARIES for e in json.loads((RESULTS / s).read_text())]


def test_both_scorers_give_the_published_numbers():
    from kit.data import load_squad
    from kit.metrics import squad_scores
    from kit.profiles import squad_es_local
    test = Path(squad_es_local()) / "test-v1.1.json"
    if not test.exists():
        pytest.skip(f"{test} not available: set KIT_SQUAD_ES_LOCAL (docs/real-data-results.md, The data)")
    examples, _ = load_squad(test)
    raw = json.loads(test.read_text(encoding="utf-8"))
    for path, entry in zip(*entries()):
        predictions = json.loads(path.read_text())
        ours, independent = squad_scores(examples, predictions), mlqa_eval.evaluate(raw, predictions)
        assert ours["n"] == independent["n"] == entry["n"], path.name
        for metric in ("exact_match", "f1"):
            assert ours[metric] == entry[metric], (path.name, metric)               # to the last digit
            assert ours[metric] == pytest.approx(independent[metric], abs=1e-4), (path.name, metric)


def test_every_published_model_says_which_kit_command_trains_it():
    for params_file in sorted(RESULTS.glob("*.params.json")) + sorted(RESULTS.glob("*/*.params.json")):
        params = json.loads(params_file.read_text())
        name = params_file.name.removesuffix(".params.json")
        recipe, config, train_file = parse_command(params["command"], name)   # the kit's own parser accepts it
        assert config["out_dir"].endswith(f"/{name}") and "$KIT_SQUAD_ES_LOCAL/" in train_file, params_file
        if recipe is not None:
            assert params["recipe"] == recipe, params_file
        log = params_file.with_name(f"{name}.log.jsonl")
        assert params["train_wall_seconds"] == [e["seconds"] for e in read_log(log) if "seconds" in e][-1]
        assert params["metrics"]["f1"] in [e["f1"] for s in SUMMARIES for e in json.loads((RESULTS / s).read_text())
                                           if e["name"] == name and (RESULTS / s).parent == params_file.parent]


def test_results_do_not_reach_into_tests_or_local_paths():
    for path in RESULTS.rglob("*"):
        if path.suffix not in (".py", ".sh", ".json") or path.name.endswith((".predictions.json", ".log.jsonl")):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"sys\.path\.insert|import mlqa_eval|from tests", text), path
        if path.suffix != ".py":     # the three measuring scripts are being turned into `kit bench` options
            assert "../shared" not in text and "../cache" not in text, path
