"""The site (`make docs`): a strict build, readable offline, with the five notebooks; a README of five minutes.

The strict build fails on a broken link or anchor between pages (mkdocs.yml's `validation`), and on a page
left out of the navigation. It renders the notebooks' stored outputs and never executes them.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]' (make install has it)")

# http(s) resources a browser would fetch on its own: scripts, styles, fonts, module imports
ONLINE = [
    re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//""", re.I),
    re.compile(r"""<link\b(?=[^>]*\brel\s*=\s*["']?(?:stylesheet|preload|preconnect|modulepreload|dns-prefetch))"""
               r"""[^>]*\bhref\s*=\s*["']?(?:https?:)?//""", re.I),
    re.compile(r"""@import\s+(?:url\()?\s*["']?(?:https?:)?//""", re.I),
    re.compile(r"""@font-face[^}]*url\(\s*["']?(?:https?:)?//""", re.I | re.S),
    re.compile(r"""\bimport\s*\(\s*["'](?:https?:)?//""", re.I),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return out


def test_the_strict_build_renders_every_notebook_with_its_stored_outputs(site):
    assert len(NOTEBOOKS) == 5
    assert (ROOT / "docs/notebooks").is_symlink() and (ROOT / "docs/notebooks").resolve() == ROOT / "notebooks"
    for name in NOTEBOOKS:
        html = (site / "notebooks" / name.replace(".ipynb", ".html")).read_text(encoding="utf-8")
        assert "jp-OutputArea" in html, f"{name}: no stored outputs rendered"
    index = (site / "index.html").read_text(encoding="utf-8")
    for name in NOTEBOOKS:    # in the navigation of every page
        assert f'notebooks/{name.replace(".ipynb", ".html")}' in index, f"{name} is not in the site's navigation"
    assert "data:image/png" in (site / "notebooks/02_dense_distillation.html").read_text(encoding="utf-8")


def test_the_built_site_fetches_no_script_style_or_font_from_the_internet(site):
    offenders = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css", ".js"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in ONLINE:
            for m in pattern.finditer(text):
                offenders.append(f"{path.relative_to(site)}: {text[m.start():m.end() + 60]!r}")
    assert not offenders, "the site would fetch from the internet:\n" + "\n".join(offenders[:20])


def test_the_readme_is_short_and_its_links_into_docs_resolve(site):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in (ROOT / "docs").glob("*.md"):
        assert len(page.read_text(encoding="utf-8").splitlines()) <= 250, f"{page.name}: over 250 lines"
    assert "make demo" in readme and "make test" in readme and "make lab" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()     # CI runs the README's test command
    links = re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#([^)\s]+))?\)", readme)
    assert links
    for page, anchor in links:
        assert (ROOT / page).exists(), f"README links to {page}, which does not exist"
        if anchor:
            built = (site / page[len("docs/"):].replace(".md", ".html")).read_text(encoding="utf-8")
            assert f'id="{anchor}"' in built, f"README links to {page}#{anchor}: no such heading"
