"""MkDocs hook: keep the built site readable offline.

mkdocs-jupyter's page template (nbconvert's lab template) always writes a MathJax <script> (with an empty src when
no URL is configured) and a module script that would import mermaid from a CDN when a notebook holds a mermaid
diagram. The kit's notebooks hold none, and the site must fetch nothing from the internet, so both are removed
from every page after it is rendered. tests/test_docs.py checks that no page refers to an http(s) script, style
or font.
"""
import re

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)


def _online(script: str) -> bool:
    head = script[: script.index(">") + 1]
    if re.search(r"""\bsrc\s*=\s*["']\s*["']""", head):          # <script src=""> (MathJax with no URL)
        return True
    if re.search(r"""\bsrc\s*=\s*["']https?://""", head, re.I):    # any script from the internet
        return True
    return bool(re.search(r"""import\(\s*["']https?://|Url\s*=\s*["']https?://""", script))   # mermaid's import


def on_post_page(output: str, page, config) -> str:
    return _SCRIPT.sub(lambda m: "" if _online(m.group(0)) else m.group(0), output)
