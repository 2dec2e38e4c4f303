"""The `license` column against hand labels: the labelled HTML pages and the WARC fixtures (#34).

    .venv/bin/python bench/licenses.py [--data ../shared/data] [--labels bench/license_labels.json]

Labels (`bench/license_labels.json`) were made by reading: every page whose markup mentions a licence
at all (a broad keyword scan: creativecommons, rel=license, licen/lizenz/licencia, CC BY, GNU FDL,
publicdomain) was read around each mention and given the licence it declares for its own content, or
none (an image credit, a linked third-party work, a theme credit, "all rights reserved"); pages with
no mention are labelled none. The column is `tasks.licenses.declared_license` of each page's HTML, as
`extract` computes it; WARC responses are read by the `read` stage's own reader.

Printed: exact-id precision and recall of declared licences, the same on the licence family (terms
without version), and every disagreement.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tasks.read  # noqa: E402
from bench.decontam import upper95  # noqa: E402
from tasks.contract import HTML_SOURCE  # noqa: E402
from tasks.licenses import declared_license  # noqa: E402
from tasks.read import ReadParams  # noqa: E402

WARC_FILES = ("dolma_sample-0000.warc.gz", "whirlwind.warc.gz")


def family(license_id: str | None) -> str | None:
    """`cc-by-sa-3.0` -> `cc-by-sa`: the terms, whatever the version."""
    return license_id.rsplit("-", 1)[0] if license_id and license_id[-1].isdigit() else license_id


def pages(data: Path) -> dict[str, str]:
    """Page id -> HTML: the labelled pages, and the HTML responses of the WARC fixtures by record id."""
    out = {}
    with gzip.open(data / "web_raw/html_labeled_pages.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row["id"]] = row["html"]
    for name in WARC_FILES:
        path = data / "web_raw/raw_formats" / name
        docs, _ = tasks.read.run(str(path), name, ReadParams())
        for doc in docs.to_pylist():
            if doc["source"] == HTML_SOURCE:
                out[f"warc:{doc['warc_record_id'].strip('<>')}"] = doc["text"]
    return out


def labels(path: Path) -> dict[str, str | None]:
    raw = json.loads(path.read_text())
    out = {page: entry["license"] for page, entry in raw["pages"].items()}
    out |= {f"warc:{record.strip('<>')}": entry["license"] for record, entry in raw.get("warc", {}).items()}
    return out


def scores(truth: dict[str, str | None], found: dict[str, str | None], key) -> tuple[int, int, int]:
    """(predicted and right, predicted, labelled) over non-null values, compared through `key`."""
    right = sum(found[p] is not None and key(found[p]) == key(truth[p]) for p in truth)
    return right, sum(v is not None for v in found.values()), sum(v is not None for v in truth.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--labels", type=Path, default=ROOT / "bench" / "license_labels.json")
    args = parser.parse_args()
    html = pages(args.data)
    truth = labels(args.labels)
    missing = sorted(set(html) - set(truth))
    if missing:
        sys.exit(f"{len(missing)} pages have no label, e.g. {missing[:3]}")
    found = {page: declared_license(html[page]) for page in truth}
    print(
        f"{len(truth):,} pages ({sum(p.startswith('warc:') for p in truth)} WARC responses); "
        f"{sum(v is not None for v in truth.values())} declare a licence by hand label"
    )
    for name, key in (("exact id", lambda v: v), ("licence family", family)):
        right, predicted, labelled = scores(truth, found, key)
        print(
            f"  {name}: precision {right / max(predicted, 1):.3f} ({right}/{predicted}), "
            f"recall {right / max(labelled, 1):.3f} ({right}/{labelled}); "
            f"false licences {predicted - right} (95% upper {upper95(predicted - right, max(predicted, 1)):.3f})"
        )
    print("disagreements (page: found / label):")
    for page in sorted(truth):
        if found[page] != truth[page]:
            print(f"  {page}: {found[page]} / {truth[page]}")


if __name__ == "__main__":
    main()
