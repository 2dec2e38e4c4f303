"""Rejected documents of a finished run, with the reason and the value the rule measured, and the spans
a stage marked in the documents it kept (`winnow inspect`).

Not named `inspect.py`: Prefect puts the flow file's folder on `sys.path` when it runs a deployment,
where such a module would shadow the standard library's `inspect` in the Dask workers it starts.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from flows.engine.publish import SUMMARY, OutputDir
from flows.engine.store import ArtifactStore, ShardRef
from tasks.errors import InputError


def signal_columns(reason: str) -> tuple[str, str]:
    """Where a reason's measured value lives: a rule's signal column is named from its code
    (`family:measure` -> `family_measure`); a stage's own column by the measure alone
    (`langid:lang_score` -> `lang_score`, `select:<column>` -> `<column>`)."""
    family, _, measure = reason.partition(":")
    return f"{family}_{measure}", measure


def rejected_examples(output: str | Path, stage: str, reason: str | None, n: int) -> list[dict]:
    """Up to `n` documents `stage` rejected in the last run on `output` (a folder or URL)."""
    store, manifest = _stage_artifacts(output, stage)
    examples: list[dict] = []
    for shard in manifest["shards"]:
        table = store.read_rejected(stage, ShardRef(shard["name"], shard["key"])) if len(examples) < n else None
        if table is None:
            continue
        if reason:
            table = table.filter(pc.equal(table.column("reason"), reason))
        examples.extend(_describe(table.slice(0, n - len(examples))))
    return examples


def span_examples(output: str | Path, stage: str, kind: str | None, n: int, chars: int) -> list[dict]:
    """Up to `n` spans of the `<stage>_spans` column (`{type, start, end}` lists, such as `pii_spans`) in
    the documents `stage` kept, each with `chars` characters of text around it; `kind`: one type only."""
    store, manifest = _stage_artifacts(output, stage)
    column = f"{stage}_spans"
    examples: list[dict] = []
    for shard in manifest["shards"]:
        if len(examples) >= n:
            break
        view = store.view(stage, ShardRef(shard["name"], shard["key"]))  # the shard's stats read once
        if column not in view.columns:
            raise InputError(f"stage {stage!r} marks no spans (no {column} column)")
        table = view.read(store, ["id", "text", column])
        for doc_id, text, spans in zip(*(table.column(c).to_pylist() for c in ("id", "text", column))):
            for span in spans or ():
                if len(examples) < n and kind in (None, span["type"]):
                    start, end = span["start"], span["end"]
                    context = f"{text[max(0, start - chars) : start]}«{text[start:end]}»{text[end : end + chars]}"
                    examples.append({"id": doc_id, "type": span["type"], "text": " ".join(context.split())})
    return examples


def _stage_artifacts(output: str | Path, stage: str) -> tuple[ArtifactStore, dict]:
    """The store of the last run on `output` and `stage`'s manifest in it; a clear error when missing."""
    summary = OutputDir(str(output)).last_summary()
    if summary is None:
        raise InputError(f"{output}: no run summary ({SUMMARY}); run `winnow run --output {output}` first")
    rows = {row["stage"]: row for row in summary["funnel"]}
    if stage not in rows or not rows[stage]["key"]:
        raise InputError(f"no stage {stage!r} in this run (stages: {', '.join(rows)})")
    store = ArtifactStore(summary["store"])
    manifest = store.manifest(stage, rows[stage]["key"])
    if manifest is None:
        raise InputError(f"stage {stage!r} artifacts are gone from {summary['store']}; rerun to rebuild them")
    return store, manifest


def _describe(table: pa.Table) -> list[dict]:
    out = []
    for row in table.to_pylist():
        value = next((row[c] for c in signal_columns(row["reason"]) if c in row), "-")
        text = row.get("text")
        if text is None:  # quarantine: raw bytes of the record
            text = row["raw"].decode("utf-8", errors="replace")
        out.append(
            {
                "id": row.get("id") or f"{row.get('source_file')}:{row.get('line')}",
                "reason": row["reason"],
                "value": value,
                "text": text,
            }
        )
    return out
