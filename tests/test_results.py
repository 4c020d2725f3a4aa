import json

from kit.results import results_table


def test_readme_results_table_is_generated_from_the_committed_summary(tmp_path):
    from pathlib import Path
    from kit.results import update_readme
    root = Path(__file__).resolve().parents[1]
    copy = tmp_path / "README.md"
    copy.write_text((root / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    assert not update_readme(copy, root / "results/es-local/summary.json"), "run python -m kit.results"


def test_results_table_shows_kept_f1_and_speed_up(tmp_path):
    summary = [{"name": "t", "role": "teacher", "params": 2e6, "non_embedding_params": 1e6, "dataset": "d",
                "exact_match": 50.0, "f1": 80.0, "latency_ms": 40.0},
               {"name": "s", "role": "student", "params": 1e6, "non_embedding_params": 5e5, "dataset": "d",
                "exact_match": 40.0, "f1": 60.0, "latency_ms": 10.0}]
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    row = results_table(path).splitlines()[3]
    assert row == "| s | student | 40.00 | 60.00 | 75.0% | 1.0M (0.5M) | 10.0 | 4.00x |"
