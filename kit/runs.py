"""Where runs go: `runs/<profile>/`, or under the folder $KIT_RUNS names (read when called, never at import), and
how a run records a path under it so that the folder can move."""
from __future__ import annotations

import os
import re
from pathlib import Path

PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


RUNS_ROOT = "KIT_RUNS"   # the environment variable that moves runs/ (e.g. into a Google Drive folder on Colab)


def runs_root() -> Path:
    """Where every profile's results go: runs/ in the repository, or the folder $KIT_RUNS names (the Colab setup
    cell sets it to a Drive folder, so that a disconnected runtime loses nothing and every notebook, each in
    its own runtime, finds what the earlier ones wrote)."""
    return Path(os.environ.get(RUNS_ROOT) or "runs")


def run_dir(profile: str) -> Path:
    """<runs root>/<profile>/, refusing a name that would write elsewhere ("../x", "/tmp/x", "a/b")."""
    if not PROFILE_NAME.fullmatch(profile) or ".." in profile:
        raise ValueError(f"profile {profile!r}: use letters, digits, '_', '-' and '.', so that results stay "
                         f"under runs/ (or ${RUNS_ROOT}).")
    return runs_root() / profile


def portable(path: str) -> str:
    """`path` as a run's identity records it: a path under the folder $KIT_RUNS names is written runs/<rest>, the
    form it has without $KIT_RUNS, so that a run moved with its runs folder (to a Drive folder, another machine,
    another mount point) still resumes; any other path, and every path while $KIT_RUNS is unset, is unchanged."""
    if not path or not os.environ.get(RUNS_ROOT):
        return path
    try:
        rest = Path(path).resolve().relative_to(runs_root().resolve())
    except ValueError:
        return path
    return (Path("runs") / rest).as_posix()
