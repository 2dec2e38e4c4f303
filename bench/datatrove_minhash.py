"""datatrove's MinHash dedup (FineWeb: MinhashConfig 14 x 8, word 5-grams) on one JSONL file; prints
the removed documents as JSON: {"removed": {id: keeper id}}.

Run by bench/dedup_accuracy.py as a subprocess from datatrove's own venv (datatrove is not a Winnow
dependency; make /tmp/dtvenv as bench/datatrove_baseline.py's docstring says: datatrove 0.10.1 and
spaCy, whose English tokenizer datatrove's MinHash uses):
    /tmp/dtvenv/bin/python bench/datatrove_minhash.py docs.jsonl WORK_DIR

The four steps of datatrove's examples/minhash_deduplication.py run in-process on one task each
(signatures, buckets, clusters; the filter step is replaced by reading the cluster files). The
documents go in as a list (datatrove's JsonlReader needs orjson), so a document's index in the
`.remove` and `.clusters` files is its line.
"""

from __future__ import annotations

import json
import struct
import sys
from collections import defaultdict
from pathlib import Path

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
)


def unpack(path: Path, fmt: str) -> list[tuple[int, ...]]:
    data = path.read_bytes() if path.exists() else b""
    return list(struct.iter_unpack(f"<{fmt}", data))


def main() -> None:
    docs_path, work = Path(sys.argv[1]), Path(sys.argv[2])
    config = MinhashConfig()  # FineWeb: 5-grams, 14 buckets x 8 hashes, seed 1
    records = [json.loads(line) for line in docs_path.open(encoding="utf-8")]
    ids = [record["id"] for record in records]
    docs = [Document(text=record["text"], id=record["id"]) for record in records]
    steps = [
        ([docs, MinhashDedupSignature(output_folder=str(work / "signatures"), config=config)], 1),
        (
            [
                MinhashDedupBuckets(
                    input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=config
                )
            ],
            config.num_buckets,
        ),
        (
            [
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"),
                    output_folder=str(work / "clusters"),
                    config=config,
                    save_cluster_id=True,
                )
            ],
            1,
        ),
    ]
    for step, (pipeline, tasks) in enumerate(steps):  # a logging dir each: it records which tasks completed
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(work / f"logs-{step}")).run()

    removed = {doc for (doc,) in unpack(work / "clusters" / "000000.remove", "I")}
    members = defaultdict(list)
    for doc, cluster in unpack(work / "clusters" / "000000.clusters", "2I"):
        members[cluster].append(doc)
    keeper_of = {}
    for docs in members.values():
        keepers = [doc for doc in docs if doc not in removed]
        keeper_of |= {doc: ids[keepers[0]] for doc in docs if doc in removed}
    json.dump({"removed": {ids[doc]: keeper_of[doc] for doc in sorted(removed)}}, sys.stdout)


if __name__ == "__main__":
    main()
