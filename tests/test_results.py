import json

from kit.results import results_table


def test_real_data_results_table_is_generated_from_the_committed_summary(tmp_path):
    # the es-local tables live on docs/real-data-results.md, between kit.results.RESULTS_MARKERS
    from pathlib import Path
    from kit.results import update_results_page
    root = Path(__file__).resolve().parents[1]
    copy = tmp_path / "real-data-results.md"
    copy.write_text((root / "docs/real-data-results.md").read_text(encoding="utf-8"), encoding="utf-8")
    assert not update_results_page(copy, root / "results/es-local/summary.json", root / "results/es-local/bf16.json",
                                   root / "results/es-local/bf16-training/summary.json",
                                   root / "results/es-local/augmentation/summary.json"), \
        "run python -m kit.results"


def test_results_table_shows_kept_f1_and_speed_up(tmp_path):
    summary = [{"name": "t", "role": "teacher", "params": 2e6, "non_embedding_params": 1e6, "dataset": "d",
                "exact_match": 50.0, "f1": 80.0, "latency_ms": 40.0},
               {"name": "s", "role": "student", "params": 1e6, "non_embedding_params": 5e5, "dataset": "d",
                "exact_match": 40.0, "f1": 60.0, "latency_ms": 10.0}]
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    row = results_table(path).splitlines()[3]
    assert row == "| s | student | 40.00 | 60.00 | 75.0% | 1.0M (0.5M) | 10.0 | 4.00x |"
    others = tmp_path / "bf16.json"     # rows outside the summary are measured against its fp32 teacher
    others.write_text(json.dumps([dict(summary[1], name="s_bf16", precision="bf16", f1=59.0, latency_ms=5.0)]))
    assert results_table(path, others).splitlines()[4] == \
        "| s_bf16 | bf16 copy | 40.00 | 59.00 | 73.8% | 1.0M (0.5M) | 5.0 | 8.00x |"


def test_speed_accuracy_points_pick_the_best_student_fast_enough_and_never_the_teacher():
    from kit.results import points_text, speed_accuracy_points
    e = lambda name, f1, lat, **kw: {"name": name, "role": kw.pop("role", "student"), "f1": f1, "latency_ms": lat, **kw}
    entries = [e("t", 80.0, 40.0, role="teacher"), e("t_bf16", 79.9, 10.0, role="bf16", base="t"),  # 4x, but the teacher
               e("a", 78.0, 19.0), e("b", 76.0, 20.0), e("c", 70.0, 10.5), e("d", 74.0, None)]        # d: not timed
    points = speed_accuracy_points(entries)
    assert [(p["min_speedup"], p["model"], p["speedup"], p["f1_kept"]) for p in points] == [
        (2.0, "a", 2.11, 97.5), (4.0, None, None, None)]   # c is 3.81x: below 4x
    assert points_text(points) == ("- at ≥ 2x: `a` keeps 97.5% of the teacher's F1 (78.00) at 2.11x\n"
                                   "- at ≥ 4x: no model is that fast")
    assert speed_accuracy_points([e("t", 80.0, None, role="teacher")]) == []


def test_the_paper_point_is_printed_beside_the_best_model_at_4x():
    from kit.results import paper_point_text
    teacher = {"name": "t", "role": "teacher", "f1": 60.0, "latency_ms": 100.0}
    slow = {"name": "s6", "role": "student", "f1": 57.0, "latency_ms": 30.0}           # 3.33x: too slow
    fast = {"name": "s5_int8", "role": "int8", "base": "s5", "f1": 54.0, "latency_ms": 24.0}   # 4.17x
    text = paper_point_text([teacher, slow, fast])
    assert text == ("- at ≥ 4x: `s5_int8` keeps 90.0% of the teacher's F1 (54.00) at 4.17x; the paper's student "
                    "keeps 92.0% of its teacher's F1 at 4.2x")
    assert paper_point_text([teacher, slow]).startswith("- at ≥ 4x: no model is that fast; the paper's")
