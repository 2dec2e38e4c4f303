"""The stage registry: a stage declared once runs in the real flow, and every stage writes the keys it plans."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from pydantic import BaseModel, ConfigDict, Field

from flows.cli.demo import write_demo_corpus
from flows.config import config_model, load_config, reference_rows
from flows.engine.context import open_context
from flows.engine.corpus import Clusters, CorpusSteps, shard_name_args
from flows.engine.stage import Phase, Stage, reads_text
from flows.orchestration.curate import curation_flow
from flows.report.section import Section
from flows.stages import STAGES
from tasks.clusters import marks, position
from tasks.contract import StageOutput, split_by_reason

QUESTION = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
    "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 "
    "per fresh duck egg. How much in dollars does she make every day at the farmers' market?"
)


class VowelParams(BaseModel):
    """A map stage no `tasks/` module knows of: counts vowels, drops documents with too few."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_vowels: int = Field(0, ge=0, description="Fewest vowels a document keeps.")


def count_vowels(table: pa.Table, params: VowelParams) -> StageOutput:
    vowels = pc.utf8_length(pc.replace_substring_regex(pc.utf8_lower(table.column("text")), "[^aeiou]", ""))
    out = table.append_column("n_vowels", vowels.cast(pa.int32()))
    too_few = pc.less(out.column("n_vowels"), params.min_vowels)
    return split_by_reason(out, pc.if_else(too_few, pa.scalar("vowels:n_vowels"), pa.scalar(None, pa.string())))


vowels = types.ModuleType("vowels", "A stage module as `tasks/` modules are: a VERSION and a run.")
vowels.VERSION, vowels.run = 1, count_vowels
VOWELS = Stage("vowels", vowels, VowelParams)


class OpeningParams(BaseModel):
    """A corpus-wide stage no `tasks/` module knows of: one keeper per opening word, corpus-wide."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str | None = Field(None, description="Persistent index of openings kept by earlier runs.")


OPENING_CLUSTERS = pa.schema([("opening", pa.string()), ("keeper", pa.string()), ("size", pa.int64())])


def openings(table: pa.Table, params: OpeningParams, shard_name: str) -> pa.Table:
    """The signature phase: each document's first word and its corpus position."""
    words = [(text.split() or [""])[0].lower() for text in table.column("text").to_pylist()]
    return pa.table({"opening": words, "position": [position(shard_name, row) for row in range(table.num_rows)]})


def group_openings(ctx, params, phases, entries, clusters_dir: str) -> None:
    """Openings shared by two or more documents (of this batch and the index entries), first one kept."""
    signatures = pa.concat_tables(
        ctx.store.read_table(path) for path in ctx.paths(phases[0]) + [e.path for e in entries]
    )
    groups = signatures.group_by("opening").aggregate([("position", "min"), ("position", "count")])
    clusters = groups.filter(pc.greater(groups.column("position_count"), 1))
    clusters = pa.table(
        [clusters.column("opening"), clusters.column("position_min"), clusters.column("position_count")],
        schema=OPENING_CLUSTERS,
    )
    tmp = f"{clusters_dir}.tmp"
    ctx.store.write_table(f"{tmp}/part-0.parquet", clusters)
    ctx.store.publish_dir(tmp, clusters_dir)


def mark_openings(table: pa.Table, params: OpeningParams, signatures: pa.Table, clusters: pa.Table) -> StageOutput:
    found = marks(signatures.column("opening"), signatures.column("position"), clusters, "opening")
    out = table.append_column("opening_cluster_size", found.size)
    return split_by_reason(
        out, pc.if_else(found.duplicate, pa.scalar("opening:first_word"), pa.scalar(None, pa.string()))
    )


def openings_section(ctx, upstream, ref) -> Section:
    dropped = ctx.store.read_json(ctx.store.manifest_path(ref.stage, ref.key))["drops"].get("opening:first_word", 0)
    return Section(
        "opening",
        "opening-report",
        {"dropped": dropped},
        f"### Openings\n\n{dropped} documents repeat an opening.",
        f"<p id='opening-section'>{dropped} repeated openings</p>",
    )


opening = types.ModuleType("opening", "A corpus-wide stage module: a VERSION, its signature phase and its marks.")
opening.VERSION = 1
OPENING = Stage(
    "opening",
    opening,
    OpeningParams,
    phases=(Phase("opening.signatures", openings, shard_args=shard_name_args, reads=reads_text),),
    corpus=CorpusSteps(group_openings, Clusters("opening", OPENING_CLUSTERS, mark_openings), "openings", "index"),
    report=openings_section,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("registry") / "input"
    write_demo_corpus(directory, n_docs=80)
    return directory


def markdown_artifacts(key: str) -> list[str]:
    """The Prefect artifacts of a key, through the API (prefect 3.8.8's `Artifact.get` sends a body its
    server refuses)."""
    with get_client(sync_client=True) as client:
        found = client.request(
            "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}, "limit": 10}
        ).json()
    return [artifact["data"] for artifact in found]


def test_stages_declared_in_a_test_module_run_in_the_flow_cached_reported_and_indexed(
    corpus,
    tmp_path,
    dask_cluster,
    prefect_harness,
    caplog,
):
    stages = STAGES.with_stage(OPENING, after="clean").with_stage(VOWELS, after="opening")
    config = config_model(stages)
    curate = curation_flow(stages, config)
    base = [
        f"input.paths=[{corpus}]",
        f"output={tmp_path / 'out'}",
        f"run.cluster.address={dask_cluster.scheduler_address}",
        "opening.index=toy",
    ]

    first = curate(load_config(overrides=base, schema=config))
    second = curate(load_config(overrides=[*base, "vowels.min_vowels=400"], schema=config))
    third = curate(load_config(overrides=[*base, "vowels.min_vowels=400"], schema=config))

    order = [row["stage"] for row in first["funnel"]]
    assert order[order.index("clean") + 1 : order.index("clean") + 3] == ["opening", "vowels"]
    data = pq.read_table(
        tmp_path / "out" / "versions" / first["version"] / "data", columns=["n_vowels", "opening_cluster_size"]
    )
    assert data.column("n_vowels").null_count == 0 and pc.max(data.column("opening_cluster_size")).as_py() > 1
    rows = {row["stage"]: row for row in second["funnel"]}
    assert rows["opening"]["drops"]["opening:first_word"] == first["opening"]["dropped"] > 0
    assert rows["opening"]["shards_computed"] == 0  # every shard decided by the first run's index batch
    assert rows["vowels"]["why"].startswith("parameters changed: vowels.min_vowels")
    assert rows["vowels"]["drops"]["vowels:n_vowels"] > 0
    assert all(rows[stage]["cached"] for stage in order[: order.index("vowels")])
    assert all(row["cached"] for row in third["funnel"])
    assert (
        f"Openings: {first['opening']['dropped']} documents repeat an opening." in caplog.text
    )  # the terminal's lines
    assert f"### Openings\n\n{first['opening']['dropped']} documents repeat an opening." in markdown_artifacts(
        "opening-report"
    )
    assert "<p id='opening-section'>" in Path(third["report"].removeprefix("file://")).read_text()
    assert list((tmp_path / "out" / ".winnow-store" / "opening" / "index" / "toy").glob("*/_SUCCESS"))
    assert ("vowels.min_vowels", "int", "0", "Fewest vowels a document keeps.") in reference_rows(config)
    assert {"vowels", "opening"} <= set(config.model_json_schema()["properties"])


def test_a_stage_that_needs_another_under_a_config_runs_after_it():
    keeper_by_score = load_config(
        overrides=[
            "input.paths=[x]",
            "quality.scorers=[{name: edu, backend: profanity}]",
            "dedup_fuzzy.keeper=highest_score",
            "dedup_fuzzy.keeper_column=edu_score",
        ]
    )
    default = load_config(overrides=["input.paths=[x]"])

    moved = [stage.name for stage in STAGES.order(keeper_by_score)]
    unmoved = [stage.name for stage in STAGES.order(default)]

    assert unmoved == [stage.name for stage in STAGES.stages[1:] if stage.active(stage.params(default))]
    assert moved.index("quality") == moved.index("dedup_fuzzy") - 1 and moved.index("dedup_exact") < moved.index(
        "quality"
    )
    assert sorted(moved) == sorted(unmoved)


def test_a_stage_off_under_a_config_is_left_out_of_the_run_and_its_models():
    off = load_config(overrides=["input.paths=[x]"])
    on = load_config(overrides=["input.paths=[x]", "dedup_semantic.enabled=true"])

    ran_off = [stage.name for stage in STAGES.order(off)]
    ran_on = [stage.name for stage in STAGES.order(on)]

    assert "dedup_semantic" not in ran_off
    assert ran_on.index("dedup_semantic") == ran_on.index("dedup_fuzzy") + 1
    assert [name for name in ran_on if name != "dedup_semantic"] == ran_off
    assert STAGES.warm_models(on).torch_threads is not None


def test_registry_refuses_two_stages_of_one_name():
    with pytest.raises(ValueError, match="unique"):
        STAGES.with_stage(STAGES["clean"], after="langid")


def run_and_check_plans(cfg) -> dict[str, list[str]]:
    """Every stage driven by its declaration: the refs `plan` gives before it runs have manifests
    under those keys after, and the stage's own is the one it returns. Returns phase -> keys."""
    written: dict[str, list[str]] = {}
    with open_context(cfg, STAGES.warm_models(cfg)) as ctx:
        upstream = None
        for stage in (STAGES["read"], *STAGES.order(cfg)):
            planned = stage.plan(ctx, upstream)
            ref = stage.run(ctx, upstream)
            assert planned[-1].key == ref.key, stage.name
            for phase in planned:
                assert ctx.store.manifest(phase.stage, phase.key) is not None, phase.stage
                written.setdefault(phase.stage, []).append(phase.key)
            upstream = ref
    return written


@pytest.mark.slow  # three whole DAGs, one with the embedding scan
def test_every_stage_and_phase_writes_the_key_it_planned(corpus, tmp_path, dask_cluster):
    grown = tmp_path / "input"
    grown.mkdir()
    *first_files, last = sorted(corpus.iterdir())
    for path in first_files:
        shutil.copy(path, grown / path.name)
    benchmark = tmp_path / "gsm8k.jsonl"
    benchmark.write_text(json.dumps({"id": "gsm8k-0", "question": QUESTION, "answer": "#### 18"}) + "\n")
    base = [
        f"input.paths=[{grown}]",
        f"output={tmp_path / 'out'}",
        f"run.cluster.address={dask_cluster.scheduler_address}",
        f"decontam.benchmarks=[{{name: gsm8k, layout: gsm8k, path: '{benchmark}'}}]",
        "decontam.semantic.enabled=true",
        "decontam.semantic.prefilter=0.3",  # the scan phase runs and writes its key; it embeds (almost) nothing
        "decontam.semantic.multilingual.enabled=false",  # which has no prefilter (test_decontam_stage.py runs it)
        "dedup_semantic.enabled=true",  # off by default: on, so its phases and its index run too
    ]
    with_index = [stage for stage in STAGES if stage.corpus is not None and stage.corpus.index_param]
    indexed = load_config(overrides=[*base, *(f"{s.section}.{s.corpus.index_param}=main" for s in with_index)])

    plain = run_and_check_plans(load_config(overrides=base))
    first_batch = run_and_check_plans(indexed)  # every shard undecided
    shutil.copy(last, grown / last.name)
    second_batch = run_and_check_plans(indexed)  # the earlier shards decided, the new one not

    phases = {phase.name for stage in STAGES for phase in stage.phases if phase.name != stage.name}
    assert all(phases <= set(run) for run in (plain, first_batch, second_batch))
    for stage in with_index:  # no index, the first batch, the second: three keys of the stage
        assert len({plain[stage.name][0], first_batch[stage.name][0], second_batch[stage.name][0]}) == 3, stage.name
