"""Deployments of the `curate` flow: parameterized ad-hoc runs and scheduled re-curation.

`winnow serve` serves both from this process (no work pool needed); `infra/prefect.yaml` declares the
same two for a Prefect work pool. The nightly schedule reruns the same config over an input glob that
grows: cached per-shard keys make the new shards the only map work, and every corpus-wide stage's
persistent index (set below when the config names none) decides them against everything kept before.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from flows.config import CurationConfig
from flows.orchestration.curate import curate
from flows.stages import STAGES
from tasks.errors import ServerError

# 03:00 UTC: after a typical nightly crawl drop, before a working day (ours; any cron works)
NIGHTLY_CRON = "0 3 * * *"
RECURATION_INDEX = "recurate"


def deployments(cfg: CurationConfig, cron: str = NIGHTLY_CRON):
    """`curate/adhoc` (the config as default parameters) and `curate/recurate-nightly` (on `cron`)."""
    nightly = cfg.model_copy(
        update={
            stage.section: with_index(getattr(cfg, stage.section), stage.corpus.index_param)
            for stage in STAGES
            if stage.corpus is not None and stage.corpus.index_param
        }
    )
    return [
        curate.to_deployment(
            name="adhoc",
            parameters={"cfg": cfg.model_dump(mode="json", exclude_computed_fields=True)},
            description="Curate with any parameters: edit the form and run; unchanged stages are cached.",
        ),
        curate.to_deployment(
            name="recurate-nightly",
            cron=cron,
            parameters={"cfg": nightly.model_dump(mode="json", exclude_computed_fields=True)},
            description="Re-curate the growing input glob: only new shards are processed.",
        ),
    ]


def with_index(section: BaseModel, field: str) -> BaseModel:
    """A corpus-wide stage's section with a persistent index: its own, or RECURATION_INDEX."""
    return section.model_copy(update={field: getattr(section, field) or RECURATION_INDEX})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server(port: int, home: str | None = None, timeout_s: float = 120.0) -> Iterator[str]:
    """A `prefect server` on 127.0.0.1:`port`, healthy before this yields its API URL; stopped after.

    `home` (PREFECT_HOME) holds its SQLite database and the server's log (`server.log`); default: the
    user's Prefect home.
    """
    from prefect.settings import PREFECT_HOME

    with socket.socket() as probe:  # else the health check below would be answered by whatever holds the port
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ServerError(f"127.0.0.1:{port} is in use ({exc.strerror}); choose another port (--port)") from None
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **({"PREFECT_HOME": home} if home else {})}
    home_dir = Path(home) if home else Path(PREFECT_HOME.value())
    home_dir.mkdir(parents=True, exist_ok=True)
    log_path = home_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{api}/health", timeout=2).status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise ServerError(
                    f"prefect server on 127.0.0.1:{port} did not become healthy (exit {process.poll()}): "
                    f"{tail[0]}; its log: {log_path}"
                )
            time.sleep(0.5)
        yield api
    finally:
        process.terminate()
        process.wait(timeout=30)
