"""Run a numbered notebook headless with papermill, refusing parameters the notebook does not have.

    python -m kit run notebooks/02_dense_distillation.ipynb --profile mine -p epochs 3

Papermill on its own only warns about an unknown name (a typo such as `-p epoch 3` would run the
default number of epochs without a word); here it is an error that lists the valid names.
The executed copy goes to runs/<profile>/notebooks/.
"""
from __future__ import annotations

import ast
from pathlib import Path

from .results import run_dir


def parse_value(text: str):
    """'3' -> 3, '1e-3' -> 0.001, 'True' -> True, '[1, 8]' -> [1, 8], anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_parameters(notebook, parameters: dict) -> None:
    import papermill
    known = papermill.inspect_notebook(str(notebook))
    if not known:
        raise ValueError(f"{notebook}: no cell tagged 'parameters', so it takes no parameters.")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{notebook} has no parameter {', '.join(map(repr, unknown))}. Valid names: "
                         f"{', '.join(known)}.")


def run_notebook(notebook, profile: str = "demo", parameters: dict | None = None) -> Path:
    import papermill
    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"{notebook}: no such notebook.")
    parameters = dict(parameters or {})
    if profile != "demo":
        parameters.setdefault("profile", profile)
    check_parameters(notebook, parameters)
    out = run_dir(profile) / "notebooks" / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(notebook), str(out), parameters=parameters, cwd=".", kernel_name="python3",
                               log_output=True, progress_bar=False)
    return out
