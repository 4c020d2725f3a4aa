"""Optional packages: imported where a feature needs them, with a clear message where they are missing.

    papermill = require("papermill", "notebooks", "running notebooks headless (kit run, kit reproduce)")

The core kit needs torch, transformers and accelerate only (pyproject.toml); the rest comes with an extra:
`notebooks` (papermill, nbformat, nbclient, ipykernel, matplotlib, pandas, tensorboard, ...), `colab` (what the
Colab setup cell adds to Colab's own packages), `tensorboard`, `hub` (datasets). A missing one raises
MissingPackage, which `python -m kit` prints as one paragraph and exit code 2, with the pip command to run.
"""
from __future__ import annotations

import importlib

DISTRIBUTION = "es-qa-distill-kit"


class MissingPackage(ModuleNotFoundError):
    """An optional package a feature needs is not installed; the message names it and the pip command."""


def install_hint(extra: str) -> str:
    return (f'pip install "{DISTRIBUTION}[{extra}]" (an installed kit), or pip install -e ".[{extra}]" in a clone of '
            f"the repository (on Colab, the notebooks' setup cell installs it)")


def require(module: str, extra: str, purpose: str):
    """Import `module` and return it; if it (or a package it needs) is missing, raise MissingPackage saying that
    `purpose` needs it and how to install the kit's `extra`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = (e.name or module).split(".")[0]
        package = module.split(".")[0]
        what = package if missing == package else f"{package} (its dependency {missing})"
        raise MissingPackage(f"{purpose} needs the package {what}, which is not installed. Install the kit's "
                             f"`{extra}` extra: {install_hint(extra)}.", name=missing) from None
