"""The one typed config: flow parameter (Prefect UI form), YAML schema and `--set a.b=c` target.

Stage parameters live beside their rules in `tasks/`; this module only composes them. Knobs that
cannot change the output (cluster size, retries) live in `RunOptions` and stay out of cache keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import to_jsonable_python

from tasks.clean import CleanParams
from tasks.dedup_exact import DedupExactParams
from tasks.dedup_fuzzy import FuzzyDedupParams
from tasks.errors import ConfigError
from tasks.extract import ExtractParams
from tasks.langid import LangidParams
from tasks.normalize import NormalizeParams
from tasks.quality import QualityParams
from tasks.read import ReadParams
from tasks.select import SelectParams
from tasks.thresholds import ThresholdReportParams
from tasks.decontam import DecontamParams
from tasks.toxicity import ToxicityParams
from tasks.url_filter import UrlFilterParams


class InputConfig(ReadParams):
    paths: tuple[str, ...] = Field(
        min_length=1,
        description="Input files: paths, globs, directories or fsspec URLs "
        "(.jsonl[.gz|.zst], .parquet, .txt, .warc[.gz], .warc.wet[.gz]).",
    )

    def read_params(self) -> ReadParams:
        """The parsing knobs alone: which files are read is each shard's input key, not a parameter."""
        return ReadParams(**self.model_dump(exclude={"paths"}))


class WriteParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jsonl: bool = Field(False, description="Also write the final dataset as .jsonl.gz beside the Parquet shards.")


class ClusterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        None, description="Address of a running Dask scheduler (tcp://host:8786); empty starts a LocalCluster."
    )
    cluster_class: str | None = Field(
        None,
        description="Import path of a Dask cluster class the run creates (and closes) instead of a LocalCluster, "
        "e.g. 'dask_kubernetes.operator.KubeCluster' or 'dask_jobqueue.SLURMCluster' (see infra/).",
    )
    cluster_kwargs: dict[str, Any] = Field(
        {},  # pydantic copies a mutable default per instance
        description="Keyword arguments of `cluster_class` (name, image, queue, cores, memory, ...).",
    )
    adapt_minimum: int | None = Field(
        None, ge=0, description="Adaptive scaling: fewest workers the created cluster shrinks to (with adapt_maximum)."
    )
    adapt_maximum: int | None = Field(
        None, ge=1, description="Adaptive scaling: most workers the created cluster grows to; empty: fixed size."
    )
    n_workers: int = Field(2, ge=1, description="LocalCluster worker processes (one per core is typical).")
    threads_per_worker: int = Field(1, ge=1, description="Threads per worker; stages are CPU-bound Python.")
    memory_limit: str = Field("auto", description="Memory limit per LocalCluster worker, e.g. '4GiB'.")

    def __hash__(self) -> int:  # frozen models hash their fields; cluster_kwargs is a dict
        return hash(self.model_dump_json())

    @model_validator(mode="after")
    def _one_cluster_choice(self) -> ClusterOptions:
        if self.address and (self.cluster_class or self.cluster_kwargs):
            raise ValueError("set either address (a running scheduler) or cluster_class, not both")
        if self.address and (self.adapt_minimum is not None or self.adapt_maximum is not None):
            raise ValueError("adaptive scaling needs a cluster the run creates; a running scheduler at address scales itself")
        if self.cluster_kwargs and not self.cluster_class:
            raise ValueError("cluster_kwargs needs cluster_class")
        if (self.adapt_minimum is None) != (self.adapt_maximum is None):
            raise ValueError("set adapt_minimum and adapt_maximum together")
        if self.adapt_maximum is not None and self.adapt_minimum > self.adapt_maximum:
            raise ValueError(f"adapt_minimum {self.adapt_minimum} exceeds adapt_maximum {self.adapt_maximum}")
        return self


class RetryPolicy(BaseModel):
    """Prefect retries of a stage task; finished shards are kept, so a retry redoes only the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Prefect's task default is no retries; a transient fault is first retried per shard by Dask.
    retries: int = Field(0, ge=0, description="Retries of a failed stage.")
    # Prefect's `exponential_backoff(backoff_factor=10)`: 10 s, 20 s, 40 s, ...
    delay_seconds: float = Field(10.0, ge=0.0, description="Wait before the first retry.")
    backoff: float = Field(2.0, ge=1.0, description="Each further retry waits this many times longer.")

    def delays(self) -> list[float]:
        return [self.delay_seconds * self.backoff**attempt for attempt in range(self.retries)]


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: ClusterOptions = ClusterOptions()
    shard_retries: int = Field(1, ge=0, description="Dask retries of a failed shard before the stage fails.")
    stage_retries: RetryPolicy = Field(RetryPolicy(), description="Retries of every stage, unless overridden below.")
    stage_retries_by_stage: dict[str, RetryPolicy] = Field(
        {}, description="Per-stage retry policies, e.g. {dedup_fuzzy: {retries: 2, delay_seconds: 60}}.",
    )

    def retry_policy(self, stage: str) -> RetryPolicy:
        return self.stage_retries_by_stage.get(stage, self.stage_retries)
    report_sample_pairs: int = Field(
        200, ge=0, description="Removed/keeper pairs whose exact Jaccard estimates the fuzzy dedup's precision."
    )
    threshold_report: ThresholdReportParams = Field(
        ThresholdReportParams(), description="Score distributions and candidate thresholds in the run report."
    )


class CurationConfig(BaseModel):
    """Everything a curation run depends on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: InputConfig
    output: str = Field("out", description="Directory (or fsspec URL) for the final dataset and run summary.")
    store: str | None = Field(
        None, description="Artifact store for cached stage outputs; default: <output>/.winnow-store."
    )
    url_filter: UrlFilterParams = UrlFilterParams()
    extract: ExtractParams = ExtractParams()
    normalize: NormalizeParams = NormalizeParams()
    langid: LangidParams = LangidParams()
    clean: CleanParams = CleanParams()
    dedup_exact: DedupExactParams = DedupExactParams()
    dedup_fuzzy: FuzzyDedupParams = FuzzyDedupParams()
    quality: QualityParams = QualityParams()
    toxicity: ToxicityParams = ToxicityParams()
    decontam: DecontamParams = DecontamParams()
    select: SelectParams = SelectParams()
    write: WriteParams = WriteParams()
    run: RunOptions = RunOptions()

    @property
    def store_url(self) -> str:
        return self.store or f"{self.output.rstrip('/')}/.winnow-store"


def apply_override(tree: dict, assignment: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is read as YAML (numbers, lists, booleans)."""
    dotted, sep, raw = assignment.partition("=")
    if not sep or not dotted:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    *parents, leaf = dotted.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment!r}: {part!r} is not a section")
    node[leaf] = yaml.safe_load(raw) if raw.strip() else None


Config = TypeVar("Config", bound=BaseModel)


def load_config(
    path: Path | None = None, overrides: list[str] = (), base: dict[str, Any] | None = None,
    schema: type[Config] = CurationConfig, start: dict[str, Any] | None = None,
) -> Config:
    """YAML file or `start` (an earlier run's config) + `base` values + `--set` overrides, validated
    into `schema` (a CurationConfig; the training flow passes its TrainConfig)."""
    if path is not None and start is not None:
        raise ConfigError("give a config file or an earlier run to start from, not both")
    tree: dict[str, Any] = dict(start or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from exc
        if not isinstance(loaded, dict | None):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(loaded).__name__}")
        tree = loaded or {}
    for key, value in (base or {}).items():
        if value is not None:
            tree[key] = value if not isinstance(value, dict) else {**tree.get(key, {}), **value}
    for assignment in overrides:
        apply_override(tree, assignment)
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config: {problems}") from exc


def type_label(annotation: Any) -> str:
    """A field's type as a reader writes it: `tuple[BenchmarkSpec, ...]`, `bool | "auto"`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_label(args[0])
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(type_label(a) for a in args)
    if origin is None:
        return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
    return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else type_label(a) for a in args)}]"


def reference_rows(model: type[BaseModel] = CurationConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) for every leaf of the config tree."""
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(reference_rows(annotation, f"{key}."))
            continue
        default = "required" if info.is_required() else json.dumps(to_jsonable_python(info.default), ensure_ascii=False)
        rows.append((key, type_label(annotation).replace("|", "\\|"), default, (info.description or "").replace("|", "\\|")))
    return rows


def reference_markdown() -> str:
    """The README's config reference; a test keeps the README in sync with the model."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{key}` | `{type_}` | `{default}` | {doc} |" for key, type_, default, doc in reference_rows()]
    return "\n".join(lines)
