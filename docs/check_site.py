"""`make docs-check`: load a notebook page of the built site in a real browser and check what a reader sees.

Serves the built site (site/) on 127.0.0.1, loads one notebook page in headless Chromium (Debian's `chromium`
package, /usr/bin/chromium), and reads the DOM Chromium rendered: the page must show at least as many figures as
the stored notebook holds (img elements whose src is a data: URI or a file of the site) and at least one table,
and every file the page asked the server for must exist. Exits non-zero with a message when Chromium is missing
or any check fails: it never skips.

    python docs/check_site.py --site site --page notebooks/02_dense_distillation.html
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--virtual-time-budget=10000"]


def fail(message: str) -> None:
    print(f"docs-check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def find_chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    fail("Chromium is not installed, so the built site cannot be loaded in a browser. Install Debian's package "
         "(`sudo apt-get install -y chromium`) or name a Chromium binary in $CHROMIUM, then run `make docs-check` "
         "again.")


class Dom(HTMLParser):
    """The img srcs, tables and headings of the rendered page's DOM."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self.title, self._in_title = [], 0, 0, "", False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        elif tag == "table":
            self.tables += 1
        elif tag in ("h1", "h2", "h3"):
            self.headings += 1
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def stored_figures(notebook: Path) -> int:
    """How many figure outputs the stored notebook holds."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(1 for cell in nb["cells"] for out in cell.get("outputs", [])
               if any(k in out.get("data", {}) for k in ("image/png", "image/jpeg", "image/svg+xml")))


def serve(site: Path):
    """A quiet static server for `site` on a free port of 127.0.0.1; it records every request and its status."""
    log: list[tuple[str, int]] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            log.append((self.path, int(code) if str(code).isdigit() else 0))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="site", help="the built site (make docs)")
    parser.add_argument("--page", default="notebooks/02_dense_distillation.html", help="a notebook page of the site")
    args = parser.parse_args()
    site, page = Path(args.site).resolve(), args.page
    chromium = find_chromium()
    if not (site / page).exists():
        fail(f"{site / page} does not exist: run `make docs` first (or name another --page).")
    notebook = ROOT / "notebooks" / (Path(page).stem + ".ipynb")
    expected = stored_figures(notebook) if notebook.exists() else 1
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()

    server, log = serve(site)
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
    with tempfile.TemporaryDirectory(prefix="docs-check-chromium-") as profile:
        try:
            run = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                                 capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            server.shutdown()
            fail(f"Chromium did not finish loading {url} within 180 s.")
    server.shutdown()
    if run.returncode != 0 or "<html" not in run.stdout:
        fail(f"Chromium ({chromium}) exited {run.returncode} without a DOM for {url}:\n{run.stderr[-2000:]}")

    dom = Dom()
    dom.feed(run.stdout)
    data_uri = [s for s in dom.images if s.startswith("data:")]
    local = [s for s in dom.images if s and not s.startswith("data:") and
             (not urlparse(s).scheme or urlparse(s).hostname == "127.0.0.1")]
    remote = [s for s in dom.images if urlparse(s).scheme in ("http", "https") and urlparse(s).hostname != "127.0.0.1"]
    missing = sorted({path for path, code in log if code >= 400})
    print(f"docs-check: {version}, {url}")
    print(f"  title: {dom.title.strip()!r}; {dom.headings} headings (h1-h3)")
    print(f"  figures: {len(data_uri) + len(local)} rendered ({len(data_uri)} data: URIs, {len(local)} site files); "
          f"the stored notebook holds {expected}")
    print(f"  tables: {dom.tables}")
    print(f"  images from the internet (not counted; absent offline): {len(remote)} {sorted(set(remote))}")
    print(f"  the local server answered {len(log)} requests from the page, {len(missing)} missing {missing}")
    problems = []
    if len(data_uri) + len(local) < max(expected, 1):
        problems.append(f"the page shows {len(data_uri) + len(local)} figures, the notebook holds {expected}")
    if dom.tables < 1:
        problems.append("the page shows no table")
    if missing:
        problems.append(f"the page asked for files the site lacks: {missing}")
    if problems:
        fail("; ".join(problems))
    print("docs-check passed")


if __name__ == "__main__":
    main()
