"""Per-benchmark cosine thresholds of the embedding search, chosen from documents that copy no item.

A threshold is the cosine that at most a target share of such negatives reach against a benchmark:
one cosine means different things for different benchmarks (a news page on trade sits near MMLU's
economics questions, far from any GSM8K problem) and for different encoders, so each (encoder path,
benchmark) pair gets its own, from the negatives that path embedded. The target false-positive rate is
shared evenly by the benchmarks, so all of them together flag at most that share. A cut is rounded up
to `DECIMALS`, so rounding never flags a negative the exact cut spares, and is never set below `floor`.

Pure functions over the scan's `contam_windows` and `contam_semantic_path` columns; `winnow calibrate
--stage decontam` runs the scan over the user's own negatives and writes the YAML; bench/decontam.py
and bench/decontam_crosslingual.py set the shipped defaults the same way.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.decontam.index import Index
from tasks.decontam.semantic import ENGLISH, MULTILINGUAL

DECIMALS = 2


class DecontamCalibration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # bench/decontam.py: 0.5% keeps 95% of paraphrases on the dev news; a practitioner's usual budget.
    target_fpr: float = Field(
        0.005, gt=0.0, lt=1.0, description="Share of the negatives all benchmarks together may flag, per path."
    )
    floor: float = Field(
        0.5, ge=-1.0, le=1.0, description="No threshold is set below this cosine, however few negatives reach it."
    )
    min_docs: int = Field(
        200, ge=1, description="A path with fewer negative documents keeps its thresholds (too few to set a cut)."
    )


def best_per_benchmark(windows: list[list[dict] | None], index: Index) -> dict[str, np.ndarray]:
    """Per benchmark: each document's best window cosine against its items (-1 for a document without
    windows), from the scan's `contam_windows`."""
    rows = index.benchmark_rows()
    best = {name: np.full(len(windows), -1.0, np.float32) for name in rows}
    bounds = sorted((lo, hi, name) for name, (lo, hi) in rows.items())
    starts = np.array([lo for lo, _, _ in bounds])
    for d, doc in enumerate(windows):
        for window in doc or ():
            name = bounds[int(np.searchsorted(starts, window["item"], "right")) - 1][2]
            best[name][d] = max(best[name][d], window["score"])
    return best


def threshold(scores: np.ndarray, share: float, floor: float) -> float:
    """The smallest cosine on the `DECIMALS` grid that at most `share` of `scores` reach, and >= floor."""
    allowed = int(math.floor(share * len(scores)))
    ordered = np.sort(scores)[::-1]
    if allowed >= len(ordered):
        return floor
    spared = ordered[allowed]  # the highest score that must stay under the cut
    cut = math.ceil(float(spared) * 10**DECIMALS - 1e-9) / 10**DECIMALS
    while np.float32(cut) <= spared:  # compared as the stage compares: float32 scores against the cut
        cut = round(cut + 10**-DECIMALS, DECIMALS)
    return round(max(cut, floor), DECIMALS)


def calibrate(
    windows: list[list[dict] | None], paths: list[str | None], index: Index, how: DecontamCalibration
) -> dict[str, dict]:
    """Per path (`english`, `multilingual`): documents, and per benchmark its threshold and how many
    negatives reach it; a path with fewer than `min_docs` documents is listed without thresholds."""
    result = {}
    for path in (ENGLISH, MULTILINGUAL):
        docs = [w for w, p in zip(windows, paths) if p == path]
        entry: dict = {"documents": len(docs), "thresholds": {}, "reached": {}}
        if len(docs) >= how.min_docs:
            best = best_per_benchmark(docs, index)
            share = how.target_fpr / max(len(best), 1)
            for name, scores in best.items():
                entry["thresholds"][name] = threshold(scores, share, how.floor)
                entry["reached"][name] = int((scores >= entry["thresholds"][name]).sum())
        result[path] = entry
    return result


def to_yaml(result: dict[str, dict], how: DecontamCalibration) -> str:
    """The `decontam.semantic` thresholds of a calibration, for `--config`."""
    english, multilingual = result[ENGLISH], result[MULTILINGUAL]
    lines = [
        "# winnow calibrate --stage decontam: per-benchmark cosine thresholds (tasks/decontam/calibrate.py),",
        f"# at most {how.target_fpr:.2%} of the negatives flagged per path, never below {how.floor}.",
    ]
    for path, entry in result.items():
        if not entry["thresholds"]:
            lines.append(f"# {path}: {entry['documents']} documents, fewer than {how.min_docs}: thresholds kept")
    if not english["thresholds"] and not multilingual["thresholds"]:
        return "\n".join([*lines, "decontam: {}"]) + "\n"
    lines += ["decontam:", "  semantic:"]
    lines += thresholds_yaml(english, "    ")
    if multilingual["thresholds"]:
        lines += ["    multilingual:", *thresholds_yaml(multilingual, "      ")]
    return "\n".join(lines) + "\n"


def thresholds_yaml(entry: dict, indent: str) -> list[str]:
    if not entry["thresholds"]:
        return []
    lines = [f"{indent}thresholds:"]
    for name, value in entry["thresholds"].items():
        lines.append(
            f"{indent}  {name}: {value}  # {entry['reached'][name]} of {entry['documents']} negatives reach it"
        )
    return lines
