"""The Colab setup cell: the same in every notebook, from kit/colab.py; idempotent; Colab's torch kept."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
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
    assert calls == ["install -q -e . -c .colab-keep-torch.txt"]                     # installed once
    assert (home / ".colab-keep-torch.txt").read_text() == f"torch=={torch.__version__}\n"   # torch stays
    assert (tmp_path / "mount.calls").read_text().splitlines() == ["/content/drive"] * 2
    assert f"kit {REVISION} (" in r.stdout


def test_the_estimate_is_the_flops_of_an_update_at_the_stated_throughput():
    from kit.bench import flops_per_token
    from kit.paper import GPU_TFLOPS, paper_configs, training_estimate, update_flops
    teacher, student = paper_configs()
    per_update = update_flops(student, 32, 384, teacher)
    assert per_update == 32 * 384 * (flops_per_token(teacher, 384) + 3 * flops_per_token(student, 384))
    assert round(per_update / 1e12, 1) == 9.9
    hours_t4 = 16_320 * per_update / (GPU_TFLOPS["T4"] * 1e12) / 3600        # paper-colab: 6 epochs of ~2,720
    assert f"about {hours_t4:.1f} h on a T4" in training_estimate(16_320, per_update) and hours_t4 <= 3
    assert "about 50 s on a T4 and 10 s on an A100" in training_estimate(1000, 1e12)
