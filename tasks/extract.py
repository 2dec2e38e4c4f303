"""The `extract` stage: HTML from WARC responses -> the page's main text, boilerplate removed.

Runs after `read` (and `url_filter`) on rows whose `source` is `tasks.contract.HTML_SOURCE`
("warc:response"); every other row (WET text, JSONL, ...) passes through untouched with nulls in the
new columns. For HTML rows `text` becomes the extracted main content and columns keep what the
HTML said before it is gone: `html_chars` (int64, the HTML's length), `html_lang` (the page's
declared `<html lang>`, lowercased, for comparison with `langid`'s `lang`) and `license` (the licence
the page declares; for other rows, the one their record's metadata names: `tasks/licenses.py`).

Extraction decides much of the final quality: boilerplate kept here is what Gopher/C4 rules later
fight (FineWeb, Penedo et al. 2024, §3.2: trafilatura over WET text). Both extractors are measured by
`bench/extraction.py` on trafilatura's own labeled set (so it may favour trafilatura):

    extractor     must-keep kept  must-remove removed  docs/s/core  MB/s/core
    trafilatura   94.6%           90.3%                ~50          ~7.5
    resiliparse   95.3%           74.4%                ~600         ~90

trafilatura (the default) removes far more boilerplate at the same recall; resiliparse is ~10x
faster and the choice when CPU, not quality, is the limit.

Neither bounds its time: trafilatura's grows quadratically with linked paragraphs (a legal 2.6M-char
page of them takes a minute, tests/tasks/test_extract.py), and a shard waits for its slowest page.
With `timeout_seconds` set (the default), pages are extracted in a child process
(`tasks/timelimit.py`); a page that runs over is rejected (`extract:timeout`), its child killed and
a fresh one started for the rest of the shard. The cost, `bench/extract_timeout.py`: none measurable
for trafilatura (52 docs/s either way), 15% of resiliparse's speed (558 -> 476 docs/s; 20% more CPU),
which is copying each page through a pipe (~0.4 ms), not messaging; `timeout_seconds: null` avoids it.
"""

from __future__ import annotations

import functools
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import trafilatura
from pydantic import BaseModel, ConfigDict, Field
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from tasks.contract import HTML_SOURCE, StageOutput, split_by_reason
from tasks.licenses import declared_license, metadata_license
from tasks.timelimit import TIMED_OUT, TimedOut, map_with_timeout

VERSION = 2  # bump when the same input + params give different output

# `<html ... lang="pt-BR">` in the first bytes of a page; the attribute may be unquoted
_HTML_LANG = r'(?is)<html\b[^>]*?\blang\s*=\s*["\']?(?P<lang>[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*)'
_LANG_PREFIX_CHARS = 4096  # the <html> tag opens a page; searching past it finds nested elements


class ExtractParams(BaseModel):
    """Main-content extraction of HTML documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura",  # bench/extraction.py: 90% of boilerplate removed vs resiliparse's 74%
        description="Main-content extractor: trafilatura (better boilerplate removal) or resiliparse "
        "(about 10x faster).",
    )
    include_comments: bool = Field(
        False,  # reader comments are rarely the page's content; FineWeb drops them (datatrove Trafilatura)
        description="Keep the page's comment section.",
    )
    include_tables: bool = Field(
        True,  # trafilatura's default; tables hold much of the text on reference pages
        description="Keep text inside tables (trafilatura only; resiliparse always keeps it).",
    )
    fast: bool = Field(
        False,  # bench/extraction.py: fast mode keeps 93.3% (vs 94.6%) at ~1.4x the speed
        description="trafilatura only: skip its fallback extractors (readability, jusText).",
    )
    min_text_chars: int = Field(
        1,  # an empty result is a failed extraction; length rules belong to `clean` (Gopher, C4)
        ge=1,
        description="Reject documents whose extracted text is shorter than this (extract:text_chars).",
    )
    max_html_chars: int = Field(
        5_000_000,  # ours: far above Common Crawl's 1 MiB payload truncation; guards lxml's time
        ge=1,
        description="Reject HTML documents longer than this before extracting (extract:html_chars).",
    )
    timeout_seconds: float | None = Field(
        30.0,  # bench/extract_timeout.py, 989 real pages, 3 runs on a 2-core box: slowest 0.25-0.34 s
        #        (trafilatura; p99.9 0.22-0.32 s, p99 0.11-0.15 s; resiliparse 0.04 s): ~100x headroom for
        #        a starved CPU (datatrove's 0.1 s cuts 1.2% of them); the test's link-heavy pages:
        #        1.7M chars (23 s) pass, 2.6M chars (57 s) are cut
        gt=0,
        description="Reject a page whose extraction runs longer than this (extract:timeout): pages are "
        "extracted in a child process, killed and restarted on a timeout. null: in-process, no limit.",
    )


# The one registry of this stage's reason codes: code -> what it measures.
REASONS: dict[str, str] = {
    "extract:html_chars": "the HTML is longer than max_html_chars, so it is not parsed",
    "extract:text_chars": "the extracted main text is shorter than min_text_chars (empty: nothing found)",
    "extract:timeout": "extracting the page took longer than timeout_seconds, so it was abandoned",
}


def extract_text(html: str, params: ExtractParams) -> str:
    """The main text of one HTML page ("" when the extractor finds none). Total over any `str`."""
    if params.extractor == "trafilatura":
        return (
            trafilatura.extract(
                html,
                fast=params.fast,
                include_comments=params.include_comments,
                include_tables=params.include_tables,
                include_images=False,
                include_links=False,
            )
            or ""
        )
    return extract_plain_text(
        HTMLTree.parse(html),
        main_content=True,
        alt_texts=False,
        links=False,
        form_fields=False,
        comments=params.include_comments,
    )


def extract_texts(htmls: list[str], params: ExtractParams) -> list[str | TimedOut]:
    """`extract_text` of each page; `TIMED_OUT` where it ran past `params.timeout_seconds`."""
    extract = functools.partial(extract_text, params=params)
    if params.timeout_seconds is None:
        return [extract(html) for html in htmls]
    return map_with_timeout(extract, htmls, params.timeout_seconds)


def html_lang(html: pa.Array) -> pa.Array:
    """The declared `<html lang>` of each page, lowercased with `_` as `-`; null when none."""
    head = pc.utf8_slice_codeunits(html, 0, _LANG_PREFIX_CHARS)
    lang = pc.struct_field(pc.extract_regex(head, _HTML_LANG), "lang")
    return pc.replace_substring(pc.utf8_lower(lang), "_", "-")


def run(table: pa.Table, params: ExtractParams) -> StageOutput:
    """Extract the main text of HTML rows; others pass through.

    Args:
        table: documents (`contract.DOC_SCHEMA` plus any earlier stage's columns).
        params: extractor choice and thresholds.

    Returns:
        `StageOutput`: `kept` with `text` replaced for HTML rows and `html_chars` (int64),
        `html_lang` (string) and `license` (string: the page's declared licence, or for other rows
        the licence field of their record; `tasks.licenses`) appended; `rejected` rows keep their
        HTML `text` and add `reason`.
    """
    texts = table.column("text").combine_chunks()
    is_html = pc.fill_null(pc.equal(table.column("source"), HTML_SOURCE), False).combine_chunks()
    html_chars = pc.if_else(is_html, pc.utf8_length(texts).cast(pa.int64()), None)
    langs = pc.if_else(is_html, html_lang(texts), pa.scalar(None, pa.string()))
    new_texts: list[str] = texts.to_pylist()
    metas = table.column("meta").to_pylist() if "meta" in table.column_names else [None] * len(new_texts)
    licenses = [  # read from the HTML before its text is replaced
        declared_license(text) if html else metadata_license(meta)
        for text, html, meta in zip(new_texts, is_html.to_pylist(), metas)
    ]
    reasons: list[str | None] = [None] * len(new_texts)
    todo = []
    for i in pc.indices_nonzero(is_html).to_pylist():
        if len(new_texts[i]) > params.max_html_chars:
            reasons[i] = "extract:html_chars"
        else:
            todo.append(i)
    for i, text in zip(todo, extract_texts([new_texts[i] for i in todo], params)):
        if text is TIMED_OUT:
            reasons[i] = "extract:timeout"
        elif len(text) < params.min_text_chars:
            reasons[i] = "extract:text_chars"
        else:
            new_texts[i] = text
    index = table.column_names.index("text")
    field = table.schema.field(index)
    out = table.set_column(index, field, pa.array(new_texts, field.type))
    out = out.append_column(pa.field("html_chars", pa.int64()), html_chars)
    out = out.append_column(pa.field("html_lang", pa.string()), langs)
    out = out.append_column(pa.field("license", pa.string()), pa.array(licenses, pa.string()))
    kept, rejected = split_by_reason(out, pa.array(reasons, pa.string()))
    return StageOutput(kept, rejected)
