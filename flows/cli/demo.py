"""A small, deterministic, multilingual demo corpus with known defects, for `winnow demo` and tests.

Every sentence in `demo_corpus.json` is the project's own writing. Documents are composed from
per-language sentence templates and vocabularies (about 65% English; German, French, Spanish; a few
Chinese and Russian; a couple in Esperanto, a language the default config does not keep), then a
seeded share of them gets one defect each, so every stage has work: boilerplate lines (C4 line
removal), repetition spam (Gopher repetition), short junk (Gopher word count), `{` code and lorem
ipsum (C4), exact duplicates (dedup_exact), near duplicates, one sentence added (dedup_fuzzy),
e-mail and IP addresses (PII; the private 192.168.0.12 must be kept), mojibake (Unicode repair),
control characters and odd whitespace (normalize), and two GSM8K test problems from the demo's benchmark
sample (decontam): one verbatim with its worked answer, one retold in the project's own words. Four
malformed records (broken JSON, invalid UTF-8, `"text": null`, no text field) exercise the read stage's
quarantine; they come on top of the `n_docs` documents. Each record carries `defect` (null for a good
document) and `crawl_date`, which `read` keeps in `meta`, so a funnel can be checked against what was
injected.

Output is byte-identical for the same seed: one `random.Random(seed)`, gzip with mtime 0, zstd.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import zstandard

from tasks.decontam.benchmarks import CALCULATOR_ANNOTATION

SHARDS = ("demo-000.jsonl", "demo-001.jsonl.gz", "demo-002.jsonl", "demo-003.jsonl.zst")

CORPUS_TEXT = Path(__file__).with_name("demo_corpus.json")  # package data (pyproject.toml)
# 300 GSM8K test problems (MIT; flows/demo_benchmark/LICENSE): what the demo decontaminates against. Its
# path is a `decontam.benchmarks` parameter of the demo's runs, so it stays where earlier demos found it.
DEMO_BENCHMARK = Path(__file__).parents[1] / "demo_benchmark" / "gsm8k_test_sample.jsonl"


def load_corpus_text() -> dict:
    """The demo's prose from `demo_corpus.json`: sentence templates, their vocabularies, defect texts.

    Templates get `{place} {name} {day} {n} {food} {plant}` filled per sentence. JSON lists come back
    as tuples. The seeded choices walk the file in order, so any edit changes every seed's corpus.
    """

    def frozen(value):
        if isinstance(value, dict):
            return {key: frozen(item) for key, item in value.items()}
        return tuple(map(frozen, value)) if isinstance(value, list) else value

    return frozen(json.loads(CORPUS_TEXT.read_text(encoding="utf-8")))


_TEXT = load_corpus_text()
EN_TOPICS: dict[str, tuple[str, ...]] = _TEXT["en_topics"]
EN_GENERIC: tuple[str, ...] = _TEXT["en_generic"]
EN_OPENERS: tuple[str, ...] = _TEXT["en_openers"]
OTHER_LANGS: dict[str, tuple[str, ...]] = _TEXT["other_langs"]
VOCAB: dict[str, dict[str, tuple[str, ...]]] = _TEXT["vocab"]

BENCHMARK_PLANTS: dict[str, dict[str, str]] = _TEXT["benchmark_plants"]  # defect -> item, lead[, text]

LANG_SHARES = {"de": 0.09, "fr": 0.09, "es": 0.09, "zh": 0.03, "ru": 0.03}  # + 2 "eo", rest "en"

# ---- defects ------------------------------------------------------------------------------------
BOILERPLATE: tuple[str, ...] = _TEXT["boilerplate"]
SHORT_JUNK: tuple[str, ...] = _TEXT["short_junk"]
CODE: str = _TEXT["code"]
LOREM: str = _TEXT["lorem"]
PUBLIC_IPS = ("93.184.216.34", "8.8.4.4", "1.1.1.1")
PRIVATE_IP = "192.168.0.12"
WEIRD_SPACE = ("\u00a0", "  ", "\t", "\u200b ", "\u3000", " \x07", "\x0b", "\u2009")
# defect -> share of the English documents that get it (each document gets at most one)
EN_DEFECTS = {
    "boilerplate": 0.10,
    "repetition": 0.04,
    "short": 0.03,
    "code": 0.02,
    "lorem": 0.02,
    "pii": 0.04,
    "control_chars": 0.05,
}
MOJIBAKE_SHARE = 0.15  # of the de/fr/es documents
DUPLICATE_SHARE = 0.05  # of all documents: copies of a good document under a new id and url
NEAR_DUPLICATE_SHARE = 0.03  # of all documents: a good English document plus one sentence (~0.9 Jaccard)


def _fill(rng: random.Random, template: str, lang: str) -> str:
    slots = {key: rng.choice(values) for key, values in VOCAB[lang].items()}
    return template.format(n=rng.randint(2, 40), **slots)


def _compose(rng: random.Random, lang: str, topic: str) -> str:
    """Three to five paragraphs of two to four distinct sentences, one paragraph per line."""
    if lang != "en":
        pool = list(OTHER_LANGS[lang])
        rng.shuffle(pool)
        sizes = [len(pool) // 3] * 3 if lang in ("zh", "ru", "eo") else [rng.randint(2, 3) for _ in range(3)]
    else:
        pool = list(EN_TOPICS[topic] + EN_GENERIC)
        rng.shuffle(pool)
        sizes = [rng.randint(2, 3) for _ in range(rng.randint(3, 4))]
    paragraphs, start = [], 0
    joiner = "" if lang == "zh" else " "
    for size in sizes:
        sentences = []
        for template in pool[start : start + size]:
            sentence = _fill(rng, template, lang)
            if lang == "en" and template[0] != "{" and template not in EN_GENERIC and rng.random() < 0.4:
                sentence = _fill(rng, rng.choice(EN_OPENERS), lang) + sentence[0].lower() + sentence[1:]
            sentences.append(sentence)
        paragraphs.append(joiner.join(sentences))
        start += size
    return "\n\n".join(paragraphs)


def benchmark_problem(item_id: str) -> dict:
    """One problem of the demo's benchmark sample."""
    for line in DEMO_BENCHMARK.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] == item_id:
            return record
    raise KeyError(f"{item_id} is not in {DEMO_BENCHMARK}")


def _plant(defect: str) -> str:
    """A benchmark problem as a page would show it: verbatim with its answer (calculator notes such as
    `<<3*4=12>>` removed, as copies on the web have them), or retold."""
    plant = BENCHMARK_PLANTS[defect]
    if "text" in plant:
        return f"{plant['lead']} {plant['text']}"
    problem = benchmark_problem(plant["item"])
    answer = CALCULATOR_ANNOTATION.sub("", problem["answer"])
    return f"{plant['lead']}\n{problem['question']}\n{answer}"


def _inject(rng: random.Random, defect: str, text: str) -> str:
    paragraphs = text.split("\n\n")
    at = rng.randint(1, len(paragraphs))
    if defect in BENCHMARK_PLANTS:
        return "\n\n".join(paragraphs[:at] + [_plant(defect)] + paragraphs[at:])
    if defect == "boilerplate":
        lines = rng.sample(BOILERPLATE, rng.randint(1, 3))
        return "\n".join(lines[:1] + ["\n\n".join(paragraphs)] + lines[1:])
    if defect == "repetition":
        if rng.random() < 0.5:
            return "\n".join([paragraphs[0]] * rng.randint(15, 40))
        return "\n\n".join(paragraphs + [paragraphs[-1]] * rng.randint(6, 12))
    if defect == "short":
        return rng.choice(SHORT_JUNK)
    if defect in ("code", "lorem", "pii"):
        name = rng.choice(VOCAB["en"]["name"]).lower()
        extra = {
            "code": CODE,
            "lorem": LOREM,
            "pii": f"For questions, write to {name}.{rng.randint(1, 99)}@example.org or use the mirror "
            f"at {rng.choice(PUBLIC_IPS)}; the office printer is at {PRIVATE_IP}.",
        }[defect]
        return "\n\n".join(paragraphs[:at] + [extra] + paragraphs[at:])
    if defect == "mojibake":  # UTF-8 bytes read as Windows-1252: "café" -> "cafÃ©"
        raw = text.encode("utf-8")
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:  # a byte cp1252 leaves undefined: latin-1 maps every byte
            return raw.decode("latin-1")
    assert defect == "control_chars", defect
    words = text.split(" ")
    for i in rng.sample(range(1, len(words)), min(6, len(words) - 1)):
        words[i] = rng.choice(WEIRD_SPACE) + words[i]
    return " ".join(words).replace("\n\n", "  \r\n\r\n", 1) + "\x00"


def _record(rng: random.Random, i: int, lang: str, topic: str, text: str, defect: str | None) -> dict:
    return {
        "id": f"demo-{i:05d}",
        "text": text,
        "url": f"https://{topic}.example.com/{lang}/{i:05d}.html",
        "source": f"demo/{topic}",
        "crawl_date": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
        "defect": defect,
    }


def _documents(rng: random.Random, n_docs: int) -> list[dict]:
    n_dup, n_near = max(1, round(DUPLICATE_SHARE * n_docs)), max(1, round(NEAR_DUPLICATE_SHARE * n_docs))
    langs = [lang for lang, share in LANG_SHARES.items() for _ in range(max(1, round(share * n_docs)))]
    langs += ["eo", "eo"]
    langs += ["en"] * (n_docs - n_dup - n_near - len(langs))
    if langs.count("en") < 2 * len(EN_DEFECTS) + len(BENCHMARK_PLANTS):
        raise ValueError(f"n_docs={n_docs} is too small for every defect kind; use at least 100")
    docs = []
    for i, lang in enumerate(langs):
        topic = rng.choice(list(EN_TOPICS))
        docs.append(_record(rng, i, lang, topic, _compose(rng, lang, topic), None))
    english = [d for d in docs if "/en/" in d["url"]]
    rng.shuffle(english)
    start = 0
    for defect, share in EN_DEFECTS.items():
        for doc in english[start : start + max(1, round(share * len(english)))]:
            doc["text"], doc["defect"] = _inject(rng, defect, doc["text"]), defect
            start += 1
    for defect, doc in zip(BENCHMARK_PLANTS, english[start:]):
        doc["text"], doc["defect"] = _inject(rng, defect, doc["text"]), defect
    accented = [d for d in docs if any(f"/{lang}/" in d["url"] for lang in ("de", "fr", "es"))]
    for doc in rng.sample(accented, max(1, round(MOJIBAKE_SHARE * len(accented)))):
        doc["text"], doc["defect"] = _inject(rng, "mojibake", doc["text"]), "mojibake"
    good = [d for d in docs if d["defect"] is None]
    near = [d for d in good if "/en/" in d["url"]]
    copies = [(d, "exact_duplicate") for d in rng.sample(good, n_dup)]
    copies += [(d, "near_duplicate") for d in rng.sample(near, n_near)]
    for k, (original, defect) in enumerate(copies):
        text = original["text"]
        if defect == "near_duplicate":
            text += " " + _fill(rng, rng.choice(EN_GENERIC), "en")
        copy = _record(rng, len(langs) + k, "", "", text, defect)
        copy["url"], copy["source"] = original["url"].replace(".html", f"-copy{k}.html"), original["source"]
        docs.append(copy)
    rng.shuffle(docs)
    return docs


def write_demo_corpus(directory: Path, seed: int = 20261123, n_docs: int = 600) -> list[Path]:
    """Write the demo corpus as four JSONL shards (plain, gzip, plain, zstd) and return their paths.

    Args:
        directory: where the shards go (created if missing; same-named files are overwritten
            unless they already hold the same bytes, so a rerun of the demo is fully cached).
        seed: the one source of randomness; the same seed gives byte-identical files.
        n_docs: well-formed documents (at least 100); four malformed records come on top.

    Returns:
        The shard paths, in `SHARDS` order.

    Example:
        >>> paths = write_demo_corpus(Path("demo"))  # doctest: +SKIP
    """
    rng = random.Random(seed)
    lines = [[] for _ in SHARDS]
    for k, doc in enumerate(_documents(rng, n_docs)):
        lines[k % len(SHARDS)].append(json.dumps(doc, ensure_ascii=False).encode("utf-8") + b"\n")
    malformed = (
        b'{"id": "demo-broken", "text": "This record stops in the middle of a str\n',
        b'{"id": "demo-null-text", "text": null, "url": "https://news.example.com/en/null.html"}\n',
        b'{"id": "demo-bad-utf8", "text": "Caf\xe9 au lait \xff\xfe is not UTF-8."}\n',
        b'{"id": "demo-no-text", "body": "The text sits under the wrong key."}\n',
    )
    for shard, record in zip(lines, malformed):
        shard.insert(rng.randint(0, len(shard)), record)
    return [_write_unless_same(directory / name, b"".join(shard)) for name, shard in zip(SHARDS, lines)]


def write_training_pages(directory: Path, seed: int = 20261201, n_docs: int = 300) -> tuple[Path, Path]:
    """Examples for the demo's DCLM-style quality classifier, in the corpus's language mix: a reference
    set of good documents, and a raw crawl sample whose every page has one of the corpus's defects
    (boilerplate, repetition, short junk, code, lorem ipsum, PII, control characters, mojibake).
    From another seed than the corpus, so the corpus is scored, not memorized. Byte-identical for
    the same seed; returns the two JSONL files (reference.jsonl, raw.jsonl)."""
    rng = random.Random(seed)
    langs = [lang for lang, share in LANG_SHARES.items() for _ in range(max(1, round(share * n_docs)))]
    langs += ["en"] * (n_docs - len(langs))
    defects = [*EN_DEFECTS, "mojibake"]
    sets: dict[str, list[bytes]] = {"reference": [], "raw": []}
    for name, lines in sets.items():
        for i, lang in enumerate(langs):
            topic = rng.choice(list(EN_TOPICS))
            text, defect = _compose(rng, lang, topic), None
            if name == "raw":
                defect = rng.choice(defects if lang in ("de", "fr", "es") else defects[:-1])
                text = _inject(rng, defect, text)
            record = _record(rng, i, lang, topic, text, defect)
            record["id"] = f"{name}-{i:05d}"
            lines.append(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    reference, raw = (_write_unless_same(directory / f"{name}.jsonl", b"".join(lines)) for name, lines in sets.items())
    return reference, raw


def _write_unless_same(path: Path, data: bytes) -> Path:
    """Write `data` (compressed as the name says) unless the file holds it: an unchanged file keeps
    its mtime, so reruns hit the cache."""
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=10).compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)
    return path
