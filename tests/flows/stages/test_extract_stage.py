"""The extract stage in a run: a record's licence field and a WARC page's licence link reach the
`license` column, and its report section counts them; each document says where it was read."""

from __future__ import annotations

import json
import shutil

from flows.config import load_config
from flows.engine.context import open_context
from flows.stages import STAGES


def test_licences_from_records_and_from_warc_pages_reach_the_column(tmp_path, dask_cluster, shared_data):
    (tmp_path / "input").mkdir()
    records = [
        {"id": "open", "text": "A record that names its licence. " * 5, "license": "CC-BY-SA-4.0"},
        {"id": "plain", "text": "A record that names none. " * 5},
    ]
    (tmp_path / "input/records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.copy(shared_data / "web_raw/raw_formats/whirlwind.warc.gz", tmp_path / "input")
    cfg = load_config(
        overrides=[
            f"input.paths=[{tmp_path / 'input'}]",
            f"output={tmp_path / 'out'}",
            f"run.cluster.address={dask_cluster.scheduler_address}",
        ]
    )

    with open_context(cfg) as ctx:
        read = STAGES["read"].run(ctx, None)
        extract = STAGES["extract"].run(ctx, STAGES["url_filter"].run(ctx, read))
        rows = [
            row
            for shard in extract.shards
            for row in ctx.store.read_view(
                "extract", shard, ["id", "source", "license", "source_file", "source_record", "warc_record_id"]
            ).to_pylist()
        ]
        section = STAGES["extract"].report(ctx, read, extract)

    licences = {row["id"]: row["license"] for row in rows}
    assert licences["open"] == "cc-by-sa-4.0" and licences["plain"] is None
    assert any(row["source"] == "warc:response" for row in rows)  # the WARC page went through extract
    assert section.data["declared"]["cc-by-sa-4.0"] >= 1 and section.data["documents"] == len(rows)
    provenance = {row["id"]: (row["source_file"], row["source_record"], row["warc_record_id"]) for row in rows}
    assert provenance["plain"] == ("records.jsonl", 2, None)
    page = next(row for row in rows if row["source"] == "warc:response")
    assert provenance[page["id"]] == ("whirlwind.warc.gz", 3, f"<{page['id']}>")
