"""The dataset card every published version carries: `README.md` in the Hugging Face format.

A YAML header (licence, languages, size category, and `configs` pointing at `data/*.parquet`, so
`datasets.load_dataset(<version folder>)` finds the data), then what a reader of the data needs: the
sources with their sizes and fingerprints, each stage with its code version, parameters and what it
removed, the dedup and decontamination results, the languages, and what the run did not do, as each
stage states it under its parameters. Built from what the run already knows: no text is read.
No Prefect and no stage names here: the flow passes everything in.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

# The Hugging Face Hub's size categories (its dataset card metadata), as (upper bound, label)
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
)
SOURCES_SHOWN = 50  # input files listed one by one; the rest are counted
REASONS_SHOWN = 3  # per stage


@dataclass(frozen=True)
class StageCard:
    """What the card says of one stage of the run."""

    name: str
    version: int | None  # None: not a stage of the registry (`write`)
    docs_in: int
    docs_out: int
    drops: Mapping[str, int]
    params: Mapping | None  # its config section, as JSON


@dataclass(frozen=True)
class Source:
    path: str
    bytes: int | None
    fingerprint: str


def size_category(rows: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if rows < bound), "n>10B")


def base_language(label: str) -> str:
    """A language label as the Hub's `language` field wants it: fastText's `zh`, `sr_Latn` -> `zh`, `sr`."""
    return label.split("_")[0].split("-")[0].lower()


def card_metadata(title: str, rows: int, languages: Mapping[str, int], licenses: Mapping[str, int]) -> dict:
    """The card's YAML header: every licence a document declares, and `unknown` for those declaring none."""
    declared = sorted(lic for lic in licenses if lic)
    return {
        "pretty_name": title,
        "license": declared + (["unknown"] if rows > sum(licenses[lic] for lic in declared) or not declared else []),
        "language": sorted({base_language(lang) for lang in languages if lang}),
        "size_categories": [size_category(rows)],
        "task_categories": ["text-generation"],
        "tags": ["winnow"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}],
    }


def dataset_card(
    *,
    title: str,
    version: str,
    previous: str | None,
    rows: int,
    sources: Sequence[Source],
    stages: Sequence[StageCard],
    results: Sequence[str],
    languages: Mapping[str, int],
    limits: Sequence[tuple[str, str]],
    licenses: Mapping[str, int],
    changes: str = "",
) -> str:
    """README.md of a dataset version. `results` are the report sections' Markdown (dedup,
    decontamination, ...); `limits` are (stage, what it did not do) pairs; `languages` and `licenses`
    count documents per value ("" for none); `changes` says what this version added and removed against
    the one it replaces."""
    header = yaml.safe_dump(card_metadata(title, rows, languages, licenses), sort_keys=False, allow_unicode=True)
    made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    lines = [
        f"---\n{header}---",
        f"# {title}",
        f"{rows:,} documents, curated by Winnow on {made}: dataset version `{version}`"
        + (f", which replaces `{previous}`." if previous else ", the first of this output."),
        'Load it with `datasets.load_dataset("<this folder>")`, or read `data/*.parquet` with DuckDB, '
        "Polars or pyarrow.",
        *(["## Changes", changes] if changes else []),
        "## Sources",
        _sources(sources),
        "## Processing",
        "Each stage in run order, with its code version, the documents it received and kept, and its "
        "main reasons for removing documents. Parameters are below the table.",
        _stages(stages),
        _parameters(stages),
        "## Results",
        *results,
        "## Languages",
        _counted(languages, rows, "language", "unknown"),
        "## Licences",
        "The licence each document declares (`license`: a Creative Commons or other open-licence link in its "
        "page, or a licence field of its record). Where none is declared, the document keeps the terms of its "
        "source, which are unknown here.",
        _counted(licenses, rows, "licence", "none declared"),
        "## Known limitations",
        "\n".join(f"- **{stage}**: {text}" for stage, text in limits) or "- None stated by the stages of this run.",
    ]
    return "\n\n".join(line for line in lines if line) + "\n"


def _sources(sources: Sequence[Source]) -> str:
    rows = [
        f"| `{s.path}` | {'-' if s.bytes is None else f'{s.bytes:,}'} | `{s.fingerprint}` |"
        for s in sources[:SOURCES_SHOWN]
    ]
    more = len(sources) - SOURCES_SHOWN
    total = sum(s.bytes or 0 for s in sources)
    return "\n".join(
        [
            f"{len(sources):,} input files, {total:,} bytes. Each document names its file, record and WARC "
            "record id in `source_file`, `source_record` and `warc_record_id`.",
            "",
            "| input | bytes | fingerprint |",
            "|---|---:|---|",
            *rows,
            *([f"| and {more:,} more | | |"] if more > 0 else []),
        ]
    )


def _stages(stages: Sequence[StageCard]) -> str:
    rows = []
    for s in stages:
        top = sorted(s.drops.items(), key=lambda kv: (-kv[1], kv[0]))[:REASONS_SHOWN]
        reasons = ", ".join(f"`{reason}` {n:,}" for reason, n in top) or "-"
        version = "-" if s.version is None else str(s.version)
        rows.append(f"| {s.name} | {version} | {s.docs_in:,} | {s.docs_out:,} | {reasons} |")
    return "\n".join(
        ["| stage | version | documents in | documents out | top reasons |", "|---|---:|---:|---:|---|", *rows]
    )


def _parameters(stages: Sequence[StageCard]) -> str:
    blocks = [
        f"<details><summary>{s.name}</summary>\n\n```yaml\n{_yaml(s.params)}```\n\n</details>"
        for s in stages
        if s.params is not None
    ]
    return "\n\n".join(blocks)


def _yaml(params: Mapping) -> str:
    return yaml.safe_dump(dict(params), sort_keys=False, allow_unicode=True)


def _counted(counts: Mapping[str, int], rows: int, what: str, missing: str) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    table = [f"| {value or missing} | {n:,} | {n / max(rows, 1):.1%} |" for value, n in ordered]
    return "\n".join([f"| {what} | documents | share |", "|---|---:|---:|", *table])
