"""`runs/<profile>/summary.json`: one entry per trained model, each notebook adding its own."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

ROLES = {"teacher", "student", "baseline", "ablation", "multitask", "single_task", "int8"}
REQUIRED = ("name", "role", "params", "non_embedding_params", "dataset", "exact_match", "f1")


PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def run_dir(profile: str) -> Path:
    """runs/<profile>/, refusing a name that would write elsewhere ("../x", "/tmp/x", "a/b")."""
    if not PROFILE_NAME.fullmatch(profile) or ".." in profile:
        raise ValueError(f"profile {profile!r}: use letters, digits, '_', '-' and '.', so that results stay "
                         f"under runs/.")
    return Path("runs") / profile


def read_summary(path) -> list[dict]:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else []


def record(path, entry: dict) -> list[dict]:
    """Add `entry` to the summary at `path`, replacing an entry of the same name; returns the summary."""
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise ValueError(f"summary entry {entry.get('name', '?')!r} lacks {missing}")
    if entry["role"] not in ROLES:
        raise ValueError(f"unknown role {entry['role']!r}; valid roles: {sorted(ROLES)}")
    summary = [e for e in read_summary(path) if e["name"] != entry["name"]]
    if entry["role"] == "teacher":  # exactly one teacher per summary: a new one replaces the old
        summary = [e for e in summary if e["role"] != "teacher"]
    summary.append(entry)
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


def results_table(summary_path) -> str:
    """A markdown table of a summary.json: EM/F1, F1 kept relative to the teacher, parameters, latency and
    speed-up where measured."""
    entries = read_summary(summary_path)
    teacher = next((e for e in entries if e["role"] == "teacher"), None)
    lines = ["| model | role | EM | F1 | F1 kept | params (non-embedding) | latency ms, batch 1 | speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        kept = f"{100 * e['f1'] / teacher['f1']:.1f}%" if teacher else ""
        lat = e.get("latency_ms")
        speed = f"{teacher['latency_ms'] / lat:.2f}x" if lat and teacher and teacher.get("latency_ms") else ""
        lines.append(f"| {e['name']} | {e['role']} | {e['exact_match']:.2f} | {e['f1']:.2f} | {kept} | "
                     f"{e['params'] / 1e6:.1f}M ({e['non_embedding_params'] / 1e6:.1f}M) | "
                     f"{f'{lat:.1f}' if lat else ''} | {speed} |")
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
             100 * st["f1"] / teacher["f1"]),
            ("parameters, teacher / student", P["param_ratio"], teacher["params"] / st["params"]),
            ("speed-up, measured on this run's models", P["speedup"], lat_t / lat_s if lat_t and lat_s else None)]
    if benchmark and "speedup" in benchmark:
        rows.append(("speed-up, paper-shaped pair (24x1024 vs 6x512)", P["speedup"], benchmark["speedup"]))
    return [{"quantity": q, "paper": round(p, 2), "this run": None if r is None else round(r, 2)} for q, p, r in rows]


README_MARKERS = ("<!-- results:es-local -->", "<!-- /results:es-local -->")


def update_readme(readme="README.md", summary_path="results/es-local/summary.json") -> bool:
    """Rewrite the README's table between README_MARKERS from `summary_path`; True if it changed."""
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    begin, end = README_MARKERS
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{begin}\n{results_table(summary_path)}\n{end}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":   # python -m kit.results: refresh the README's results table
    print("README.md updated" if update_readme() else "README.md already current")
