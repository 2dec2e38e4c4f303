"""Forward-pass batch size of the packaged MiniLM on a CPU: CPU seconds and texts/s per size, on the
two kinds of text Winnow embeds (`tasks.models.encoders.CPU_FORWARD_BATCH` is chosen from this).

    .venv/bin/python bench/encoder_batch.py [--threads 1] [--sizes 4 8 16 32 64 128] [--repeats 1]

Texts: the 300 GSM8K problems of the demo benchmark (benchmark items, 46 words on average) and
64-word windows with a 32-word stride over the demo corpus's English documents (what decontamination
embeds per document). One torch thread by default: a Dask worker's share of the cores; ~3 minutes on
2 cores. Each size is timed `--repeats` times and the fastest kept; the embeddings of every size are
compared with those of the largest (the largest absolute difference is printed: the batch changes
speed, not output).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from flows.cli.demo import DEMO_BENCHMARK, write_demo_corpus
from tasks import models
from tasks.decontam import BenchmarkSpec
from tasks.decontam.benchmarks import load_items
from tasks.read import ReadParams
from tasks.read import run as read_file


def demo_windows(limit: int) -> list[str]:
    """64-word windows, stride 32, over the demo corpus's documents, at most `limit`."""
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_corpus(Path(tmp))
        texts = [
            text
            for path in sorted(Path(tmp).iterdir())
            for text in read_file(str(path), path.name, ReadParams())[0].column("text").to_pylist()
        ]
    windows = []
    for text in texts:
        words = text.split()
        windows += [" ".join(words[i : i + 64]) for i in range(0, max(len(words) - 32, 1), 32)]
    return windows[:limit]


def timed(encoder, texts: list[str], batch: int, repeats: int):
    best, emb = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        with torch.inference_mode():
            emb = encoder.encode(texts, batch_size=batch, convert_to_tensor=True, normalize_embeddings=True)
        best = min(best, time.process_time() - start)
    return best, emb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--windows", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder = models.load_encoder(models.PACKAGED_MINILM, "cpu")
    encoder.max_seq_length = 256  # decontam.semantic.max_tokens
    spec = BenchmarkSpec(name="gsm8k", layout="gsm8k", path=str(DEMO_BENCHMARK))
    items = [item.semantic_text for item in load_items(spec)]
    sets = {"GSM8K items": items, "64-word windows": demo_windows(args.windows)}
    timed(encoder, items[:16], 16, 1)  # warm-up
    print(f"packaged MiniLM, {args.threads} torch thread(s), CPU seconds (fastest of {args.repeats})")
    for name, texts in sets.items():
        print(f"\n{name}: {len(texts)} texts, {sum(len(t.split()) for t in texts) / len(texts):.0f} words on average")
        print(f"{'batch':>6} {'CPU s':>7} {'texts/s':>8} {'vs ' + str(max(args.sizes)):>8} {'max |diff|':>11}")
        results = {size: timed(encoder, texts, size, args.repeats) for size in sorted(args.sizes)}
        base_seconds, base_emb = results[max(args.sizes)]
        for size, (seconds, emb) in results.items():
            diff = float((emb - base_emb).abs().max())
            speedup = base_seconds / seconds
            print(f"{size:>6} {seconds:>7.2f} {len(texts) / seconds:>8.1f} {speedup:>7.2f}x {diff:>11.1e}")


if __name__ == "__main__":
    main()
