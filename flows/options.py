"""The config sections that are not a stage's: input files, output, Dask cluster, retries, report.

Knobs that cannot change the output (cluster size, retries) live in `RunOptions` and stay out of
cache keys. `flows/config.py` composes these with the stages' params into the one config.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.read import ReadParams
from tasks.thresholds import ThresholdReportParams


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
    # None: every version stays readable, as the delta report and `--from-run` assume; deleting
    # published data is the owner's decision, not a default
    keep_versions: int | None = Field(
        None,
        ge=1,
        description="After a run, keep only the newest N dataset versions (never the one latest.json points to); "
        "empty keeps all. Readers still on a removed version lose it: keep 2+ where they may hold one across a run.",
    )

    def content(self) -> dict:
        """The parameters that change the published files (the write key): retention does not."""
        return self.model_dump(mode="json", exclude={"keep_versions"})


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
            raise ValueError(
                "adaptive scaling needs a cluster the run creates; a running scheduler at address scales itself"
            )
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
        {},
        description="Per-stage retry policies, e.g. {dedup_fuzzy: {retries: 2, delay_seconds: 60}}.",
    )

    def retry_policy(self, stage: str) -> RetryPolicy:
        return self.stage_retries_by_stage.get(stage, self.stage_retries)

    report_sample_pairs: int = Field(
        200, ge=0, description="Removed/keeper pairs whose exact Jaccard estimates the fuzzy dedup's precision."
    )
    threshold_report: ThresholdReportParams = Field(
        ThresholdReportParams(), description="Score distributions and candidate thresholds in the run report."
    )
