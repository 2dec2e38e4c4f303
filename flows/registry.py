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


TEXT = ("text",)


def texts(params) -> tuple[str, ...]:
    return TEXT


def fuzzy_signature_columns(params) -> tuple[str, ...]:
    return TEXT + ((params.keeper_column,) if params.keeper == "highest_score" else ())


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
    Stage(
        "read", tasks.read, InputConfig, section="input", params_of=InputConfig.read_params,
        phases=(Phase("read", tasks.read.read_parts),),  # bounded parts, streamed (flows/store.py read_input)
    ),
    Stage("url_filter", tasks.url_filter, tasks.url_filter.UrlFilterParams, reads=lambda params: ("url",)),
    Stage("extract", tasks.extract, tasks.extract.ExtractParams, reads=lambda params: ("text", "source")),
    Stage("normalize", tasks.normalize, tasks.normalize.NormalizeParams, reads=texts),
    Stage(
        "langid", tasks.langid, tasks.langid.LangidParams, reads=texts,
        fasttext_models=lambda params: (params.model_path or models.default_lid_path(),),
    ),
    Stage(
        "clean", tasks.clean, tasks.clean.CleanParams,
        phases=(
            # transforms and measures, keyed without the thresholds: a new threshold measures nothing
            Phase("clean.signals", tasks.clean.measure, params=tasks.clean.CleanParams.signal_params,
                  reads=lambda params: ("text", "lang")),
            # the decision, keyed by what it kept and dropped: a shard whose verdicts a new threshold
            # leaves as they were keeps its key, and the stages after clean reuse their work on it
            Phase("clean", tasks.clean.decide, reads=lambda params: ("lang", *tasks.clean.SIGNAL_COLUMNS),
                  key_params=tasks.clean.CleanParams.signal_params),
        ),
        report=sections.clean_languages,
    ),
    Stage(
        "dedup_exact", tasks.dedup_exact, tasks.dedup_exact.DedupExactParams,
        phases=(Phase("dedup_exact.signatures", tasks.dedup_exact.signatures, shard_args=signature_args, reads=texts),),
        corpus=CorpusSteps(
            dedup.build_exact_clusters,
            Clusters("text_hash", tasks.dedup_exact.CLUSTER_SCHEMA, tasks.dedup_exact.apply),
            index_file="hashes",
        ),
    ),
    Stage(
        "dedup_fuzzy", tasks.dedup_fuzzy, tasks.dedup_fuzzy.DedupFuzzyParams,
        phases=(
            Phase(
                "dedup_fuzzy.signatures", tasks.dedup_fuzzy.signatures, shard_args=signature_args,
                reads=fuzzy_signature_columns,
            ),
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
    Stage("quality", tasks.quality, tasks.quality.QualityParams, reads=texts, uses_torch=runs_torch_scorers),
    Stage("toxicity", tasks.toxicity, tasks.toxicity.ToxicityParams, reads=texts, uses_torch=runs_torch_scorers),
    Stage(
        "decontam", tasks.decontam, tasks.decontam.DecontamParams,
        phases=(
            # embedding windows, keyed without the threshold and the action: a new one re-embeds nothing
            Phase(
                "decontam.scan", tasks.decontam.scan, params=lambda params: params.scan_params(),
                when=decontam.scans_windows, shard_args=decontam.index_args, reads=texts,
            ),
            Phase(
                "decontam", tasks.decontam.run, shard_args=decontam.index_args,
                reads=lambda params: TEXT + ((tasks.decontam.WINDOWS.name,) if decontam.scans_windows(params) else ()),
            ),
        ),
        uses_torch=decontam.scans_windows,
        report=decontam.report_section,
    ),
    Stage(
        "select", tasks.select, tasks.select.SelectParams, report=sections.score_distributions,
        reads=lambda params: tuple(threshold.column for threshold in params.thresholds),  # never the text
    ),
))
