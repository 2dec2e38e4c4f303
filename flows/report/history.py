"""Earlier runs of an output, and why each stage of this run was cached or recomputed compared with
the run before it.

Every run leaves `<output>/runs/<run id>.json` (its summary: config, inputs, funnel with stage keys), so a
rerun needs no Prefect server to know what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flows.engine.publish import OutputDir

NOT_PARAMETERS = {"input.paths"}  # which files are read is the input diff, not a parameter


def run_summaries(output: str) -> list[dict]:
    out = OutputDir(output)
    root = f"{out.root}/runs"
    if not out.fs.exists(root):
        return []
    return [out.read_json(path) for path in sorted(out.fs.glob(f"{root}/*.json"))]


def changed_keys(before: Any, after: Any, prefix: str) -> list[str]:
    """Dotted keys whose values differ between two JSON trees."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        return [
            key
            for name in sorted(set(before) | set(after))
            for key in changed_keys(before.get(name), after.get(name), f"{prefix}.{name}")
        ]
    return [] if before == after or prefix in NOT_PARAMETERS else [prefix]


def input_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Input files (relpath -> fingerprint) that are new, modified or gone."""
    new = sorted(set(after) - set(before))
    modified = sorted(p for p in set(after) & set(before) if after[p] != before[p])
    gone = sorted(set(before) - set(after))
    return [
        f"{n} {what} input file{'s' if n > 1 else ''} ({_names(files)})"
        for what, files in (("new", new), ("modified", modified), ("removed", gone))
        if (n := len(files))
    ]


def _names(files: list[str], shown: int = 3) -> str:
    return ", ".join(files[:shown]) + (f", +{len(files) - shown} more" if len(files) > shown else "")


def stage_reasons(
    funnel: Iterable,
    config: dict,
    inputs: Mapping[str, str],
    previous: dict | None,
    sections: Mapping[str, str],
) -> dict[str, str]:
    """Why each stage was cached or recomputed, compared with the previous run of the same output.

    `sections` names the config section of each stage whose name is not its section's."""
    if previous is None:
        return {row.stage: "found in the store" if row.cached else "first run of this output" for row in funnel}
    before = {row["stage"]: row for row in previous["funnel"]}
    reasons, upstream_changed = {}, None
    for row in funnel:
        earlier = before.get(row.stage)
        if earlier is not None and earlier["key"] == row.key:
            reasons[row.stage] = (
                "unchanged"
                if not row.shards_computed
                else f"unchanged; {row.shards_computed} shards missing from the store"
            )
            upstream_changed = None
            continue
        section = sections.get(row.stage, row.stage)
        why = (
            [f"parameters changed: {_names(keys, 5)}"]
            if (keys := changed_keys(previous["config"].get(section), config.get(section), section))
            else []
        )
        if row is funnel[0]:  # the first stage reads the input files
            why += input_changes(previous.get("inputs", {}), inputs)
        if upstream_changed:
            why.append(f"its input from {upstream_changed} changed")
        if earlier is None:
            why.append("not in the previous run")
        reasons[row.stage] = "; ".join(why) or "code version or dedup index changed"
        if row.cached:
            reasons[row.stage] += " (cached by an earlier run)"
        upstream_changed = row.stage
    return reasons
