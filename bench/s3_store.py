"""The same cold `curate` run on local disk and on a local S3 HTTP API (moto's server mode), side by side.

    .venv/bin/python bench/s3_store.py [N_DOCS] [--shards 4] [--workers 2] [--by-stage]

Builds an N-document corpus from ../shared/data/web_raw (bench/corpus.py, default 1,000) in `--shards`
JSONL shards and runs the default flow cold twice on one LocalCluster (started once, its workers
warmed by an unmeasured run on a corpus of 50 documents, so model loading is in neither figure):
input, store and output (1) in a local folder, (2) in an S3 bucket served by moto in a child process
and reached over HTTP through s3fs, by this process and by the Dask workers. Then reruns the S3 one
unchanged (every stage cached). All runs share one ephemeral Prefect server (prefect_test_harness).

Prints wall seconds per run and, for S3, what crossed the HTTP API, counted by a WSGI wrapper around
moto's app: requests by method, request bodies (bytes uploaded: Content-Length of PUT/POST) and
response bodies (bytes downloaded: GET bodies, listings, errors), the bytes stored in the bucket at
the end, and, with `--by-stage`, the requests per store folder (stage) and top-level output folder,
and per method and object name (kept.parquet, stats.json, ...; LIST for listings).
Locally: the bytes written under the output folder. moto keeps objects in memory and answers from
one Python process, so S3 wall time here measures request count more than bandwidth.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from bench.corpus import build_corpus  # noqa: E402

BUCKET = "winnow-bench"


class CountingApp:
    """WSGI middleware: requests by method and by folder, request and response body bytes."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests, self.folders, self.kinds = Counter(), Counter(), Counter()
            self.bytes_in = self.bytes_out = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "folders": dict(self.folders),
                "kinds": dict(self.kinds),
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
            }

    def __call__(self, environ, start_response):
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        query = environ.get("QUERY_STRING", "")
        prefix = next((q.split("=", 1)[1] for q in query.split("&") if q.startswith("prefix=")), "")
        key = "/".join(parts[1:]) or prefix.replace("%2F", "/")
        segments = key.split("/")
        folder = "/".join(segments[:3]) if segments[1:2] == [".winnow-store"] else "/".join(segments[:2])
        name = "LIST" if "list-type" in query else segments[-1] if "." in segments[-1] else "(other)"
        with self.lock:
            self.requests[environ["REQUEST_METHOD"]] += 1
            self.folders[folder] += 1
            self.kinds[f"{environ['REQUEST_METHOD']} {name}"] += 1
            self.bytes_in += int(environ.get("CONTENT_LENGTH") or 0)
        sent = 0
        for chunk in self.app(environ, start_response):
            sent += len(chunk)
            yield chunk
        with self.lock:
            self.bytes_out += sent


def serve(conn) -> None:
    """Child process: moto's threaded server with the counting wrapper; answers 'stats' and 'reset'."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(server.server_address[:2])
    while (message := conn.recv()) != "stop":
        conn.send(app.snapshot() if message == "stats" else app.reset())
    server.shutdown()


def local_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and "_prefect" not in p.parts)


def run(label: str, inputs: str, output: str, address: str) -> tuple[float, dict]:
    from flows.config import load_config
    from flows.orchestration.curate import curate

    cfg = load_config(overrides=[f"input.paths=[{inputs}]", f"output={output}", f"run.cluster.address={address}"])
    start = time.perf_counter()
    summary = curate(cfg)
    wall = time.perf_counter() - start
    computed = sum(row["shards_computed"] for row in summary["funnel"])
    print(f"{label:<28} wall {wall:7.1f} s   {summary['rows']:,} docs published, {computed} shards computed")
    return wall, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_docs", type=int, nargs="?", default=1_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--by-stage", action="store_true", help="requests per store folder and output folder")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    server = context.Process(target=serve, args=(child_conn,), daemon=True)
    server.start()
    host, port = conn.recv()
    # botocore reads these (s3fs 2026.9.0 / aiobotocore 3.10.0); Dask workers started below inherit them
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )

    import fsspec
    from prefect.testing.utilities import prefect_test_harness

    from flows.parallel.cluster import local_cluster

    fs = fsspec.filesystem("s3", use_listings_cache=False)
    fs.mkdir(BUCKET)
    with (
        tempfile.TemporaryDirectory(prefix="winnow-s3-bench-") as tmp,
        local_cluster(args.workers) as cluster,
        prefect_test_harness(server_startup_timeout=120),
    ):
        tmp = Path(tmp)
        jsonl = build_corpus(args.n_docs, tmp / "input", n_shards=args.shards)
        input_bytes = sum(p.stat().st_size for p in jsonl)
        build_corpus(50, tmp / "warm", n_shards=2)
        print(
            f"corpus: {args.n_docs:,} docs in {args.shards} shards, {input_bytes / 1e6:.1f} MB JSONL; "
            f"{args.workers} workers; the load average at start: {os.getloadavg()[0]:.1f}"
        )
        run("warm-up (not measured)", str(tmp / "warm"), str(tmp / "warm-out"), cluster.scheduler_address)

        local_wall, _ = run("local disk, cold", str(tmp / "input"), str(tmp / "out"), cluster.scheduler_address)
        print(f"{'':<28} wrote {local_bytes(tmp / 'out') / 1e6:.1f} MB under the output (store + dataset + reports)")

        fs.put([str(p) for p in jsonl], f"{BUCKET}/input/")
        conn.send("reset")
        conn.recv()
        walls = {}
        for label in ("s3 (moto), cold", "s3 (moto), unchanged rerun"):
            wall, _ = run(label, f"s3://{BUCKET}/input", f"s3://{BUCKET}/out", cluster.scheduler_address)
            conn.send("stats")
            stats = conn.recv()
            conn.send("reset")
            conn.recv()
            walls[label] = wall
            requests = ", ".join(f"{m} {n:,}" for m, n in sorted(stats["requests"].items(), key=lambda kv: -kv[1]))
            print(
                f"{'':<28} {sum(stats['requests'].values()):,} requests ({requests}); "
                f"uploaded {stats['bytes_in'] / 1e6:.1f} MB, downloaded {stats['bytes_out'] / 1e6:.1f} MB"
            )
            if args.by_stage:
                for folder, n in sorted(stats["folders"].items(), key=lambda kv: -kv[1])[:20]:
                    print(f"{'':<32}{n:>7,}  {folder}")
                print(f"{'':<28} by method and object name (LIST: a listing):")
                for kind, n in sorted(stats["kinds"].items(), key=lambda kv: -kv[1])[:12]:
                    print(f"{'':<32}{n:>7,}  {kind}")
        stored = sum(info["size"] for info in fs.find(f"{BUCKET}/out", detail=True).values())
        print(f"bucket holds {stored / 1e6:.1f} MB under out/ (store + dataset + reports)")
        print(f"s3 cold / local cold wall: {walls['s3 (moto), cold'] / local_wall:.2f}x")
    conn.send("stop")
    server.join(timeout=10)


if __name__ == "__main__":
    main()
