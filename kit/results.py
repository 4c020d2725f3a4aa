"""`runs/<profile>/summary.json`: one entry per trained model, each notebook adding its own (runs/ moves with
$KIT_RUNS, see kit.runs)."""
from __future__ import annotations

import json
import os
from pathlib import Path

# re-exported: notebooks and commands reach runs/ as kit.results.run_dir
from .runs import PROFILE_NAME, RUNS_ROOT, portable, run_dir, runs_root  # noqa: F401

ROLES = {"teacher", "student", "baseline", "ablation", "multitask", "single_task", "int8"}
REQUIRED = ("name", "role", "params", "non_embedding_params", "dataset", "exact_match", "f1")


def read_summary(path) -> list[dict]:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else []


def record(path, entry: dict) -> list[dict]:
    """Add `entry` to the summary at `path`, replacing an entry of the same name in its place (tables do not move
    when a model is scored again); returns the summary."""
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise ValueError(f"summary entry {entry.get('name', '?')!r} lacks {missing}")
    if entry["role"] not in ROLES:
        raise ValueError(f"unknown role {entry['role']!r}; valid roles: {sorted(ROLES)}")
    summary = read_summary(path)
    names = [e["name"] for e in summary]
    if entry["name"] in names:
        summary[names.index(entry["name"])] = entry
    else:
        summary.append(entry)
    if entry["role"] == "teacher":  # exactly one teacher per summary: a new one replaces the old
        summary = [e for e in summary if e["role"] != "teacher" or e is entry]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    os.replace(tmp, path)
    return summary


def summary_entry(name: str, role: str, model, dataset: str, metrics: dict, **extra) -> dict:
    """A summary.json entry for `model` scored on `dataset` (metrics as from kit.metrics.squad_scores)."""
    from .models import count_params
    return {"name": name, "role": role, **count_params(model), "dataset": dataset,
            "exact_match": metrics["exact_match"], "f1": metrics["f1"], "n": metrics["n"], **extra}


def results_table(summary_path, others_path=None) -> str:
    """A markdown table of a summary.json: EM/F1, F1 kept relative to the teacher, parameters, latency and
    speed-up where measured. `others_path`: entries of the same form outside the summary (bf16 copies, whose
    latency CONTRACTS.md keeps out of summary.json), shown below it against the same fp32 teacher."""
    entries = read_summary(summary_path)
    others = [dict(e, role=f"{e['precision']} copy") for e in read_summary(others_path)] if others_path else []
    teacher = next((e for e in entries if e["role"] == "teacher"), None)
    lines = ["| model | role | EM | F1 | F1 kept | params (non-embedding) | latency ms, batch 1 | speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries + others:
        kept = f"{100 * e['f1'] / teacher['f1']:.1f}%" if teacher and teacher["f1"] else ""   # F1 0: nothing kept
        lat = e.get("latency_ms")
        speed = f"{teacher['latency_ms'] / lat:.2f}x" if lat and teacher and teacher.get("latency_ms") else ""
        lines.append(f"| {e['name']} | {e['role']} | {e['exact_match']:.2f} | {e['f1']:.2f} | {kept} | "
                     f"{e['params'] / 1e6:.1f}M ({e['non_embedding_params'] / 1e6:.1f}M) | "
                     f"{f'{lat:.1f}' if lat else ''} | {speed} |")
    return "\n".join(lines)


def speed_accuracy_points(entries: list[dict], min_speedups=(2.0, 4.0)) -> list[dict]:
    """For each minimum speed-up, the compressed model (not the teacher, nor the teacher in another
    precision: entries with `base` name their weights) that keeps the most of the teacher's F1 among
    those measured at least that much faster than the teacher; model None where none is."""
    teacher = next((e for e in entries if e["role"] == "teacher"), None)
    if teacher is None or not teacher.get("latency_ms") or not teacher["f1"]:
        return []
    timed = [dict(e, speedup=teacher["latency_ms"] / e["latency_ms"], kept=100 * e["f1"] / teacher["f1"])
             for e in entries if e.get("latency_ms") and teacher["name"] not in (e["name"], e.get("base"))]
    points = []
    for lo in min_speedups:
        best = max((e for e in timed if e["speedup"] >= lo), key=lambda e: e["f1"], default=None)
        points.append({"min_speedup": lo, "model": best and best["name"], "f1": best and best["f1"],
                       "f1_kept": best and round(best["kept"], 1), "speedup": best and round(best["speedup"], 2)})
    return points


def points_text(points: list[dict]) -> str:
    """speed_accuracy_points as markdown bullets."""
    lines = []
    for p in points:
        best = (f"`{p['model']}` keeps {p['f1_kept']:.1f}% of the teacher's F1 ({p['f1']:.2f}) at {p['speedup']:.2f}x"
                if p["model"] else "no model is that fast")
        lines.append(f"- at ≥ {p['min_speedup']:g}x: {best}")
    return "\n".join(lines)


def paper_comparison(entries: list[dict], benchmark: dict | None = None, student: str = "student") -> list[dict]:
    """The paper's table beside a run's: teacher and student EM/F1, F1 retention, parameter ratio, speed-up.

    The run's speed-up is teacher latency / student latency where both were measured (notebook 04), and the
    paper-shaped pair's measured speed-up from benchmark.json is given on its own row."""
    from .paper import PAPER_RESULTS as P
    teacher = next((e for e in entries if e["role"] == "teacher"), None)
    st = next((e for e in entries if e["name"] == student), None)
    if teacher is None or st is None:
        raise ValueError(f"the summary needs a teacher and a student named {student!r}; it has "
                         f"{[e['name'] for e in entries]}. Run notebooks 01 and 02 first.")
    lat_t, lat_s = teacher.get("latency_ms"), st.get("latency_ms")
    rows = [("teacher EM", P["teacher"]["exact_match"], teacher["exact_match"]),
            ("teacher F1", P["teacher"]["f1"], teacher["f1"]),
            ("student EM", P["student"]["exact_match"], st["exact_match"]),
            ("student F1", P["student"]["f1"], st["f1"]),
            ("F1 retention (student / teacher), %", 100 * P["student"]["f1"] / P["teacher"]["f1"],
             100 * st["f1"] / teacher["f1"] if teacher["f1"] else None),
            ("parameters, teacher / student", P["param_ratio"], teacher["params"] / st["params"]),
            ("speed-up, measured on this run's models", P["speedup"], lat_t / lat_s if lat_t and lat_s else None)]
    if benchmark and "speedup" in benchmark:
        rows.append(("speed-up, paper-shaped pair (24x1024 vs 6x512)", P["speedup"], benchmark["speedup"]))
    return [{"quantity": q, "paper": round(p, 2), "this run": None if r is None else round(r, 2)} for q, p, r in rows]


RESULTS_MARKERS = ("<!-- results:es-local -->", "<!-- /results:es-local -->")
FAST_MARKERS = ("<!-- results:es-local-bf16-teacher -->", "<!-- /results:es-local-bf16-teacher -->")
AUG_MARKERS = ("<!-- results:es-local-augmentation -->", "<!-- /results:es-local-augmentation -->")


def paper_point_text(entries: list[dict], min_speedup: float = 4.0) -> str:
    """The paper's operating point beside a summary's best model at least `min_speedup` times faster."""
    from .paper import PAPER_RESULTS as P
    paper = (f"the paper's student keeps {100 * P['student']['f1'] / P['teacher']['f1']:.1f}% of its teacher's F1 "
             f"at {P['speedup']:g}x")
    point = next(iter(speed_accuracy_points(entries, (min_speedup,))), None)
    if not point or not point["model"]:
        return f"- at ≥ {min_speedup:g}x: no model is that fast; {paper}"
    return f"{points_text([point])}; {paper}"


def _replace_block(text: str, markers: tuple[str, str], body: str) -> str:
    begin, end = markers
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


RESULTS_PAGE = "docs/real-data-results.md"   # the docs page that holds the es-local results table


def update_results_page(page=RESULTS_PAGE, summary_path="results/es-local/summary.json",
                  others_path="results/es-local/bf16.json",
                  fast_path="results/es-local/bf16-training/summary.json",
                  aug_path="results/es-local/augmentation/summary.json") -> bool:
    """Rewrite the results page's table and speed/accuracy points between RESULTS_MARKERS from `summary_path` (and
    the bf16 copies in `others_path`, when it exists), between FAST_MARKERS the bf16-trained teacher's own
    summary (`fast_path`: its students, timed against it in one run) beside the paper's point, and between
    AUG_MARKERS the augmentation lesson's summary (`aug_path`) likewise; True if it changed."""
    path = Path(page)
    text = path.read_text(encoding="utf-8")
    others = others_path if Path(others_path).exists() else None
    entries = read_summary(summary_path)
    body = (f"{results_table(summary_path, others)}\n\nBest F1 kept at each speed-up (summary.json: fp32 and int8):\n"
            f"{points_text(speed_accuracy_points(entries))}\n")
    if others:
        body += (f"\nCounting the bf16 copies too ({Path(others).name}, timed in the same run):\n"
                 f"{points_text(speed_accuracy_points(entries + read_summary(others)))}\n")
    new = _replace_block(text, RESULTS_MARKERS, body)
    if FAST_MARKERS[0] in new and Path(fast_path).exists():
        fast = read_summary(fast_path)
        new = _replace_block(new, FAST_MARKERS, f"{results_table(fast_path)}\n\nAgainst the paper:\n"
                                                f"{paper_point_text(fast)}\n")
    if AUG_MARKERS[0] in new and Path(aug_path).exists():
        new = _replace_block(new, AUG_MARKERS, f"{results_table(aug_path)}\n\nAgainst the paper:\n"
                                               f"{paper_point_text(read_summary(aug_path))}\n")
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def timed_on(benchmark: dict | None) -> str:
    """Where the timings of a benchmark.json (notebook 04's or `kit bench`'s) were measured, in words: the CPU's
    model and the instruction sets that decide int8 and bf16 speed (its `cpu`, kit.precision.cpu_description), or,
    in a file written before the kit recorded them, its `machine` line and whether the CPU has native bf16; a run
    on a GPU names the device first."""
    if not benchmark:
        return "no benchmark.json (notebook 04 writes it)"
    cpu = benchmark.get("cpu") or {}
    if cpu.get("model"):
        where = f"{cpu['model']} ({', '.join(cpu.get('instruction_sets') or []) or 'no AVX2, AVX-512 or AMX'})"
    else:
        bf16 = benchmark.get("cpu_native_bf16")
        where = (benchmark.get("machine") or "a machine") + ("" if bf16 is None else
                                                              f", {'with' if bf16 else 'without'} native bf16")
        where += ": its CPU model is not recorded"
    device = str(benchmark.get("device", "cpu"))
    return where if device.startswith("cpu") else f"{device} (CPU: {where})"


if __name__ == "__main__":   # python -m kit.results: refresh the results page's table
    print(f"{RESULTS_PAGE} updated" if update_results_page() else f"{RESULTS_PAGE} already current")

