"""A notebook run the way JupyterLab runs it (`make lab`): a kernel started in notebooks/, the notebook as stored.

No papermill and no injected parameters: the smoke budget comes through the environment (`KIT_BUDGET=smoke`,
which every `parameters` cell reads), as it would for `KIT_BUDGET=smoke make lab`. The setup cell must move the
kernel to the repository root, so that the notebook's relative paths (data/, results/, runs/) resolve.

Notebook 05 is the cheapest that works on a fresh clone (about 15 s): it trains nothing and reads
<runs root>/smoke/summary.json. The test points the runs root ($KIT_RUNS) at a temporary folder holding the
committed es-local results, so it needs no earlier run (make test runs tests/ before the smoke notebooks) and
leaves runs/ alone.
"""
import os
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_results.ipynb"

nbclient = pytest.importorskip("nbclient")


def test_notebook_05_runs_in_a_kernel_started_in_notebooks(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(ROOT / "results" / "es-local", runs / "smoke",
                    ignore=shutil.ignore_patterns("*.predictions.json", "*.safetensors*", "*.py", "*.sh"))
    monkeypatch.setenv("KIT_BUDGET", "smoke")
    monkeypatch.setenv("KIT_RUNS", str(runs))
    monkeypatch.delenv("MPLBACKEND", raising=False)   # a kernel as JupyterLab starts it: the inline backend
    before = sorted(p.name for p in (ROOT / "notebooks").iterdir())

    nb = nbformat.read(NOTEBOOK, as_version=4)
    stored = len(nb.cells)
    # one cell appended after the notebook's own: where the kernel ended up (not a parameter: nothing is replaced)
    nb.cells.append(nbformat.v4.new_code_cell("import os; print('cwd=' + os.getcwd())"))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()   # raises CellExecutionError, with the cell and its traceback, if any cell fails

    outputs = [out for cell in nb.cells[:stored] if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    cwd = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    assert cwd == f"cwd={ROOT}", f"the setup cell left the kernel in {cwd!r}, not the repository root"
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{runs / 'smoke' / 'summary.json'}: " in text, "the notebook did not read the runs root it was given"
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    tables = [o for o in outputs if "text/html" in o.get("data", {}) or "text/markdown" in o.get("data", {})]
    assert len(figures) >= 1 and len(tables) >= 2, "the paper's table, the run's table and the plots"
    assert sorted(p.name for p in (ROOT / "notebooks").iterdir()) == before, "the notebook wrote into notebooks/"
