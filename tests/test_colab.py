"""The Colab setup cell: the same in every notebook, from kit/colab.py; idempotent; Colab's torch kept."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

from kit.colab import REVISION, SETUP_CELL, badge

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_has_the_kits_setup_cell_and_badge():
    assert len(NOTEBOOKS) == 5
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert nb.cells[1].source == SETUP_CELL, f"{path.name}: run python -m kit colab-cells"
        assert badge(path.name) in nb.cells[0].source and badge(path.name) in readme
        assert "colab.research.google.com/github/" not in nb.cells[0].source.replace(badge(path.name), "")


def test_the_setup_cell_run_twice_clones_once_installs_once_and_keeps_torch(tmp_path):
    # a local git remote with a `main` branch stands for GitHub
    remote = tmp_path / "remote"
    remote.mkdir()
    git = lambda *args, cwd=remote: subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)
    git("init", "-q", "-b", REVISION)
    (remote / "pyproject.toml").write_text("[project]\nname = 'stand-in'\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "kit")
    # a pip that records its arguments, and a google.colab whose drive.mount records its calls
    bin_dir, fake = tmp_path / "bin", tmp_path / "fake"
    bin_dir.mkdir(), (fake / "google" / "colab").mkdir(parents=True)
    (bin_dir / "pip").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'pip.calls'}\n")
    (bin_dir / "pip").chmod(0o755)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "drive.py").write_text(
        f"def mount(path):\n    open({str(tmp_path / 'mount.calls')!r}, 'a').write(path + '\\n')\n")
    home = tmp_path / "content" / "es-qa-distill-kit"
    script = textwrap.dedent(f"""
        import os, sys
        import google.colab                      # as on Colab: the module is loaded
        cell = {SETUP_CELL!r}
        for _ in range(2):                       # the user runs the cell twice
            exec(cell, {{}})
        print(os.getcwd(), os.environ["KIT_RUNS"])
    """)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(fake),
           "KIT_REPO": str(remote), "KIT_COLAB_HOME": str(home)}
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    cwd, runs = r.stdout.strip().splitlines()[-1].split()
    assert cwd == str(home) and runs == "/content/drive/MyDrive/es-qa-distill-runs"
    assert (home / ".git").is_dir() and not (home / "es-qa-distill-kit").exists()   # one clone, nothing nested
    assert [p.name for p in (tmp_path / "content").iterdir()] == ["es-qa-distill-kit"]
    calls = (tmp_path / "pip.calls").read_text().splitlines()
    assert calls == ["install -q -e .[colab] -c .colab-keep-torch.txt"]              # installed once, with the extra
    assert (home / ".colab-keep-torch.txt").read_text() == f"torch=={torch.__version__}\n"   # torch stays
    assert (tmp_path / "mount.calls").read_text().splitlines() == ["/content/drive"] * 2
    assert f"kit {REVISION} (" in r.stdout


def test_the_setup_cell_installs_what_the_notebooks_and_kit_reproduce_import():
    """The cell installs the kit with its `colab` extra: with the core dependencies, that must cover every package
    the notebooks import and every optional package the kit's commands require (kit.optional), but for `datasets`
    (hub ids: Colab has it) and the local tools (nbval, jupyterlab), whose upgrades of Jupyter could break Colab's."""
    import ast
    import re
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda requirement: re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
    extras = {k: {name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    installed = {name(r) for r in project["dependencies"]} | extras["colab"]
    assert "-e\", \".[colab]\"" in SETUP_CELL.replace("'", '"')
    assert {"papermill", "nbformat", "nbclient", "ipykernel", "tensorboard"} <= extras["colab"]
    assert extras["colab"] <= extras["notebooks"] and not {"nbval", "jupyterlab", "torch"} & extras["colab"]
    # the notebooks' imports (IPython comes with ipykernel; google.colab is Colab itself; kit is the kit)
    provided = {"IPython": "ipykernel", "google": None, "kit": None}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            code = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(code)) if cell.cell_type == "code" else ():
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names):
                    package = provided.get(top, top.lower())
                    assert package is None or package in installed, f"{path.name} imports {top}"
    # what the kit's commands require (kit.optional.require(module, extra, ...)) for notebooks and TensorBoard
    calls = 0
    for source in (ROOT / "kit").glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "require" for n in tree.body):
            continue                   # kit/optional.py itself, or a module's own wrapper of it
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require" and len(node.args) >= 2
                    and all(isinstance(a, ast.Constant) for a in node.args[:2])):
                module, extra, calls = node.args[0].value, node.args[1].value, calls + 1
                assert module in extras[extra], f"kit/{source.name}: {module} is not in the {extra} extra"
                assert extra not in ("notebooks", "tensorboard") or module in installed, \
                    f"kit/{source.name}: the cell does not install {module}"
    assert calls >= 4                  # papermill, ipykernel, nbformat, tensorboard (and datasets)


def test_the_estimate_is_the_flops_of_an_update_at_the_derived_throughput():
    from kit.bench import flops_per_token
    from kit.paper import (GPU_TFLOPS, H200_MEASURED, PEAK_FP16_TFLOPS, UPDATES_PER_EPOCH, paper_configs,
                           training_estimate, update_flops)
    from kit.profiles import PROFILES
    teacher, student = paper_configs()
    per_update = update_flops(student, 32, 384, teacher)
    assert per_update == 32 * 384 * (flops_per_token(teacher, 384) + 3 * flops_per_token(student, 384))
    assert round(per_update / 1e12, 1) == 9.9
    # derived: the H200's measured share of its peak applied to a T4's and an A100's peaks
    assert GPU_TFLOPS["T4"] == round(H200_MEASURED["tflop_per_s"] * 65 / 989, 1) == 4.9
    assert GPU_TFLOPS["A100"] == round(H200_MEASURED["tflop_per_s"] * PEAK_FP16_TFLOPS["A100"] / 989, 1)
    # the measured H200 speed is that TFLOP/s on this update: 9.92 TFLOP in 0.134 s
    assert per_update / H200_MEASURED["seconds_per_update"] / 1e12 == pytest.approx(H200_MEASURED["tflop_per_s"], rel=0.01)
    updates = PROFILES["paper-colab"]["02_dense_distillation"]["epochs"] * UPDATES_PER_EPOCH
    seconds_t4 = updates * per_update / (GPU_TFLOPS["T4"] * 1e12)
    assert seconds_t4 <= 3.1 * 3600                         # paper-colab fits a free Colab session on a T4
    assert f"about {int(seconds_t4 // 3600)} h {int(seconds_t4 % 3600 // 60):02d} min on a T4" in \
        training_estimate(updates, per_update)
    assert "about 3 min 24 s on a T4 and 43 s on an A100" in training_estimate(1000, 1e12)
