"""The notebooks as committed are what a learner first reads (on GitHub or Colab): their stored outputs must be a
clean `make demo` run. These checks read the files; they run nothing."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# a path outside the repository, a leaked object repr, a warning or a progress bar in a stored output
LEAKS = {
    "a machine path": re.compile(r"(?<![\w.])/(home|root|tmp|work|usr|opt|content)/|\.\./shared|\.\./cache"),
    "an object's repr instead of its text": re.compile(r"<[\w.]+ (object )?at 0x[0-9a-f]+>|<[\w.]+ object>"),
    "a warning": re.compile(r"\w*Warning\b|^WARNING", re.M),
    "a progress bar": re.compile(r"\d+%\|[█▏▎▍▌▋▊▉ #]*\|"),
}


def _output_text(output: dict) -> str:
    if output["output_type"] == "stream":
        return "".join(output["text"])
    if output["output_type"] == "error":
        return "\n".join(output.get("traceback", []))
    return "".join(output.get("data", {}).get("text/plain", ""))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_are_a_clean_run(path):
    cells = json.loads(path.read_text())["cells"]
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if any(o["output_type"] == "error" for o in outputs):
            problems.append(f"cell {i}: an error is stored")
        lines = sum("".join(o["text"]).count("\n") for o in outputs if o["output_type"] == "stream")
        if lines > 30:
            problems.append(f"cell {i}: {lines} stream lines (at most 30: one line per epoch, not per batch)")
        text = "\n".join(_output_text(o) for o in outputs)
        problems += [f"cell {i}: {what}: {m.group(0)!r}" for what, rx in LEAKS.items() if (m := rx.search(text))]
    assert not problems, f"{path.name} (store the outputs of a fresh-clone `make demo`):\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_says_what_it_needs_and_how_long_and_ends_with_exercises(path):
    cells = json.loads(path.read_text())["cells"]
    opening = "".join(cells[0]["source"]).lower()
    assert "2-core cpu" in opening and "colab" in opening and "estimate" in opening, \
        f"{path.name}: the first cell says what the notebook needs and how long it takes (CPU measured, GPU estimated)"
    last = [c for c in cells if c["cell_type"] == "markdown"][-1]
    assert "your turn" in "".join(last["source"]).lower(), f"{path.name}: the last text cell holds the exercises"


MAX_CELL_LINES = 25


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_code_cell_fits_on_a_screen(path):
    """A reader follows a cell of at most 25 lines; the `parameters` cell is exempt (one line per parameter)."""
    cells = json.loads(path.read_text())["cells"]
    long = [(i, len("".join(c["source"]).splitlines())) for i, c in enumerate(cells) if c["cell_type"] == "code"
            and "parameters" not in c.get("metadata", {}).get("tags", [])
            and len("".join(c["source"]).splitlines()) > MAX_CELL_LINES]
    assert not long, (f"{path.name}: code cells over {MAX_CELL_LINES} lines (cell index, lines): {long}; move what is "
                      f"longer into a kit function the cell calls, or split it in two with a sentence between")
