"""The `train-classifier` flow: labeled documents in, a scorer model for `quality`/`toxicity` out.

Two ways to give examples:
- labeled files: every record's `labels.field` says its class (`labels.positive` values are positive);
- positive files vs negative files: DCLM's recipe (Li et al. 2024, "DataComp-LM"): a reference set of
  good documents against a seeded sample of the raw pool (`max_negatives`).
Files are read by the `read` stage's own parser (`tasks/read/`), so every format and field knob of
`winnow run` works here. Nothing is dropped silently: records the reader quarantines and records
without a usable label are written to `<output>/excluded.parquet` with a reason and counted in the
model card. The model, its validation metrics and its card come from `tasks/train.py`; the metrics are
published as a Prefect artifact, and the scorer config that plugs the model in is printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, model_validator

import tasks.read
from tasks import models
from tasks.contract import RAW_PREFIX_BYTES, REASON
from tasks.errors import ModelError
from tasks.io import expand_inputs, file_fingerprint
from tasks.models import SCORER_NAME
from tasks.read import ReadParams
from tasks.train import (
    EmbeddingHeadTrainParams,
    FastTextTrainParams,
    LabelParams,
    label_examples,
    label_heads,
    train_embedding_head,
    train_fasttext,
    train_heads,
)

EXCLUDED_FILE = "excluded.parquet"
TRAINING_VERSION = 1  # bump when training changes what the same inputs and config produce
EXCLUDED_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("record", pa.string(), nullable=False),  # the document id, or `line <n>` for a quarantined record
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.binary(), nullable=False),  # first KiB: the raw record, or the document's meta
    ]
)


class TrainConfig(BaseModel):
    """Everything a classifier training run depends on (the flow's parameter form)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labeled: tuple[str, ...] = Field(
        (), description="Labeled files (paths, globs, directories, URLs); `labels` says how to read the class."
    )
    labels: LabelParams = LabelParams()
    heads: dict[str, LabelParams] = Field(
        {},
        description="A multi-head model instead of one classifier: head name -> how its label is read from "
        "`labeled` files. A record whose field is missing or null is unknown for that head (masked, not "
        "negative). The first head writes `<stage's scorer name>_score`, each other `<name>_<head>_score`.",
    )
    languages: tuple[str, ...] = Field(
        (),
        description="Multi-head models: the languages the training data covers (`lang` codes); the scorer "
        "leaves documents in other languages unscored. Empty: it scores every document.",
    )
    positive: tuple[str, ...] = Field(
        (), description="Files whose documents are all positive (DCLM: the reference 'good' set)."
    )
    negative: tuple[str, ...] = Field((), description="Files whose documents are all negative (DCLM: the raw corpus).")
    # DCLM trains on balanced classes, sampling the raw pool down to the reference set's size.
    max_positives: int | None = Field(
        None, ge=2, description="Seeded sample of at most this many positives; empty: all."
    )
    max_negatives: int | None = Field(
        None, ge=2, description="Seeded sample of at most this many negatives; empty: all."
    )
    sample_seed: int = Field(0, description="Seeds the class samples; the same inputs give the same examples.")
    read: ReadParams = Field(
        ReadParams(), description="How input files are parsed (format, text_field, id_field, ...)."
    )
    kind: Literal["fasttext", "embedding_head"] = Field("fasttext", description="Classifier to train.")
    fasttext: FastTextTrainParams = FastTextTrainParams()
    embedding_head: EmbeddingHeadTrainParams = EmbeddingHeadTrainParams()
    stage: Literal["quality", "toxicity"] = Field("quality", description="Stage whose scorer config is printed.")
    output: str = Field("model", description="Local directory for the model, its card and the excluded records.")

    @model_validator(mode="after")
    def _one_source(self) -> TrainConfig:
        if bool(self.labeled) == bool(self.positive or self.negative):
            raise ValueError("give either labeled files, or positive and negative files")
        if not self.labeled and not (self.positive and self.negative):
            raise ValueError("positive and negative files go together")
        consumed = {self.read.text_field, self.read.id_field, self.read.url_field, self.read.source_field}
        if self.heads and not self.labeled:
            raise ValueError("heads read their labels from labeled files")
        for head in self.heads:
            if not re.fullmatch(SCORER_NAME, head):
                raise ValueError(f"head {head!r}: a head names a score column (lower case, digits, _)")
        if self.labeled and self.labels.field in consumed:
            raise ValueError(
                f"labels.field {self.labels.field!r} is a field read consumes as text/id/url/source; "
                "point that read.*_field elsewhere"
            )
        return self

    @property
    def params(self) -> FastTextTrainParams | EmbeddingHeadTrainParams:
        return self.fasttext if self.kind == "fasttext" else self.embedding_head


def resolve_inputs(cfg: TrainConfig) -> dict[str, list[tuple[str, str]]]:
    """Input files per role, resolved before training starts so a bad path fails at once."""
    roles = {"labeled": cfg.labeled} if cfg.labeled else {"positive": cfg.positive, "negative": cfg.negative}
    return {role: expand_inputs(list(patterns)) for role, patterns in roles.items()}


def _excluded(source_file: str, record: list[str], reasons: list[str], raw: list[bytes]) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([source_file] * len(record), pa.string()),
            pa.array(record, pa.string()),
            pa.array(reasons, pa.string()),
            pa.array(raw, pa.binary()),
        ],
        schema=EXCLUDED_SCHEMA,
    )


def read_role(files: list[tuple[str, str]], cfg: TrainConfig, role: str) -> tuple[pa.Table, pa.Table]:
    """Documents of one role's files with a bool `label`, and the excluded records of those files."""
    examples, excluded = [], []
    for path, relpath in files:
        docs, quarantine = tasks.read.run(path, relpath, cfg.read)
        excluded.append(
            _excluded(
                path,
                [f"line {n}" for n in quarantine.column("line").to_pylist()],
                quarantine.column(REASON).to_pylist(),
                quarantine.column("raw").to_pylist(),
            )
        )
        if role == "labeled":
            kept, rejected = label_heads(docs, cfg.heads) if cfg.heads else label_examples(docs, cfg.labels)
            excluded.append(
                _excluded(
                    path,
                    rejected.column("id").to_pylist(),
                    rejected.column(REASON).to_pylist(),
                    [(m or "").encode()[:RAW_PREFIX_BYTES] for m in rejected.column("meta").to_pylist()],
                )
            )
        else:
            kept = docs.append_column("label", pa.array([role == "positive"] * docs.num_rows, pa.bool_()))
        examples.append(kept.select(["text", *(cfg.heads or ["label"])]))
    return pa.concat_tables(examples), pa.concat_tables(excluded)


def sample_class(table: pa.Table, positive: bool, cap: int | None, seed: int) -> pa.Table:
    """One class's rows, a seeded sample of `cap` of them when there are more (input order kept)."""
    rows = table.filter(pc.equal(table.column("label"), positive))
    if cap is None or rows.num_rows <= cap:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(rows.num_rows, cap, replace=False))
    return rows.take(keep)


@task(name="read-examples", cache_policy=NO_CACHE)
def read_examples(cfg: TrainConfig) -> tuple[pa.Table, pa.Table, dict]:
    """Examples (`text`, `label`), excluded records, and the provenance the model card keeps."""
    files = resolve_inputs(cfg)
    parts = [read_role(paths, cfg, role) for role, paths in files.items()]
    examples = pa.concat_tables([p[0] for p in parts])
    excluded = pa.concat_tables([p[1] for p in parts])
    if not cfg.heads:  # a multi-head model's classes differ by head: all examples are kept
        examples = pa.concat_tables(
            [
                sample_class(examples, True, cfg.max_positives, cfg.sample_seed),
                sample_class(examples, False, cfg.max_negatives, cfg.sample_seed + 1),
            ]
        )
    reasons = pc.value_counts(excluded.column(REASON)).to_pylist() if excluded.num_rows else []
    inputs = {
        "files": {role: [path for path, _ in paths] for role, paths in files.items()},
        "examples": examples.num_rows,
        "excluded": {r["values"]: r["counts"] for r in reasons},
        "excluded_file": EXCLUDED_FILE,
    }
    return examples, excluded, inputs


@task(name="fit", cache_policy=NO_CACHE)
def fit(cfg: TrainConfig, examples: pa.Table, inputs: dict, out_dir: Path) -> dict:
    """Train the configured kind; returns its model card."""
    texts = examples.column("text").to_pylist()
    if cfg.heads:
        labels = {head: examples.column(head).to_pylist() for head in cfg.heads}
        train_heads(texts, labels, cfg.params, out_dir, inputs, cfg.languages)
    else:
        train = train_fasttext if cfg.kind == "fasttext" else train_embedding_head
        train(texts, examples.column("label").to_pylist(), cfg.params, out_dir, inputs)
    return models.read_model_card(out_dir)


def scorer_snippet(stage: str, scorer: dict) -> str:
    """The config that plugs the model into `stage`: YAML for a config file, and the `--set` form."""
    block = yaml.safe_dump({stage: {"scorers": [scorer]}}, sort_keys=False)
    return f"{block}\nor: --set '{stage}.scorers=[{json.dumps(scorer)}]'"


def _auc(value: float | None) -> str:
    return "n/a (one class)" if value is None else f"{value:.3f}"


def metrics_markdown(card: dict, snippet: str) -> str:
    m, data = card["metrics"], card["data"]
    excluded = ", ".join(f"{k}={v}" for k, v in card["inputs"].get("excluded", {}).items()) or "none"
    if "heads" in card:
        rows = "".join(
            f"| {head} | {data[head]['n_train']:,} ({data[head]['n_train_positive']:,}) | "
            f"{data[head]['n_validation']:,} | {m[head]['accuracy']:.3f} | {_auc(m[head]['roc_auc'])} | "
            f"{_auc(m[head]['pr_auc'])} |\n"
            for head in card["heads"]
        )
        return (
            f"### {card['kind']} model `{card['label']}`: {len(card['heads'])} heads\n\n"
            f"Languages: {', '.join(card['languages']) or 'all'}. Excluded records: {excluded}.\n\n"
            "| head | trained on (positive) | validated on | accuracy | ROC-AUC | PR-AUC |\n"
            "|---|---|---|---|---|---|\n"
            f"{rows}\nPlug it in:\n\n```yaml\n{snippet}\n```"
        )
    return (
        f"### {card['kind']} classifier `{card['label']}`\n\n"
        f"Trained on {data['n_train']:,} examples ({data['n_train_positive']:,} positive), validated on "
        f"{data['n_validation']:,} ({data['n_validation_positive']:,} positive). Excluded records: {excluded}.\n\n"
        "| accuracy | ROC-AUC | PR-AUC | Brier | ECE |\n|---|---|---|---|---|\n"
        f"| {m['accuracy']:.3f} | {_auc(m['roc_auc'])} | {_auc(m['pr_auc'])} | {m['brier']:.3f} | {m['ece']:.3f} |\n\n"
        f"Plug it in:\n\n```yaml\n{snippet}\n```"
    )


def training_key(cfg: TrainConfig) -> str:
    """What a model depends on: the config (not where it goes) and the content fingerprints of the input
    files. The card keeps it, so an unchanged rerun leaves the model file, and the fingerprint that
    keys the stages scoring with it, untouched."""
    files = {
        role: [(path, file_fingerprint(path)) for path, _ in paths] for role, paths in resolve_inputs(cfg).items()
    }
    config = cfg.model_dump(mode="json", exclude={"output"})
    return hashlib.sha256(json.dumps([TRAINING_VERSION, config, files], sort_keys=True).encode()).hexdigest()[:16]


def trained_card(out_dir: Path, key: str) -> dict | None:
    """The card of a complete model in `out_dir` trained under `key`, else None."""
    with contextlib.suppress(ModelError, ValueError):
        card = models.read_model_card(out_dir)
        if card.get("inputs", {}).get("training_key") == key and Path(card["scorer"]["model_path"]).exists():
            return card
    return None


@flow(name="train-classifier", log_prints=True)
def train_classifier(cfg: TrainConfig) -> dict:
    """Train a fastText or embedding-head classifier from labeled or positive/negative files; a model
    already trained from the same inputs and config is kept (a no-op rerun)."""
    out_dir = Path(cfg.output).resolve()  # the scorer config must find the model from any directory
    key = training_key(cfg)
    if (card := trained_card(out_dir, key)) is not None:
        print(f"{out_dir}: the model trained from these inputs and this config is there (key {key}); kept")
        return published(cfg, out_dir, card)
    examples, excluded, inputs = read_examples(cfg)
    inputs["training_key"] = key
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{EXCLUDED_FILE}.tmp"
    pq.write_table(excluded, tmp)
    tmp.replace(out_dir / EXCLUDED_FILE)
    print(
        f"{inputs['examples']:,} examples; excluded {excluded.num_rows:,} records "
        f"({inputs['excluded'] or 'none'}), listed in {out_dir / EXCLUDED_FILE}"
    )
    return published(cfg, out_dir, fit(cfg, examples, inputs, out_dir))


def published(cfg: TrainConfig, out_dir: Path, card: dict) -> dict:
    """The model's metrics as a Prefect artifact and in the log, with the scorer config that plugs it in."""
    snippet = scorer_snippet(cfg.stage, card["scorer"])
    markdown = metrics_markdown(card, snippet)
    create_markdown_artifact(
        key="classifier-metrics", markdown=markdown, description=f"Validation metrics of {out_dir}"
    )
    print(markdown.replace("### ", ""))
    return {"model_dir": str(out_dir), "card": card, "snippet": snippet}
