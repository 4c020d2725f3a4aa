"""`python -m kit reproduce`: profiles, parameter checks before anything runs, stop at the first failure, resume."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import conftest

from kit.profiles import NOTEBOOKS, PROFILES, profile_notebooks, profile_parameters
from kit.runner import NotebookFailed, notebook_parameters, reproduce

ROOT = Path(__file__).resolve().parents[1]


def write_notebook(path, body):
    conftest.write_notebook(path, body, 'profile = "demo"\nfail = False')


def test_every_profile_names_real_notebooks_and_parameters():
    for profile, per_notebook in PROFILES.items():
        assert set(per_notebook) <= set(NOTEBOOKS), profile
        for stem, params in per_notebook.items():
            if params is None:           # a notebook the profile leaves out
                continue
            known = notebook_parameters(ROOT / "notebooks" / f"{stem}.ipynb")
            assert set(params) <= set(known), (profile, stem, sorted(set(params) - set(known)))
    for stem in NOTEBOOKS:
        assert (ROOT / "notebooks" / f"{stem}.ipynb").exists()
    assert profile_parameters("demo", "notebooks/02_dense_distillation.ipynb") == {}
    assert profile_parameters("es-local", "02_dense_distillation")["init"] == "teacher_layers"
    assert "03_multitask_training" not in profile_notebooks("paper") and len(profile_notebooks("demo")) == 5
    with pytest.raises(ValueError, match="valid profiles: demo, es-local, paper"):
        profile_parameters("colab", "02_dense_distillation")


@pytest.fixture
def nbs(tmp_path, monkeypatch):
    """Two notebooks in tmp_path/nbs (runs/ goes to tmp_path): 01_a always runs, 02_b fails unless `fail` is set."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "nbs"
    folder.mkdir()
    write_notebook(folder / "01_a.ipynb", 'open("ran_a.txt", "a").write("x")')
    write_notebook(folder / "02_b.ipynb", 'if not fail:\n    raise RuntimeError("broken on purpose")\nopen("ran_b.txt", "a").write("x")')
    return folder


def test_reproduce_stops_at_the_failing_cell_and_resumes_after_the_fix(nbs, tmp_path):
    with pytest.raises(NotebookFailed, match=r"02_b.ipynb failed in cell 1 .*RuntimeError: broken on purpose"):
        reproduce("demo", notebooks_dir=nbs, notebooks=["01_a", "02_b"])
    assert (tmp_path / "ran_a.txt").read_text() == "x" and not (tmp_path / "ran_b.txt").exists()
    assert (tmp_path / "runs/demo/notebooks/01_a.done.json").exists()
    assert not (tmp_path / "runs/demo/notebooks/02_b.done.json").exists()
    # rerun with the cause fixed (here: a parameter): 01 is skipped, 02 runs
    reproduce("demo", {"02_b": {"fail": True}}, notebooks_dir=nbs, notebooks=["01_a", "02_b"])
    assert (tmp_path / "ran_a.txt").read_text() == "x" and (tmp_path / "ran_b.txt").read_text() == "x"
    # other parameters: not the same run, so it reruns; --fresh reruns everything
    reproduce("demo", {"02_b": {"fail": "yes"}}, notebooks_dir=nbs, notebooks=["01_a", "02_b"])
    assert (tmp_path / "ran_a.txt").read_text() == "x" and (tmp_path / "ran_b.txt").read_text() == "xx"
    reproduce("demo", {"02_b": {"fail": "yes"}}, notebooks_dir=nbs, notebooks=["01_a", "02_b"], fresh=True)
    assert (tmp_path / "ran_a.txt").read_text() == "xx"


def test_a_finished_notebook_reruns_when_its_code_changes_not_its_stored_outputs(nbs, tmp_path):
    run = lambda: reproduce("demo", notebooks_dir=nbs, notebooks=["01_a"])
    run()
    nb = nbformat.read(nbs / "01_a.ipynb", as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="stored by a fresh clone's make demo\n")]
    nb.cells[1].execution_count, nb.metadata["papermill"] = 7, {"duration": 1.0}
    nbformat.write(nb, nbs / "01_a.ipynb")
    run()
    assert (tmp_path / "ran_a.txt").read_text() == "x"              # outputs refreshed: still finished
    nb.cells[1].source += "\n# a changed line"
    nbformat.write(nb, nbs / "01_a.ipynb")
    run()
    assert (tmp_path / "ran_a.txt").read_text() == "xx"             # code changed: it runs again


def test_unknown_parameter_fails_before_any_notebook_runs(nbs, tmp_path):
    with pytest.raises(ValueError, match="no parameter 'epoch'. Valid names: profile, fail"):
        reproduce("demo", {"02_b": {"epoch": 3}}, notebooks_dir=nbs, notebooks=["01_a", "02_b"])
    assert not (tmp_path / "ran_a.txt").exists()
    with pytest.raises(ValueError, match="no notebook 03_c"):
        reproduce("demo", {"03_c": {"x": 1}}, notebooks_dir=nbs, notebooks=["01_a", "02_b"])


def test_cli_refuses_an_unknown_profile_with_the_valid_ones():
    r = subprocess.run([sys.executable, "-m", "kit", "reproduce", "--profile", "colab"], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown profile 'colab'; valid profiles: demo, es-local, paper" in r.stderr
    r = subprocess.run([sys.executable, "-m", "kit", "reproduce", "--profile", "demo", "-p", "02_dense_distillation",
                        "epoch", "3"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "no parameter 'epoch'" in r.stderr and "epochs" in r.stderr


def test_the_terminal_gets_a_line_per_notebook_and_the_log_gets_the_rest(nbs, tmp_path, capfd):
    reproduce("demo", {"02_b": {"fail": True}}, notebooks_dir=nbs, notebooks=["01_a", "02_b"])
    out, err = capfd.readouterr()
    lines = [l for l in (out + err).splitlines() if l.strip()]
    assert lines[0].startswith("profile demo: notebooks 01_a, 02_b; the full log goes to runs/demo/reproduce.log")
    assert any(l.startswith("[1/2] 01_a: running") for l in lines)
    assert any(l.rsplit("\r", 1)[-1].startswith("[2/2] 02_b: done in 0 min") for l in lines)
    assert "Executing" not in out + err and "Kernel" not in out + err       # papermill's log and kernel warnings
    assert "finished in" in out and "summary:" in out and len(lines) < 20
    log = (tmp_path / "runs/demo/reproduce.log").read_text()
    assert "Executing Cell" in log and "02_b.ipynb" in log
