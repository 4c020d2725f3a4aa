"""Colab: the one place that names the repository and revision the notebooks clone, and the setup cell itself.

Every numbered notebook starts with SETUP_CELL (a test keeps them equal, and their "Open in Colab" badges equal to
`badge`). On Colab the cell
  * clones REPO at REVISION into /content/es-qa-distill-kit once (run it again: nothing is cloned twice, nothing
    nests), and moves there;
  * installs the kit with pip, with its `colab` extra (pyproject.toml: papermill, nbformat, nbclient, ipykernel,
    tensorboard, ... where Colab lacks them: what the notebooks and `kit run`/`kit reproduce` need), under a
    constraint that pins the torch already installed: Colab's CUDA build stays; once per runtime (a marker file);
  * mounts Google Drive (Colab asks for permission once per runtime) and points $KIT_RUNS (kit.results.runs_root)
    at a Drive folder, so checkpoints survive a disconnect and each notebook, opened in its own runtime, finds
    what the earlier ones wrote. drive_folder="" keeps runs/ on the runtime's disk.
Elsewhere it only moves from notebooks/ to the repository root, so that paths like data/train.json work.

To pin a release, set REVISION to its tag or commit here and run `python -m kit colab-cells` to rewrite the
notebooks' setup cells and badges. KIT_REPO and KIT_COLAB_HOME replace the URL and the folder (for the test suite,
which runs the cell against a local git repository).
"""
from __future__ import annotations

from pathlib import Path

REPO = "https://github.com/es-qa-distill/es-qa-distill-kit"
REVISION = "main"

SETUP_CELL = f'''# Setup (kit/colab.py writes this cell, the same in every notebook; run it as often as you like). On Colab:
# clone the kit at a fixed revision, install it with its colab extra (papermill, ...: what the notebooks and `kit
# reproduce` need) without touching Colab's torch, keep runs/ in Google Drive. Elsewhere: move to the repository root.
import os, pathlib, subprocess, sys
REPO, REVISION = "{REPO}", "{REVISION}"
drive_folder = "es-qa-distill-runs"  # @param {{type:"string"}}  a Google Drive folder for runs/ ("": the runtime's disk)
if "google.colab" in sys.modules:
    home = os.environ.get("KIT_COLAB_HOME", "/content/es-qa-distill-kit")
    if not os.path.isdir(os.path.join(home, ".git")):
        subprocess.run(["git", "clone", "--quiet", os.environ.get("KIT_REPO", REPO), home], check=True)
        subprocess.run(["git", "-C", home, "checkout", "--quiet", REVISION], check=True)
    os.chdir(home)
    if not os.path.exists(".colab-installed"):
        import torch  # Colab's CUDA build: the constraint below keeps pip from replacing it
        pathlib.Path(".colab-keep-torch.txt").write_text(f"torch=={{torch.__version__}}\\n")
        subprocess.run(["pip", "install", "-q", "-e", ".[colab]", "-c", ".colab-keep-torch.txt"], check=True)
        open(".colab-installed", "w").close()
    if drive_folder:
        from google.colab import drive
        drive.mount("/content/drive")
        os.environ["KIT_RUNS"] = os.path.join("/content/drive/MyDrive", drive_folder)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"kit {{REVISION}} ({{commit}}); results go to {{os.environ.get('KIT_RUNS', 'runs')}}/<profile>/")
elif os.path.basename(os.getcwd()) == "notebooks":
    os.chdir("..")'''


def badge(notebook: str) -> str:
    """The "Open in Colab" link of notebooks/<notebook> at REVISION."""
    owner_name = REPO.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{REVISION}/notebooks/{notebook}"


def write_setup_cells(notebooks_dir="notebooks") -> list[Path]:
    """Rewrite every notebook's setup cell (its second cell) and badge from REPO and REVISION."""
    import re
    from .optional import require
    nbformat = require("nbformat", "notebooks", "Rewriting the notebooks' setup cells (kit colab-cells)")
    changed = []
    for path in sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title, setup = nb.cells[0], nb.cells[1]
        new_title = re.sub(r"https://colab\.research\.google\.com/github/\S+?\.ipynb", badge(path.name), title.source)
        if setup.source != SETUP_CELL or new_title != title.source:
            setup.source, title.source = SETUP_CELL, new_title
            nbformat.write(nb, path)
            changed.append(path)
    return changed
