"""$KIT_RUNS moves the runs folder for every command (kit.results.run_dir, read when a command runs, not when the
kit is imported): defaults under runs/ follow it, a real command writes under it and nothing under ./runs, and a
run whose runs folder moved (another machine, another mount point) still resumes from its checkpoint there."""
import json
import shutil
from pathlib import Path

import pytest

from kit.results import RUNS_ROOT, portable, run_dir, runs_root

LOOP = ["--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--max-length", "64", "--stride", "16",
        "--threads", "1", "--mixed-precision", "no", "--save-every", "1"]


def test_run_dir_reads_kit_runs_when_called(monkeypatch, tmp_path):
    monkeypatch.delenv(RUNS_ROOT, raising=False)
    assert runs_root() == Path("runs") and run_dir("es-local") == Path("runs/es-local")
    monkeypatch.setenv(RUNS_ROOT, str(tmp_path))
    assert run_dir("es-local") == tmp_path / "es-local"
    assert portable(str(tmp_path / "es-local" / "teacher")) == "runs/es-local/teacher"   # the form without it
    assert portable("data/train.json") == "data/train.json"                             # elsewhere: unchanged


def test_defaults_under_runs_follow_kit_runs(monkeypatch, tmp_path):
    """The recipe's teacher, run_bench's models_dir and out, and the commands' defaults."""
    import argparse
    from kit import __main__ as cli
    from kit import bench
    from kit.recipes import Recipe, command_line
    from kit.train import TrainConfig
    monkeypatch.setenv(RUNS_ROOT, str(tmp_path))
    assert Recipe().teacher == str(tmp_path / "demo" / "teacher")
    parser = argparse.ArgumentParser()
    cli._parser_distill(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["distill", "--out", "o"]).teacher == str(tmp_path / "demo" / "teacher")
    # the recorded command names the teacher it used, not a default another $KIT_RUNS would change
    assert f"--teacher {tmp_path / 'demo' / 'teacher'}" in command_line(Recipe(), TrainConfig(out_dir="o"))
    monkeypatch.delenv(RUNS_ROOT)
    assert Recipe().teacher == "runs/demo/teacher"

    monkeypatch.setenv(RUNS_ROOT, str(tmp_path))
    seen = {}
    monkeypatch.setattr(bench, "_collect", lambda models, paper_pair, summaries, models_dir, *a:
                        seen.setdefault("models_dir", models_dir) and [])
    with pytest.raises(ValueError, match="nothing to time"):
        bench.run_bench(summaries=["s.json"])
    assert seen["models_dir"] == tmp_path / "demo"
    calls = []
    monkeypatch.setattr(bench, "run_bench", lambda **kw: calls.append(kw))
    cli.main(["bench", "--summary", "s.json"])
    cli.main(["bench", "--summary", "s.json", "--profile", "es-local"])
    assert [(c["models_dir"], c["out"]) for c in calls] == [
        (tmp_path / "demo", tmp_path / "demo" / "benchmark.json"),
        (tmp_path / "es-local", tmp_path / "es-local" / "benchmark.json")]


def test_kit_bench_writes_under_kit_runs_and_nothing_under_runs(tmp_path, monkeypatch):
    from kit.__main__ import main
    from kit.models import build_qa_model, qa_config
    model = tmp_path / "m"
    build_qa_model(qa_config("roberta", vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32, max_length=16)).save_pretrained(model)
    runs, cwd = tmp_path / "elsewhere", tmp_path / "checkout"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv(RUNS_ROOT, str(runs))
    main(["bench", "--model", str(model), "--seq-lens", "8", "--batch-sizes", "1", "--rounds", "1"])
    assert json.loads((runs / "demo" / "benchmark.json").read_text())["models"]
    assert not (cwd / "runs").exists()


def test_a_run_resumes_under_kit_runs_after_its_runs_folder_moved(tiny, tmp_path, monkeypatch, capsys):
    """kit distill with the default teacher (<runs root>/demo/teacher) writes its checkpoint under $KIT_RUNS; the
    runs folder moved whole and $KIT_RUNS pointed at the new place, the same command resumes there."""
    from kit.__main__ import main
    first, moved, cwd = tmp_path / "drive", tmp_path / "other-mount", tmp_path / "checkout"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    shutil.copytree(tiny[4], first / "demo" / "teacher")
    monkeypatch.setenv(RUNS_ROOT, str(first))
    args = ["distill", "--train", str(tiny[0]), "--layers", "1", "--init", "teacher_layers", *LOOP]
    main([*args, "--out", str(first / "es" / "student")])
    record = json.loads((first / "es" / "student" / "recipe.json").read_text())
    assert record["recipe"]["teacher"] == str(first / "demo" / "teacher")
    assert (first / "es" / "student" / "checkpoint-last" / "trainer_state.json").exists()
    assert not (cwd / "runs").exists()
    capsys.readouterr()

    first.rename(moved)
    monkeypatch.setenv(RUNS_ROOT, str(moved))
    main([*args, "--out", str(moved / "es" / "student")])      # the teacher's path differs; the run is the same one
    assert "resuming from" in capsys.readouterr().out
    assert not (cwd / "runs").exists() and not first.exists()
