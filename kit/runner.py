"""Run numbered notebooks headless with papermill, refusing parameters a notebook does not have.

    python -m kit run notebooks/02_dense_distillation.ipynb --profile mine -p epochs 3
    python -m kit reproduce --profile es-local          # notebooks 01-05 in order (= make reproduce PROFILE=...)

A profile named in kit.profiles gives each notebook its parameters (-p overrides them); another name
only chooses where results go (runs/<name>/) and keeps the notebook's defaults.
`reproduce` stops at the first failing notebook, naming it and the cell. Rerun, it skips a notebook that
finished with the same cells, parameters and kit source when no notebook before it ran again (a marker
runs/<profile>/notebooks/<notebook>.done.json records them); otherwise the notebook runs again with its
trainings from scratch (`resume=False`), and says why. --fresh reruns every notebook from scratch.

A `-p NAME VALUE` from the command line takes the type of the notebook's default for NAME (`typed_value`).

Papermill on its own only warns about an unknown name (a typo such as `-p epoch 3` would run the
default number of epochs without a word); here it is an error that lists the valid names.
The executed copy goes to runs/<profile>/notebooks/.
"""
from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from .optional import install_hint, require
from .results import run_dir


def parse_value(text: str):
    """'3' -> 3, '1e-3' -> 0.001, 'True' -> True, '[1, 8]' -> [1, 8], anything else stays a string. Used only for
    a parameter whose default gives no type (see `typed_value`)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _cell_source(cell: dict) -> str:
    """A cell's text: nbformat stores it as one string or as a list of lines."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


UNTYPED = object()   # a default that is not a literal (e.g. os.environ.get(...)): its type is unknown


def notebook_defaults(notebook) -> dict:
    """{name: default} of the notebook's cell tagged `parameters`, read with Python's own parser (papermill's
    line-by-line reading skips a line whose comment holds quotes, e.g. `x = ""  # "" = none`); a default that is
    not a literal is UNTYPED."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    defaults = {}

    def literal(node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            return UNTYPED

    for node in ast.parse(_cell_source(cell)).body:
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs = [(node.target, node.value)]
        else:
            continue
        for target, value in pairs:
            if isinstance(target, ast.Tuple):   # w_a, w_b = 1.0, 2.0
                values = value.elts if isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts) else None
                for k, n in enumerate(target.elts):
                    if isinstance(n, ast.Name):
                        defaults.setdefault(n.id, literal(values[k]) if values else UNTYPED)
            elif isinstance(target, ast.Name):
                defaults.setdefault(target.id, literal(value))
    return defaults


def notebook_parameters(notebook) -> list[str]:
    """The names assigned in the notebook's cell tagged `parameters`."""
    return list(notebook_defaults(notebook))


def check_parameters(notebook, parameters: dict) -> None:
    """Refuse a name the notebook does not have, listing the valid ones."""
    known = notebook_parameters(notebook)
    if not known:
        raise ValueError(f"{notebook}: no cell tagged 'parameters', so it takes no parameters.")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{notebook} has no parameter {', '.join(map(repr, unknown))}. Valid names: "
                         f"{', '.join(known)}.")


def typed_value(name: str, text: str, default, where: str = ""):
    """A command-line VALUE (text) as the type of the parameter's default: a string default keeps the text as it
    is (`teacher_layers 0,2,4` stays "0,2,4"), an int default also takes a float (`epochs 0.5`), a bool takes
    True/False (or 1/0, yes/no), a list takes a Python list (or one item). A value that does not fit is refused
    with the type expected."""
    def refuse(expected):
        raise ValueError(f"{where}parameter {name} = {text!r}: expected {expected}, as its default {default!r}.")
    if default is UNTYPED or default is None:
        return parse_value(text)
    if isinstance(default, str):
        return text
    if isinstance(default, bool):
        word = text.strip().lower()
        if word in ("true", "1", "yes"):
            return True
        if word in ("false", "0", "no"):
            return False
        refuse("True or False")
    if isinstance(default, (int, float)):
        try:
            number = float(text)
        except ValueError:
            refuse("a number")
        if isinstance(default, int) and number.is_integer() and not any(c in text for c in ".eE"):
            return int(number)
        return number
    if isinstance(default, (list, tuple)):
        value = parse_value(text)
        value = list(value) if isinstance(value, (list, tuple)) else [value]
        if default and any(not isinstance(v, type(default[0])) and not (isinstance(v, int) and isinstance(default[0], float))
                           for v in value):
            refuse(f"a list of {type(default[0]).__name__}")
        return value
    return parse_value(text)


def typed_parameters(notebook, parameters: dict) -> dict:
    """`parameters` with every text value converted to its default's type (`typed_value`); other values as given."""
    defaults = notebook_defaults(notebook)
    return {name: typed_value(name, value, defaults.get(name, UNTYPED), f"{Path(notebook).name}: ")
            if isinstance(value, str) else value for name, value in parameters.items()}


@contextlib.contextmanager
def console_to_log(log_path: Path):
    """Send everything this process and its children (the notebook kernels) write to stdout and stderr into
    `log_path`, and yield a stream on the terminal for the few lines a user should read. Papermill's cell
    log, kernel start-up warnings and library warnings are for whoever debugs a run, not for a newcomer."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    papermill_log = logging.getLogger("papermill")
    with open(log_path, "a", encoding="utf-8") as log:
        handler = logging.StreamHandler(log)              # papermill's cell log, whoever holds sys.stderr
        papermill_log.addHandler(handler)
        papermill_log.propagate, papermill_log.level, level = False, logging.INFO, papermill_log.level
        for fd in (1, 2):                                 # the kernels' own stderr (start-up warnings)
            os.dup2(log.fileno(), fd)
        try:
            yield console
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            for fd, original in saved.items():
                os.dup2(original, fd)
                os.close(original)
            console.close()
            papermill_log.removeHandler(handler)
            papermill_log.propagate, papermill_log.level = True, level


def _papermill():
    """papermill, and ipykernel for the kernel it starts: both in the `notebooks` extra (kit.optional)."""
    purpose = "Running notebooks headless (kit run, kit reproduce)"
    require("ipykernel", "notebooks", purpose)
    return require("papermill", "notebooks", purpose)


def run_notebook(notebook, profile: str = "demo", parameters: dict | None = None, console=None) -> Path:
    papermill = _papermill()
    from .profiles import PROFILES, profile_parameters
    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"{notebook}: no such notebook.")
    parameters = {**(profile_parameters(profile, notebook.name) if profile in PROFILES else {}), **(parameters or {})}
    if profile != "demo":
        parameters.setdefault("profile", profile)
    check_parameters(notebook, parameters)
    out = run_dir(profile) / "notebooks" / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    # The executed notebook is what a learner reads: progress bars would store one line per refresh there.
    # The kernel inherits this process's environment; tqdm reads TQDM_DISABLE at each bar.
    # The same for tqdm.auto's import-time warning in a kernel without ipywidgets (a library imports it): it
    # says nothing about the notebook. Kernels inherit this process's environment.
    previous = {k: os.environ.get(k) for k in ("TQDM_DISABLE", "PYTHONWARNINGS")}
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [previous["PYTHONWARNINGS"], "ignore:IProgress not found"]))
    try:
        # with a console: one bar over the notebook's cells there, the cells' output in the log only
        bar = dict(file=console, desc=f"   {notebook.stem}", unit="cell", mininterval=2, leave=False,
                   bar_format="{desc} {bar:25} {n_fmt}/{total_fmt} cells, {elapsed}") if console else False
        papermill.execute_notebook(str(notebook), str(out), parameters=parameters, cwd=".", kernel_name="python3",
                                   log_output=True, progress_bar=bar)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return out


class NotebookFailed(RuntimeError):
    """A notebook of a reproduce run failed: the message names it, the cell and the error."""


RESUME = "resume"   # a notebook parameter: False starts its trainings from scratch (kit reproduce sets it)


def kit_source_digest() -> str:
    """sha256 of the kit's own source files: a notebook's results depend on them as much as on its cells."""
    import hashlib
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _fingerprint(notebook: Path, parameters: dict, kit_digest: str) -> dict:
    """What decides a notebook's results: its cells' sources, its parameters (not `resume`, which says how, not
    what) and the kit's source. Stored outputs and metadata are left out, so that pulling a commit that only
    refreshed them does not rerun hours of training."""
    import hashlib
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = json.dumps([[c["cell_type"], _cell_source(c)] for c in cells])
    return {"cells_sha256": hashlib.sha256(code.encode()).hexdigest(), "kit_sha256": kit_digest,
            "parameters": {k: v for k, v in parameters.items() if k != RESUME}}


def _why_rerun(old: dict | None, new: dict, fresh: bool, upstream: str | None) -> str | None:
    """Why a notebook runs again (None: it need not), in words for the terminal."""
    if fresh:
        return "--fresh"
    if old is None:
        return None
    reasons = []
    if upstream:
        reasons.append(f"{upstream} ran again before it")
    if old.get("cells_sha256") != new["cells_sha256"]:
        reasons.append("its cells changed")
    changed = sorted(k for k in set(old.get("parameters", {})) | set(new["parameters"])
                     if old.get("parameters", {}).get(k) != new["parameters"].get(k))
    if changed:
        reasons.append(f"parameters changed ({', '.join(changed)})")
    if old.get("kit_sha256") != new["kit_sha256"]:
        reasons.append("the kit's source changed")
    return "; ".join(reasons) or None


def reproduce(profile: str, overrides: dict[str, dict] | None = None, notebooks_dir="notebooks", fresh: bool = False,
              notebooks=None) -> list[Path]:
    """Run the numbered notebooks of kit.profiles.NOTEBOOKS in order for `profile` (see the module docstring).

    overrides: {notebook stem: {name: value}} on top of the profile. Every notebook's parameters are checked
    before the first one runs, so a typo fails in a second, not after hours.

    A notebook that finished before (its marker runs/<profile>/notebooks/<stem>.done.json) is skipped when its
    cells, parameters and the kit's source are those of that run and no notebook before it ran again; else it
    runs again, and its trainings start from scratch (its `resume` parameter set to False, where it has one).
    A notebook that never finished (e.g. killed) runs again and resumes its trainings.
    """
    papermill = _papermill()
    from .profiles import profile_notebooks, profile_parameters
    overrides = overrides or {}
    stems = list(notebooks or profile_notebooks(profile))
    unknown = sorted(set(overrides) - set(stems))
    if unknown:
        raise ValueError(f"no notebook {', '.join(unknown)} in this run; valid: {', '.join(stems)}.")
    plan = []
    for stem in stems:
        path = Path(notebooks_dir) / f"{stem}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such notebook (the profile expects {', '.join(stems)}).")
        params = {**profile_parameters(profile, stem), **overrides.get(stem, {})}
        check_parameters(path, params)
        plan.append((stem, path, params))
    done_dir = run_dir(profile) / "notebooks"
    log_path = run_dir(profile) / "reproduce.log"
    written, start, kit_digest, upstream = [], time.time(), kit_source_digest(), None
    with console_to_log(log_path) as console:
        say = lambda text: print(text, file=console, flush=True)
        say(f"profile {profile}: notebooks {', '.join(stems)}; the full log goes to {log_path}")
        for k, (stem, path, params) in enumerate(plan, 1):
            marker = done_dir / f"{stem}.done.json"
            stamp = _fingerprint(path, params, kit_digest)
            old = json.loads(marker.read_text()) if marker.exists() else None
            why = _why_rerun(old, stamp, fresh, upstream)
            if old is not None and why is None:
                say(f"[{k}/{len(plan)}] {stem}: skipped: it finished before with these cells, parameters and kit "
                    f"source, and no notebook before it ran again (--fresh reruns it)")
                written.append(done_dir / path.name)
                continue
            params = dict(params)
            if why is not None and RESUME in notebook_parameters(path):
                params[RESUME] = False      # its old trainings belong to other inputs: never continue them
            say(f"[{k}/{len(plan)}] {stem}: running{f' again ({why})' if why else ''}"
                f"{' with ' + str(params) if params else ''}")
            logging.getLogger("papermill").info("== %s (profile %s%s)", path, profile, f", {params}" if params else "")
            marker.unlink(missing_ok=True)
            upstream = upstream or stem
            t0 = time.time()
            try:
                out = run_notebook(path, profile, {**overrides.get(stem, {}), **params}, console=console)
            except papermill.PapermillExecutionError as e:
                missing = f" Install it: {install_hint('notebooks')}." if e.ename == "ModuleNotFoundError" else ""
                raise NotebookFailed(f"{path} failed in cell {e.cell_index} (execution count {e.exec_count}): "
                                     f"{e.ename}: {e.evalue}.{missing} The executed copy with the traceback is "
                                     f"{done_dir / path.name}, the full log {log_path}; fix the cause and rerun: "
                                     f"notebooks that finished are skipped.") from None
            marker.write_text(json.dumps(stamp, indent=1))
            say(f"[{k}/{len(plan)}] {stem}: done in {_minutes(time.time() - t0)}")
            written.append(out)
        say(run_report(profile, time.time() - start))
    return written


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def run_report(profile: str, seconds: float) -> str:
    """What a run produced: each model of its summary.json (F1, parameters, speed-up) and where things are."""
    from .results import read_summary
    folder = run_dir(profile)
    summary = folder / "summary.json"
    entries = read_summary(summary) if summary.exists() else []
    teacher = next((e for e in entries if e["role"] == "teacher"), None)
    lines = [f"finished in {_minutes(seconds)}.", ""]
    if entries:
        lines.append(f"  {'model':<16} {'role':<11} {'F1':>6} {'F1 kept':>8} {'params':>8} {'speed-up':>9}")
        for e in entries:
            kept = f"{100 * e['f1'] / teacher['f1']:.1f}%" if teacher and teacher["f1"] else ""
            fast = (f"{teacher['latency_ms'] / e['latency_ms']:.2f}x"
                    if teacher and teacher.get("latency_ms") and e.get("latency_ms") else "")
            lines.append(f"  {e['name']:<16} {e['role']:<11} {e['f1']:>6.2f} {kept:>8} {e['params'] / 1e6:>7.1f}M "
                         f"{fast:>9}")
        lines.append("")
    lines += [f"executed notebooks: {folder / 'notebooks'}/", f"summary:            {summary}",
              f"full log:           {folder / 'reproduce.log'}"]
    return "\n".join(lines)
