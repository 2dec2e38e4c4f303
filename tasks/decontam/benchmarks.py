"""The benchmark registry: which test sets to decontaminate against and which of their fields leak.

A `BenchmarkSpec` names a local JSONL/Parquet file or a Hugging Face dataset (id, config, split) and
a field layout. A layout's adapter turns one record into an `Item`: the text segments whose n-grams
count as contamination, and the text that represents the item for embedding search. Layouts follow
the published field names (the local copies in the data folder add an `id`):

    gsm8k       question, answer (calculator annotations `<<48/2=24>>` removed: web copies drop them)
    humaneval   prompt, canonical_solution (the unit tests are not training text anyone copies)
    mmlu        question; question followed by its choices, bare and with `A.`-`D.` labels (the usual
                prompt rendering, as in lm-evaluation-harness: labels would split the n-grams)
    truthfulqa  question, best_answer, and the two together (the many short answer variants would
                match common phrases)
    fields      the configured `fields`, each one segment
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Literal, NamedTuple

import pyarrow.parquet as pq
from pydantic import ConfigDict, Field, computed_field, model_validator

from tasks.contract import RecomputedOnLoad
from tasks.errors import ConfigError, InputError
from tasks.io import detect_format, file_fingerprint, iter_lines, open_input

CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")


class Item(NamedTuple):
    benchmark: str
    item_id: str
    segments: tuple[str, ...]  # each indexed for n-grams on its own
    semantic_text: str  # what a paraphrase of the item would rephrase


class BenchmarkSpec(RecomputedOnLoad):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Benchmark name written to contam_benchmark.")
    layout: Literal["gsm8k", "humaneval", "mmlu", "truthfulqa", "fields"] = Field(
        description="Field layout of the records (see tasks/decontam/benchmarks.py)."
    )
    path: str | None = Field(None, description="Local path or fsspec URL of a .jsonl[.gz|.zst] or .parquet file.")
    hf_dataset: str | None = Field(
        None, description="Hugging Face dataset id (e.g. openai/gsm8k), read with `datasets`."
    )
    hf_config: str | None = Field(
        None, description="Dataset config (gsm8k: main, mmlu: all, truthful_qa: generation)."
    )
    hf_revision: str | None = Field(None, description="Dataset revision (commit); pin it so the cache key is stable.")
    split: str = Field("test", description="Split of the Hugging Face dataset.")
    fields: tuple[str, ...] = Field((), description="Text fields for the `fields` layout, each one segment.")
    id_field: str = Field("id", description="Record field holding the item id; the row number when absent.")

    @model_validator(mode="after")
    def _one_source(self) -> BenchmarkSpec:
        if (self.path is None) == (self.hf_dataset is None):
            raise ValueError(f"benchmark {self.name!r}: set exactly one of path and hf_dataset")
        if self.layout == "fields" and not self.fields:
            raise ValueError(f"benchmark {self.name!r}: the fields layout needs `fields`")
        return self

    @computed_field(description="Content fingerprint of the local file: an edited benchmark rebuilds the index.")
    @property
    def fingerprint(self) -> str | None:
        return file_fingerprint(self.path) if self.path else None


def gsm8k(record: dict) -> tuple[tuple[str, ...], str]:
    answer = CALCULATOR_ANNOTATION.sub("", record["answer"])
    return (record["question"], answer), record["question"]


def humaneval(record: dict) -> tuple[tuple[str, ...], str]:
    return (record["prompt"], record["canonical_solution"]), record["prompt"] + record["canonical_solution"]


def mmlu(record: dict) -> tuple[tuple[str, ...], str]:
    with_choices = "\n".join([record["question"], *map(str, record["choices"])])
    labeled = "\n".join([record["question"], *(f"{label}. {c}" for label, c in zip("ABCD", record["choices"]))])
    return (record["question"], with_choices, labeled), with_choices


def truthfulqa(record: dict) -> tuple[tuple[str, ...], str]:
    together = f"{record['question']}\n{record['best_answer']}"
    return (record["question"], record["best_answer"], together), record["question"]


Adapter = Callable[[dict], tuple[tuple[str, ...], str]]
ADAPTERS: dict[str, Adapter] = {"gsm8k": gsm8k, "humaneval": humaneval, "mmlu": mmlu, "truthfulqa": truthfulqa}


def read_records(spec: BenchmarkSpec) -> list[dict]:
    """The benchmark's records from its file, or from the Hugging Face hub through `datasets`."""
    if spec.hf_dataset is not None:
        try:
            import datasets
        except ImportError as exc:
            raise ConfigError(
                f"benchmark {spec.name!r}: pip install datasets to load {spec.hf_dataset}, or set path"
            ) from exc
        data = datasets.load_dataset(spec.hf_dataset, spec.hf_config, split=spec.split, revision=spec.hf_revision)
        return list(data)
    if detect_format(spec.path) == "parquet":
        with open_input(spec.path) as f:
            return pq.read_table(f).to_pylist()
    records = []
    for n, line in enumerate(iter_lines(spec.path), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{spec.path}:{n}: not JSON ({exc}); benchmark {spec.name!r}") from exc
    return records


def load_items(spec: BenchmarkSpec) -> list[Item]:
    """Every item of one benchmark; a record missing a layout field is an InputError naming it."""
    adapter = ADAPTERS.get(spec.layout) or (lambda r: (tuple(str(r[f]) for f in spec.fields), str(r[spec.fields[0]])))
    items = []
    for row, record in enumerate(read_records(spec)):
        try:
            segments, semantic_text = adapter(record)
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"{spec.path or spec.hf_dataset} record {row}: no field {exc} for layout {spec.layout!r} "
                f"(found {sorted(record)}); set the benchmark's layout or fields"
            ) from None
        item_id = str(record.get(spec.id_field, record.get("task_id", f"{spec.name}-{row}")))
        items.append(Item(spec.name, item_id, segments, semantic_text))
    return items
