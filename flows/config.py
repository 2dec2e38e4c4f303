"""The one typed config: flow parameter (Prefect UI form), YAML schema and `--set a.b=c` target.

Stage parameters live beside their rules in `tasks/`; this module only composes them. Knobs that
cannot change the output (cluster size, retries) live in `RunOptions` and stay out of cache keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    n_workers: int = Field(2, ge=1, description="LocalCluster worker processes (one per core is typical).")
    threads_per_worker: int = Field(1, ge=1, description="Threads per worker; stages are CPU-bound Python.")
    memory_limit: str = Field("auto", description="Memory limit per LocalCluster worker, e.g. '4GiB'.")


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: ClusterOptions = ClusterOptions()
    shard_retries: int = Field(1, ge=0, description="Dask retries of a failed shard before the stage fails.")
    stage_retries: int = Field(0, ge=0, description="Prefect retries of a failed stage (finished shards are kept).")
    report_sample_pairs: int = Field(
        200, ge=0, description="Removed/keeper pairs whose exact Jaccard estimates the fuzzy dedup's precision."
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


def load_config(path: Path | None = None, overrides: list[str] = (), base: dict[str, Any] | None = None) -> CurationConfig:
    """YAML file (optional) + `base` values + `--set` overrides, validated into a CurationConfig."""
    tree: dict[str, Any] = {}
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
        return CurationConfig.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config: {problems}") from exc


def reference_rows(model: type[BaseModel] = CurationConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) for every leaf of the config tree."""
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(reference_rows(annotation, f"{key}."))
            continue
        default = "required" if info.is_required() else json.dumps(
            info.default.model_dump(mode="json") if isinstance(info.default, BaseModel) else info.default,
            default=str, ensure_ascii=False,
        )
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        rows.append((key, type_name.replace("|", "\\|"), default, (info.description or "").replace("|", "\\|")))
    return rows


def reference_markdown() -> str:
    """The README's config reference; a test keeps the README in sync with the model."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{key}` | `{type_}` | `{default}` | {doc} |" for key, type_, default, doc in reference_rows()]
    return "\n".join(lines)
