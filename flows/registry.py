"""The stage registry: every stage of the `curate` flow, declared once, in flow order.

A stage is its `tasks/` module, its params model and one entry here. The flow order, the Prefect
tasks (flows/curate.py), key planning (flows/engine.py), the config tree and its README table
(flows/config.py), the report sections and the "why" of each funnel row all derive from this tuple.
"""

from __future__ import annotations

import tasks.clean
import tasks.decontam
import tasks.dedup_exact
import tasks.dedup_fuzzy
import tasks.extract
import tasks.langid
import tasks.normalize
import tasks.quality
import tasks.read
import tasks.select
import tasks.toxicity
import tasks.url_filter
from flows import decontam, dedup, sections
from flows.engine import Clusters, CorpusSteps, Phase, Registry, Stage
from flows.options import InputConfig
from tasks import models


def signature_args(ctx, params, upstream):
    """A signature phase numbers rows by the shard's name (`tasks.clusters.position`)."""
    return lambda i: (upstream.shards[i].name,)


def scores_keeper(cfg) -> tuple[str, ...]:
    """Quality scoring runs after fuzzy dedup, so no model scores a duplicate, unless the fuzzy
    keeper is chosen by a quality scorer's column: then quality runs first."""
    fuzzy = cfg.dedup_fuzzy
    keeper_column = fuzzy.keeper_column if fuzzy.keeper == "highest_score" else None
    return ("quality",) if keeper_column in {spec.column for spec in cfg.quality.scorers} else ()


def runs_torch_scorers(params) -> bool:
    return any(spec.uses_torch for spec in params.scorers)


STAGES = Registry((
    Stage("read", tasks.read, InputConfig, section="input", params_of=InputConfig.read_params),
    Stage("url_filter", tasks.url_filter, tasks.url_filter.UrlFilterParams),
    Stage("extract", tasks.extract, tasks.extract.ExtractParams),
    Stage("normalize", tasks.normalize, tasks.normalize.NormalizeParams),
    Stage(
        "langid", tasks.langid, tasks.langid.LangidParams,
        fasttext_models=lambda params: (params.model_path or models.default_lid_path(),),
    ),
    Stage("clean", tasks.clean, tasks.clean.CleanParams),
    Stage(
        "dedup_exact", tasks.dedup_exact, tasks.dedup_exact.DedupExactParams,
        phases=(Phase("dedup_exact.signatures", tasks.dedup_exact.signatures, shard_args=signature_args),),
        corpus=CorpusSteps(
            dedup.build_exact_clusters,
            Clusters("text_hash", tasks.dedup_exact.CLUSTER_SCHEMA, tasks.dedup_exact.apply),
            index_file="hashes",
        ),
    ),
    Stage(
        "dedup_fuzzy", tasks.dedup_fuzzy, tasks.dedup_fuzzy.DedupFuzzyParams,
        phases=(
            Phase("dedup_fuzzy.signatures", tasks.dedup_fuzzy.signatures, shard_args=signature_args),
            Phase("dedup_fuzzy.bands", tasks.dedup_fuzzy.band_rows),
        ),
        corpus=CorpusSteps(
            dedup.build_fuzzy_clusters,
            Clusters("position", tasks.dedup_fuzzy.CLUSTER_SCHEMA, tasks.dedup_fuzzy.apply, mark_columns=("position",)),
            index_file="docs",
        ),
        needs=scores_keeper,
        report=sections.fuzzy_quality,
    ),
    Stage("quality", tasks.quality, tasks.quality.QualityParams, uses_torch=runs_torch_scorers),
    Stage("toxicity", tasks.toxicity, tasks.toxicity.ToxicityParams, uses_torch=runs_torch_scorers),
    Stage(
        "decontam", tasks.decontam, tasks.decontam.DecontamParams,
        phases=(
            # embedding windows, keyed without the threshold and the action: a new one re-embeds nothing
            Phase(
                "decontam.scan", tasks.decontam.scan, params=lambda params: params.scan_params(),
                when=decontam.scans_windows, shard_args=decontam.index_args,
            ),
            Phase("decontam", tasks.decontam.run, shard_args=decontam.index_args),
        ),
        uses_torch=decontam.scans_windows,
        report=decontam.report_section,
    ),
    Stage("select", tasks.select, tasks.select.SelectParams, report=sections.score_distributions),
))
