"""A command that needs an optional package the environment lacks ends with one paragraph naming the package and
the pip command, and exit code 2: no traceback (kit.optional)."""
import subprocess
import sys
from pathlib import Path

import pytest

from kit.optional import MissingPackage, require

ROOT = Path(__file__).resolve().parents[1]

# `None` in sys.modules is what Python's import system reads as "not installed": `import papermill` raises
# ModuleNotFoundError(name="papermill") and importlib.util.find_spec answers None, as for a package never installed.
HIDE = "import runpy, sys\nfor name in sys.argv[1].split(','):\n    sys.modules[name] = None\n" \
       "sys.argv = ['python -m kit', *sys.argv[2:]]\nrunpy.run_module('kit', run_name='__main__', alter_sys=True)\n"


def kit_without(hidden: str, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-c", HIDE, hidden, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("hidden, extra, args", [
    ("papermill", "notebooks", ["reproduce", "--profile", "demo"]),
    ("ipykernel", "notebooks", ["run", "notebooks/05_results.ipynb"]),
    ("nbformat", "notebooks", ["colab-cells", "--notebooks", "{tmp}"]),
    ("tensorboard", "tensorboard", ["train", "--model", "m", "--train", "t.json", "--out", "{tmp}/m", "--tensorboard"]),
    ("tensorboard", "tensorboard", ["distill", "--out", "{tmp}/s", "--tensorboard"]),
])
def test_a_missing_optional_package_is_one_paragraph_and_exit_code_2(hidden, extra, args, tmp_path):
    r = kit_without(hidden, *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    message = r.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ") and f"needs the package {hidden}, which is not installed" in message
    assert f'pip install "es-qa-distill-kit[{extra}]"' in message and f'pip install -e ".[{extra}]"' in message
    assert "\n\n" not in r.stderr.strip()                      # one paragraph
    assert not list(tmp_path.iterdir())                        # it stopped before writing anything


def test_a_missing_dependency_of_an_optional_package_is_named_too(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "papermill"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "nbclient", None)        # papermill is there, its nbclient is not
    with pytest.raises(MissingPackage) as missing:
        require("papermill", "notebooks", "Running notebooks")
    assert "needs the package papermill (its dependency nbclient)" in str(missing.value)
    assert missing.value.name == "nbclient" and isinstance(missing.value, ModuleNotFoundError)


def test_a_hub_dataset_id_without_datasets_says_which_extra(monkeypatch):
    from kit.data import load_squad
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingPackage, match=r'user/squad-es: not a file, not a URL.*needs the package datasets.*'
                                             r'pip install "es-qa-distill-kit\[hub\]"'):
        load_squad("user/squad-es")


def test_a_notebook_that_imports_a_missing_package_says_how_to_install_the_notebooks_extra(tmp_path, monkeypatch):
    import conftest
    from kit.runner import NotebookFailed, reproduce
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbs").mkdir()
    conftest.write_notebook(tmp_path / "nbs" / "01_a.ipynb", "import kit_no_such_package")
    with pytest.raises(NotebookFailed, match=r"ModuleNotFoundError: No module named 'kit_no_such_package'\. Install "
                                             r'it: pip install "es-qa-distill-kit\[notebooks\]"'):
        reproduce("demo", notebooks_dir=tmp_path / "nbs", notebooks=["01_a"])
