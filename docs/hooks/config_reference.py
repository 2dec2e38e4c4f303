"""mkdocs hook: the config reference page is generated from the pydantic schema at build time.

A page holding the marker below gets the marker replaced by `flows.config.reference_markdown()`, the
table `winnow schema --markdown` prints, so the reference cannot drift from the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

MARKER = "<!-- config-reference -->"
REPO = Path(__file__).resolve().parents[2]
_GENERATED: set[str] = set()  # pages whose marker was replaced


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from flows.config import reference_markdown

    _GENERATED.add(page.file.src_uri)
    return markdown.replace(MARKER, reference_markdown())


def on_page_content(html: str, page, config, files) -> str:
    """The table escapes `|` inside code spans as `\\|` (GitHub's rule); Python-Markdown splits the
    cells right but keeps the backslash in the code, so it is dropped here."""
    if page.file.src_uri not in _GENERATED:
        return html
    return html.replace("\\|", "|")
