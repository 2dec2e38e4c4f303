"""The config sections that are not a stage's: input files, output, Dask cluster, retries, report.

Knobs that cannot change the output (cluster size, retries) live in `RunOptions` and stay out of
cache keys. `flows/config.py` composes these with the stages' params into the one config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    # Dask's own port; on loopback, not Dask's every interface: a laptop or shared host exposes nothing
    dashboard: str | None = Field(
        "127.0.0.1:8787",
        description="host:port of the LocalCluster's Dask dashboard (a busy port is swapped for a free one); "
        "empty: none. A scheduler at `address` or a `cluster_class` serves its own.",
    )

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


class ProgressOptions(BaseModel):
    """How a run shows its progress in the terminal (the journal and the Prefect artifact always follow it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display: Literal["auto", "live", "lines", "off"] = Field(
        "auto",
        description="live: a line per running stage, redrawn (rich); lines: a plain line per stage at its end and "
        "every `every_s` while it runs; auto: live on a terminal, lines otherwise (CI, cron, a served run); "
        "off: none (`winnow run --quiet`).",
    )
    # a stall shows in a log within a minute, and an hour-long stage writes 120 lines, not thousands
    every_s: float = Field(30.0, gt=0, description="Seconds between plain progress lines of a running stage.")
    shards: bool = Field(False, description="Also a line per finished shard (`winnow run --verbose`).")

    @field_validator("display", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """`--set run.progress.display=off` parses as YAML, where a bare `off` is false."""
        return "off" if value is False else value


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: ClusterOptions = ClusterOptions()
    progress: ProgressOptions = ProgressOptions()
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
