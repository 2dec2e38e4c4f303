"""Decontamination: adapters, the n-gram index, actions and the semantic stage on small planted corpora."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import tasks.decontam
from tasks.decontam import (
    COLUMNS,
    REASONS,
    DecontamParams,
    NgramParams,
    SemanticParams,
    build_index,
    detect,
    excise,
    index_tables,
    run,
    scan,
)
from tasks.decontam.benchmarks import BenchmarkSpec, load_items
from tasks.decontam.calibrate import DecontamCalibration, calibrate, threshold, to_yaml
from tasks.decontam.ngrams import words
from tasks.decontam.report import contamination_report
from tasks.decontam.semantic import (
    MultilingualParams,
    item_lexicon,
    lexical_candidates,
    line_segments,
    segment_windows,
    weighted_windows,
    window_ranges,
)
from tasks.errors import InputError

QUESTION = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
    "for her friends every day with four."
)
FILLER = "The weather in the valley stayed mild all week and the market opened early on Saturday. "


def write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.fixture
def gsm8k(tmp_path) -> BenchmarkSpec:
    path = write_jsonl(
        tmp_path / "gsm8k.jsonl",
        [
            {"id": "gsm8k-0", "question": QUESTION, "answer": "She has 16 - 3 - 4 = <<16-3-4=9>>9 eggs left.\n#### 9"},
            {
                "id": "gsm8k-1",
                "question": "How many legs do three spiders and two cats have together if a spider has eight?",
                "answer": "3 * 8 + 2 * 4 = <<3*8+2*4=32>>32\n#### 32",
            },
        ],
    )
    return BenchmarkSpec(name="gsm8k", layout="gsm8k", path=path)


def params(*specs: BenchmarkSpec, **kwargs) -> DecontamParams:
    """n-grams only unless a test asks for the semantic stage (on by default where MiniLM is installed), and
    English only unless a test asks for the multilingual path."""
    semantic = kwargs.pop("semantic", SemanticParams(enabled=False))
    if "multilingual" not in semantic.model_fields_set:
        semantic = semantic.model_copy(update={"multilingual": MultilingualParams(enabled=False)})
    return DecontamParams(benchmarks=specs, semantic=semantic, **kwargs)


def detected(texts: list[str], p: DecontamParams) -> list[dict]:
    index = build_index(p.benchmarks, p.ngram, p.semantic)
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    return detect(table, p, index).drop_columns(["text"]).to_pylist()


def saved_index(tmp_path: Path, p: DecontamParams) -> str:
    directory = tmp_path / "index"
    directory.mkdir()
    for name, table in index_tables(build_index(p.benchmarks, p.ngram, p.semantic)).items():
        pq.write_table(table, directory / name)
    return str(directory)


def test_gsm8k_adapter_indexes_question_and_answer_without_calculator_annotations(gsm8k):
    item = load_items(gsm8k)[0]

    assert item.item_id == "gsm8k-0"
    assert item.segments == (QUESTION, "She has 16 - 3 - 4 = 9 eggs left.\n#### 9")
    assert item.semantic_text == QUESTION


def test_humaneval_adapter_indexes_prompt_and_solution_not_tests(tmp_path):
    record = {
        "task_id": "HumanEval/0",
        "prompt": "def add(a, b):\n",
        "canonical_solution": "    return a + b\n",
        "test": "assert add(1, 2) == 3",
        "entry_point": "add",
    }
    spec = BenchmarkSpec(name="humaneval", layout="humaneval", path=write_jsonl(tmp_path / "he.jsonl", [record]))

    item = load_items(spec)[0]

    assert item.item_id == "HumanEval/0"
    assert item.segments == ("def add(a, b):\n", "    return a + b\n")
    assert item.semantic_text == "def add(a, b):\n    return a + b\n"


def test_mmlu_adapter_adds_the_choices_to_the_question(tmp_path):
    record = {"id": "mmlu-x-0", "question": "What is 2 + 2?", "choices": ["3", "4", "5", "22"], "answer": "B"}
    spec = BenchmarkSpec(name="mmlu", layout="mmlu", path=write_jsonl(tmp_path / "mmlu.jsonl", [record]))

    item = load_items(spec)[0]

    assert item.segments == (
        "What is 2 + 2?",
        "What is 2 + 2?\n3\n4\n5\n22",
        "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22",
    )


def test_truthfulqa_adapter_uses_question_and_best_answer_only(tmp_path):
    record = {
        "id": "tqa-0",
        "question": "What happens if you eat watermelon seeds?",
        "best_answer": "They pass through you",
        "correct_answers": ["Nothing happens"],
        "incorrect_answers": ["You die"],
    }
    spec = BenchmarkSpec(name="truthfulqa", layout="truthfulqa", path=write_jsonl(tmp_path / "tqa.jsonl", [record]))

    assert load_items(spec)[0].segments == (
        "What happens if you eat watermelon seeds?",
        "They pass through you",
        "What happens if you eat watermelon seeds?\nThey pass through you",
    )


def test_fields_layout_reads_parquet_and_numbers_items_without_an_id(tmp_path):
    pq.write_table(pa.table({"problem": ["a b c"], "solution": ["d e f"]}), tmp_path / "b.parquet")
    spec = BenchmarkSpec(
        name="custom", layout="fields", fields=("problem", "solution"), path=str(tmp_path / "b.parquet")
    )

    assert load_items(spec)[0][1:3] == ("custom-0", ("a b c", "d e f"))


def test_a_record_missing_a_layout_field_is_an_input_error(tmp_path):
    spec = BenchmarkSpec(name="gsm8k", layout="gsm8k", path=write_jsonl(tmp_path / "bad.jsonl", [{"question": "q"}]))

    with pytest.raises(InputError, match="no field 'answer'"):
        load_items(spec)


def test_adapters_read_the_shipped_benchmark_files(shared_data):
    counts = {
        "gsm8k_test.jsonl": ("gsm8k", 1319),
        "humaneval_test.jsonl": ("humaneval", 164),
        "mmlu_test.jsonl": ("mmlu", 14042),
        "truthfulqa.jsonl": ("truthfulqa", 817),
    }
    for file, (layout, n) in counts.items():
        spec = BenchmarkSpec(name=layout, layout=layout, path=str(shared_data / "benchmarks" / file))

        items = load_items(spec)

        assert len(items) == n and len({i.item_id for i in items}) == n, file
        assert all(i.segments[0].strip() for i in items), file


def test_verbatim_item_inside_a_page_is_found_with_its_offsets(gsm8k):
    page = FILLER * 5 + QUESTION + " " + FILLER * 5

    row = detected([page], params(gsm8k))[0]

    assert row["contam_benchmark"] == "gsm8k" and row["contam_items"] == ["gsm8k-0"]
    assert row["n_contam_ngrams"] == len(words(QUESTION)) - 13 + 1
    [span] = row["contam_spans"]
    assert page[span["start"] : span["end"]] == QUESTION.rstrip(".") and span["method"] == "ngram"


def test_twelve_words_of_an_item_are_a_near_miss_and_thirteen_a_hit(gsm8k):
    item_words = words(QUESTION)  # "Janet’s" is two words: janet, s

    miss, hit = detected(
        [FILLER + " ".join(item_words[:12]) + " " + FILLER, FILLER + " ".join(item_words[:13]) + " " + FILLER],
        params(gsm8k),
    )

    assert miss["contam_benchmark"] is None and miss["n_contam_ngrams"] == 0
    assert hit["contam_items"] == ["gsm8k-0"] and hit["n_contam_ngrams"] == 1


def test_matching_ignores_case_punctuation_and_unicode_forms(gsm8k):
    mangled = "JANET'S   DUCKS lay １６ eggs -- per day; she eats THREE for breakfast, every morning!"

    row = detected([mangled], params(gsm8k))[0]

    assert row["contam_items"] == ["gsm8k-0"]


def test_short_items_are_one_ngram_when_long_enough(tmp_path):
    records = [
        {"id": "long", "question": "Which planet in our solar system has the most moons?", "best_answer": "Saturn"},
        {"id": "short", "question": "Why is the sky blue?", "best_answer": "Rayleigh scattering"},
    ]
    spec = BenchmarkSpec(name="tqa", layout="truthfulqa", path=write_jsonl(tmp_path / "t.jsonl", records))
    texts = [
        "I wondered which planet in our solar system has the most moons today.",
        "I wondered which planet in our solar system has the most.",
        "Why is the sky blue? Nobody knows.",
    ]

    whole, partial, too_short = detected(texts, params(spec))

    assert whole["contam_items"] == ["long"] and whole["contam_overlap"] == 1.0
    assert partial["contam_items"] == [] and too_short["contam_items"] == []


def test_ngrams_shared_by_many_items_are_template_text(tmp_path):
    stem = "Which of the following statements about the topic below is true according to the text"
    records = [{"id": f"m{i}", "question": f"{stem} number {i}?", "choices": ["a", "b", "c", "d"]} for i in range(4)]
    spec = BenchmarkSpec(name="mmlu", layout="mmlu", path=write_jsonl(tmp_path / "m.jsonl", records))

    strict, loose = (
        detected([stem + " indeed."], params(spec, ngram=NgramParams(max_items_per_ngram=k)))[0] for k in (3, 4)
    )

    assert strict["contam_items"] == [] and loose["contam_items"] == ["m0", "m1", "m2", "m3"]


def test_excise_cuts_each_span_with_its_margin_and_drops_short_pieces():
    text = "a" * 300 + "X" * 20 + "b" * 250 + "Y" * 10 + "c" * 100
    p = DecontamParams(margin_chars=50, min_piece_chars=100)

    pieces, cut = excise(text, [(300, 320), (570, 580)], p)

    assert pieces == ["a" * 250, "b" * 150]
    assert cut == len(text) - 400


def test_excise_action_rewrites_the_text_and_counts_what_it_cut(gsm8k, tmp_path):
    p = params(gsm8k, margin_chars=10, min_piece_chars=5)
    page = FILLER * 3 + QUESTION + " " + FILLER * 3

    out = run(pa.table({"id": ["d0"], "text": [page]}), p, saved_index(tmp_path, p))

    [text] = out.kept.column("text").to_pylist()
    assert "ducks" not in text and text.startswith(FILLER[:50]) and text.endswith(FILLER.strip()[-50:])
    assert out.kept.column("n_contam_chars_cut")[0].as_py() == len(page) - len(text) + 1  # pieces joined by a newline


def test_excise_rejects_documents_cut_into_too_many_pieces(gsm8k, tmp_path):
    p = params(gsm8k, margin_chars=0, min_piece_chars=1, max_pieces=2)
    page = (FILLER + QUESTION + " ") * 3 + FILLER

    out = run(pa.table({"id": ["d0"], "text": [page]}), p, saved_index(tmp_path, p))

    assert out.rejected.column("reason").to_pylist() == ["decontam:n_pieces"]
    assert out.rejected.column("text").to_pylist() == [page]


def test_drop_and_flag_actions(gsm8k, tmp_path):
    table = pa.table({"id": ["dirty", "clean"], "text": [FILLER + QUESTION, FILLER]})

    index = saved_index(tmp_path, params(gsm8k))

    dropped = run(table, params(gsm8k, action="drop"), index)
    flagged = run(table, params(gsm8k, action="flag"), index)

    assert dropped.rejected.column("reason").to_pylist() == ["decontam:ngram_overlap"]
    assert dropped.kept.column("id").to_pylist() == ["clean"]
    assert flagged.kept.column("contam_benchmark").to_pylist() == ["gsm8k", None] and flagged.rejected.num_rows == 0


def test_reason_codes_are_unique_and_well_formed():
    assert len(set(REASONS)) == len(REASONS)
    assert all(re.fullmatch(r"[a-z0-9_]+:[a-z0-9_]+", r) for r in REASONS)


def test_empty_table_and_empty_registry_give_typed_empty_columns(gsm8k):
    p = params()
    table = detect(
        pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}),
        p,
        build_index((), p.ngram, p.semantic),
    )

    assert table.num_rows == 0 and table.select(COLUMNS.names).schema == COLUMNS


def test_semantic_stage_flags_a_paraphrase_inside_a_page_and_not_unrelated_pages(gsm8k, tmp_path):
    paraphrase = (
        "Janet has ducks that produce sixteen eggs daily. Each morning she has three of them for breakfast "
        "and she uses four to bake muffins for her friends."
    )
    pages = [
        FILLER * 2 + paraphrase + " " + FILLER * 2,
        "Our gardening club meets every Tuesday to swap seeds and talk about compost, mulch and tomato blight.",
        FILLER * 4,
    ]
    p = params(gsm8k, semantic=SemanticParams(enabled=True, window_words=32, stride_words=16), semantic_action="drop")

    out = run(pa.table({"id": ["para", "garden", "weather"], "text": pages}), p, saved_index(tmp_path, p))

    assert out.rejected.column("id").to_pylist() == ["para"]
    assert out.rejected.column("reason").to_pylist() == ["decontam:semantic_similarity"]
    spans = out.rejected.column("contam_spans")[0].as_py()
    assert {s["item_id"] for s in spans} == {"gsm8k-0"} and min(s["score"] for s in spans) >= p.semantic.threshold
    assert any("sixteen" in s["text"] for s in spans)
    assert max(out.kept.column("contam_semantic_score").to_pylist()) < p.semantic.threshold


def test_scanned_windows_let_a_new_threshold_or_action_rerun_without_embedding(gsm8k, tmp_path, monkeypatch):
    paraphrase = (
        "Janet has ducks that produce sixteen eggs daily. Each morning she has three of them for breakfast "
        "and she uses four to bake muffins for her friends."
    )
    table = pa.table({"id": ["para", "weather"], "text": [FILLER * 2 + paraphrase + " " + FILLER * 2, FILLER * 4]})
    semantic = SemanticParams(enabled=True, window_words=32, stride_words=16)
    p = params(gsm8k, semantic=semantic, action="flag")
    index_url = saved_index(tmp_path, p)
    direct = run(table, p, index_url).kept

    scanned = scan(table, p.scan_params(), index_url)
    monkeypatch.setattr(tasks.decontam, "window_scores", lambda *a, **k: pytest.fail("re-embedded a scanned table"))
    from_scan = run(scanned, p, index_url).kept
    strict = run(
        scanned, p.model_copy(update={"semantic": semantic.model_copy(update={"threshold": 0.99})}), index_url
    )

    assert from_scan.equals(direct)  # the scan column is consumed, not passed on
    assert from_scan.column("contam_benchmark").to_pylist() == ["gsm8k", None]
    assert strict.kept.column("contam_benchmark").to_pylist() == [None, None]
    assert (
        p.scan_params()
        == params(gsm8k, semantic=semantic.model_copy(update={"threshold": 0.9}), action="drop").scan_params()
    )
    assert p.scan_params() != params(gsm8k, semantic=semantic.model_copy(update={"window_words": 48})).scan_params()


def test_prefilter_passes_windows_holding_enough_of_one_items_rarer_words():
    items = [
        words("Josie grows grapes on her farm and sells barrels of wine"),
        words("Tracy cuts wire for the tomato plants in her garden"),
        words("Lloyd sells eggs from his farm every week"),
    ]
    lexicon = item_lexicon(items)
    windows = [
        words("a farm where Josie keeps grapes for wine"),  # 3 of item 0's 8 rarer words (`farm` is in two items)
        words("Josie with wine"),  # 2 of them
        words("her farm and the eggs"),  # `her` and `farm` are in two items; one word of each item
        words("nothing in common here"),
    ]

    assert lexical_candidates(windows, lexicon, share=0.3, min_words=3).tolist() == [True, False, False, False]
    assert lexical_candidates(windows, lexicon, share=0.2, min_words=2).tolist() == [True, True, False, False]
    assert lexical_candidates(windows, lexicon, share=0.9, min_words=1).tolist() == [False] * 4


def test_prefilter_embeds_only_candidate_windows_and_still_finds_the_paraphrase(gsm8k, tmp_path, monkeypatch):
    paraphrase = (
        "Janet has ducks that produce sixteen eggs daily. Each morning she has three of them for breakfast "
        "and she uses four to bake muffins for her friends."
    )
    table = pa.table({"id": ["para", "weather"], "text": [FILLER * 2 + paraphrase + " " + FILLER * 2, FILLER * 4]})
    semantic = SemanticParams(enabled=True, window_words=32, stride_words=16, prefilter=0.3)
    p = params(gsm8k, semantic=semantic, action="flag")
    index_url = saved_index(tmp_path, p)
    embedded = []
    real_embed = tasks.decontam.embed
    monkeypatch.setattr(
        tasks.decontam, "embed", lambda texts, *a, **k: embedded.extend(texts) or real_embed(texts, *a, **k)
    )

    out = run(table, p, index_url).kept
    filtered = list(embedded)
    everything = run(table, params(gsm8k, semantic=semantic.model_copy(update={"prefilter": None})), index_url).kept
    windows = sum(len(window_ranges(len(words(t)), 32, 16)) for t in table.column("text").to_pylist())

    assert out.column("contam_items").to_pylist() == [["gsm8k-0"], []]
    assert out.column("contam_semantic_score")[1].as_py() is None  # no window of the weather page was embedded
    assert filtered and all("muffins" in text or "breakfast" in text for text in filtered)
    assert len(filtered) < windows == len(embedded) - len(filtered)
    assert everything.column("contam_semantic_score")[1].as_py() is not None
    assert p.scan_params() != params(gsm8k, semantic=semantic.model_copy(update={"prefilter": 0.5})).scan_params()


def test_report_counts_documents_and_items_per_benchmark(gsm8k):
    p = params(gsm8k)
    index = build_index(p.benchmarks, p.ngram, p.semantic)
    rows = detected([FILLER + QUESTION, QUESTION + FILLER, FILLER], p)
    contaminated = [r | {"kept": i == 0} for i, r in enumerate(rows) if r["contam_benchmark"]]

    summary, markdown = contamination_report(contaminated, index, p)

    per_benchmark = summary["benchmarks"]
    assert per_benchmark["gsm8k"]["documents"] == 2 and per_benchmark["gsm8k"]["documents_rejected"] == 1
    assert per_benchmark["gsm8k"]["items_hit"] == 1 and per_benchmark["gsm8k"]["by_method"] == {"ngram": 2}
    assert [(d["doc_id"], d["outcome"]) for d in summary["documents"]] == [
        ("d0", "flagged, kept whole"),
        ("d1", "rejected (None)"),
    ]
    example = per_benchmark["gsm8k"]["examples"][0]
    assert (
        example["item_id"] == "gsm8k-0"
        and "ducks" in example["document_span"]
        and "ducks" in example["benchmark_item"]
    )
    assert "| gsm8k | 2 | 1 | 1 | ngram 2 |" in markdown
    assert "13-gram overlap only (embedding search off" in markdown


def test_semantic_search_is_on_by_default_only_where_the_encoder_loads_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = tmp_path / "hub" / "models--acme--tiny-encoder" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--acme--tiny-encoder" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny-encoder" / "refs" / "main").write_text("abc123")

    assert SemanticParams().enabled is True  # the packaged MiniLM is a dependency
    assert SemanticParams(encoder=str(tmp_path)).enabled is True  # a local directory
    assert SemanticParams(encoder="acme/tiny-encoder").enabled is True  # already in the hub cache
    assert SemanticParams(encoder="acme/not-downloaded").enabled is False
    assert SemanticParams(encoder=str(tmp_path / "missing")).enabled is False
    assert (
        SemanticParams(encoder="acme/not-downloaded", enabled=True).enabled is True
    )  # explicit wins: load fails loudly
    assert SemanticParams(enabled="false").enabled is False  # as a CLI override spells it


def test_a_short_question_shown_with_labeled_choices_is_found_whole(tmp_path):
    record = {
        "id": "m0",
        "question": "Which gas do plants absorb?",
        "choices": ["Oxygen", "Carbon dioxide", "Helium", "Neon"],
    }
    spec = BenchmarkSpec(name="mmlu", layout="mmlu", path=write_jsonl(tmp_path / "m.jsonl", [record]))
    page = (
        "Quiz of the day.\nWhich gas do plants absorb?\nA. Oxygen\nB. Carbon dioxide\nC. Helium\nD. Neon\n"
        "Answer below."
    )

    (row,) = detected([page], params(spec))

    assert row["contam_items"] == ["m0"] and row["contam_overlap"] == 1.0


def test_a_short_question_and_answer_are_found_together(tmp_path):
    record = {"id": "t0", "question": "Can pigs fly?", "best_answer": "No, pigs cannot fly on their own"}
    spec = BenchmarkSpec(name="tqa", layout="truthfulqa", path=write_jsonl(tmp_path / "t.jsonl", [record]))

    together, apart = detected(
        [
            "FAQ. Can pigs fly? No, pigs cannot fly on their own. More soon.",
            "Can pigs fly? Nobody asked. No, pigs cannot fly on their own.",
        ],
        params(spec),
    )

    assert together["contam_items"] == ["t0"] and apart["contam_items"] == []


PARAPHRASE = (
    "Janet has ducks that produce sixteen eggs daily. Each morning she has three of them for breakfast "
    "and she uses four to bake muffins for her friends."
)


def test_thresholds_are_per_benchmark_configured_then_calibrated_then_global():
    semantic = SemanticParams(enabled=False, threshold=0.6, thresholds={"mine": 0.9})

    assert semantic.threshold_for("mine", "mmlu") == 0.9  # configured by name wins
    assert semantic.threshold_for("mmlu", "mmlu") == tasks.decontam.semantic.CALIBRATED_THRESHOLDS["mmlu"] > 0.6
    assert semantic.threshold_for("gsm8k", "gsm8k") == 0.6  # no calibration above the global one
    assert semantic.threshold_for("custom", "fields") == 0.6
    other_encoder = semantic.model_copy(update={"encoder": "acme/other-encoder"})
    assert other_encoder.threshold_for("mmlu", "mmlu") == 0.6  # calibrated for MiniLM only
    with pytest.raises(ValueError, match="cosines"):
        SemanticParams(enabled=False, thresholds={"mmlu": 1.5})


def test_each_benchmarks_best_item_is_scanned_so_a_strict_benchmark_cannot_hide_another(gsm8k, tmp_path):
    copy = BenchmarkSpec(
        name="copies",
        layout="fields",
        fields=("text",),
        path=write_jsonl(tmp_path / "copies.jsonl", [{"id": "c0", "text": PARAPHRASE}]),
    )
    semantic = SemanticParams(enabled=True, window_words=32, stride_words=16, thresholds={"copies": 0.9999})
    p = params(gsm8k, copy, semantic=semantic, action="flag")
    table = pa.table({"id": ["para"], "text": [FILLER * 2 + PARAPHRASE + " " + FILLER * 2]})

    index_url = saved_index(tmp_path, p)
    out = run(table, p, index_url).kept
    windows = scan(table, p.scan_params(), index_url).column("contam_windows")[0].as_py()

    best = max(windows, key=lambda w: w["score"])
    assert best["item"] == 2 and best["score"] < 0.9999  # the copy is the closest item, under its own threshold
    near = [
        s for s in out.column("contam_spans")[0].as_py() if s["method"] == "semantic"
    ]  # (the copy is an n-gram hit)
    assert {(s["benchmark"], s["item_id"]) for s in near} == {("gsm8k", "gsm8k-0")} and min(
        s["score"] for s in near
    ) >= 0.6


def test_embedding_only_hits_are_flagged_by_default_and_ngram_hits_excised(gsm8k, tmp_path):
    p = params(gsm8k, semantic=SemanticParams(enabled=True, window_words=32, stride_words=16))
    texts = [FILLER * 6 + PARAPHRASE + " " + FILLER * 6, FILLER * 6 + QUESTION + " " + FILLER * 6]
    table = pa.table({"id": ["para", "copy"], "text": texts})
    index_url = saved_index(tmp_path, p)

    out = run(table, p, index_url)
    cut = run(table, p.model_copy(update={"semantic_action": "excise"}), index_url)

    assert (p.action, p.semantic_action) == ("excise", "flag")
    assert out.kept.column("id").to_pylist() == ["para", "copy"]
    para, copy_ = out.kept.to_pylist()
    assert para["text"] == texts[0] and para["n_contam_chars_cut"] == 0 and para["contam_benchmark"] == "gsm8k"
    assert copy_["n_contam_chars_cut"] > 0 and "ducks lay 16 eggs" not in copy_["text"]
    para_cut = cut.kept.to_pylist()[0]
    assert para_cut["n_contam_chars_cut"] > 0 and "sixteen eggs" not in para_cut["text"]


def test_report_says_why_each_document_was_flagged(gsm8k, tmp_path):
    p = params(gsm8k, semantic=SemanticParams(enabled=True, window_words=32, stride_words=16))
    index_url = saved_index(tmp_path, p)
    table = pa.table({"id": ["para"], "text": [FILLER * 4 + PARAPHRASE + " " + FILLER * 4]})
    rows = [r | {"kept": True} for r in run(table, p, index_url).kept.to_pylist()]

    summary, markdown = contamination_report(rows, tasks.decontam.load_index(index_url), p)

    [why] = summary["documents"]
    assert (why["doc_id"], why["item_id"], why["method"], why["outcome"]) == (
        "para",
        "gsm8k-0",
        "semantic",
        "flagged, kept whole",
    )
    assert re.fullmatch(r"cosine 0\.\d{3} >= 0\.60", why["evidence"])
    assert "embedding-only hits flag" in markdown and "cosine >= gsm8k 0.60" in markdown
    assert f"| `para` | gsm8k `gsm8k-0` | semantic: {why['evidence']} | flagged, kept whole |" in markdown


# A whole GSM8K problem, and its translations written for these tests.
PROBLEM = (
    QUESTION + " She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in "
    "dollars does she make every day at the farmers' market?"
)
TRANSLATED = {
    "de": "Janets Enten legen jeden Tag 16 Eier. Drei davon isst sie jeden Morgen zum Frühstück, und mit vier "
    "backt sie täglich Muffins für ihre Freunde. Den Rest verkauft sie jeden Tag auf dem Bauernmarkt für 2 $ pro "
    "frischem Entenei. Wie viele Dollar verdient sie jeden Tag auf dem Bauernmarkt?",
    "zh": "珍妮的鸭子每天下16个蛋。她每天早上早餐吃三个，每天还用四个给朋友烤松饼。剩下的蛋她每天在农贸市场以每个新鲜"
    "鸭蛋2美元的价格出售。她每天在农贸市场能赚多少美元？",
}
FILLERS = {
    "de": "Das Wetter im Tal blieb die ganze Woche mild, und der Markt öffnete am Samstag früh. ",
    "zh": "山谷里的天气整个星期都很温和，星期六市场很早就开门了。",
}


def test_weighted_windows_count_words_and_half_words_for_characters():
    text = " ".join(f"w{i}" for i in range(100))
    assert [(text[s:e].split()[0], len(text[s:e].split())) for s, e in weighted_windows(text, 64, 32)] == [
        ("w0", 64),
        ("w32", 64),
        ("w36", 64),  # the last window ends at the last word, as full as the others
    ]
    chinese = "天" * 150
    assert [e - s for s, e in weighted_windows(chinese, 64, 32)] == [128, 128]  # a character is half a word
    assert weighted_windows("a b c", 64, 32) == [(0, 5)] and weighted_windows("  ", 64, 32) == []


def test_multilingual_windows_keep_a_long_line_apart_from_its_neighbours():
    item = " ".join(f"w{i}" for i in range(20))
    text = f"Home\nNews\n\nContact\n{item}\nshort one\nshort two"
    params = MultilingualParams(enabled=False, line_words=16, window_words=8, stride_words=4)

    assert [text[s:e] for s, e in line_segments(text, 16)] == ["Home\nNews\n\nContact", item, "short one\nshort two"]
    windows = [text[s:e] for s, e in segment_windows(text, params)]
    assert windows[0] == "Home\nNews\n\nContact" and windows[-1] == "short one\nshort two"
    assert [w.split()[0] for w in windows[1:-1]] == ["w0", "w4", "w8", "w12"]  # the item's windows hold it alone
    # 31 Chinese characters are 15.5 words, short; 32 are 16, a segment of their own
    assert line_segments("天" * 31 + "\n" + "天" * 30 + "\n" + "天" * 32, 16) == [(0, 62), (63, 95)]


def test_documents_take_the_english_encoder_the_multilingual_one_or_none_by_language():
    packaged = MultilingualParams(enabled=True)
    assert [packaged.embeds(lang) for lang in ("en", None, "de", "zh", "bn")] == [
        "english",
        "english",
        "multilingual",
        "multilingual",
        None,  # not among USE's training languages: not embedded, n-grams only
    ]
    assert MultilingualParams(enabled=True, encoder="sentence-transformers/LaBSE").embeds("bn") == "multilingual"
    assert MultilingualParams(enabled=True, languages=("de",)).embeds("zh") is None
    assert MultilingualParams(enabled=False).scan() is None


@pytest.mark.slow  # loads the packaged multilingual USE (~5-10 s on 2 cores)
def test_a_translated_item_is_flagged_with_its_language_and_unrelated_pages_are_not(tmp_path, monkeypatch):
    gsm8k = BenchmarkSpec(
        name="gsm8k",
        layout="gsm8k",
        path=write_jsonl(tmp_path / "gsm8k.jsonl", [{"id": "gsm8k-0", "question": PROBLEM, "answer": "#### 18"}]),
    )
    pages = {f"{lang}-plant": (lang, FILLERS[lang] * 3 + TRANSLATED[lang] + FILLERS[lang] * 3) for lang in TRANSLATED}
    pages |= {f"{lang}-page": (lang, FILLERS[lang] * 8) for lang in TRANSLATED}
    pages["en-translation"] = ("en", FILLER * 3 + TRANSLATED["de"] + FILLER * 3)  # the English path: MiniLM
    pages["bn-plant"] = ("bn", TRANSLATED["de"])  # a language USE does not cover: not embedded
    table = pa.table(
        {"id": list(pages), "lang": [lang for lang, _ in pages.values()], "text": [t for _, t in pages.values()]}
    )
    p = params(gsm8k, semantic=SemanticParams(enabled=True, multilingual=MultilingualParams(enabled=True)))
    index_url = saved_index(tmp_path, p)

    scanned = scan(table, p.scan_params(), index_url)
    english_only = p.semantic.model_copy(update={"multilingual": MultilingualParams(enabled=False)})
    before = scan(table, params(gsm8k, semantic=english_only).scan_params(), index_url).to_pylist()
    monkeypatch.setattr(tasks.decontam, "window_scores", lambda *a, **k: pytest.fail("re-embedded a scanned table"))
    rows = {row["id"]: row for row in run(scanned, p, index_url).kept.to_pylist()}
    stricter = MultilingualParams(enabled=True, thresholds={"gsm8k": 0.99})
    strict = run(
        scanned, p.model_copy(update={"semantic": p.semantic.model_copy(update={"multilingual": stricter})}), index_url
    )

    for lang in TRANSLATED:
        plant, page = rows[f"{lang}-plant"], rows[f"{lang}-page"]
        assert plant["contam_semantic_path"] == page["contam_semantic_path"] == "multilingual"
        assert [(s["method"], s["item_id"]) for s in plant["contam_spans"]][:1] == [("crosslingual", "gsm8k-0")]
        assert plant["contam_semantic_score"] >= p.semantic.multilingual.threshold_for("gsm8k", "gsm8k")
        assert page["contam_benchmark"] is None and page["contam_semantic_score"] < plant["contam_semantic_score"]
    assert rows["en-translation"]["contam_semantic_path"] == "english"
    # English pages get the windows, items and cosines they got before the path existed (the cosines up to
    # float noise: the encoder's batches hold other windows now)
    for i, lang in enumerate(table.column("lang").to_pylist()):
        if lang == "en":
            now, then = scanned.to_pylist()[i]["contam_windows"], before[i]["contam_windows"]
            assert [(w["start"], w["end"], w["item"]) for w in now] == [
                (w["start"], w["end"], w["item"]) for w in then
            ]
            assert [w["score"] for w in now] == pytest.approx([w["score"] for w in then], abs=1e-5)
    assert rows["bn-plant"]["contam_semantic_path"] is None and rows["bn-plant"]["contam_semantic_score"] is None
    assert strict.kept.column("contam_benchmark").to_pylist() == [None] * len(pages)  # a new threshold, no embedding
    assert (
        p.scan_params()
        == params(gsm8k, semantic=p.semantic.model_copy(update={"multilingual": stricter})).scan_params()
    )


def test_calibrated_threshold_is_the_grid_cosine_that_the_allowed_share_of_negatives_reach():
    scores = np.array([0.10, 0.20, 0.30, 0.41, 0.52, 0.555, 0.60, 0.70], np.float32)
    assert threshold(scores, 0.0, floor=0.0) == 0.71  # none may reach it: just above the highest
    assert threshold(scores, 0.25, floor=0.0) == 0.56  # two of eight may: 0.70 and 0.60 do, 0.555 does not
    assert threshold(scores, 0.25, floor=0.65) == 0.65  # never below the floor
    assert threshold(scores, 1.0, floor=0.3) == 0.3


def test_calibration_sets_thresholds_per_path_and_benchmark_and_feeds_back_as_config(gsm8k, tmp_path):
    index = build_index((gsm8k,), params(gsm8k).ngram, SemanticParams(enabled=False))
    rng = np.random.default_rng(0)

    def windows(n: int, scale: float) -> list[list[dict]]:
        return [
            [{"start": 0, "end": 1, "item": int(rng.integers(2)), "score": float(s)}] for s in rng.random(n) * scale
        ]

    english, multilingual = windows(400, 0.5), windows(300, 0.7)
    how = DecontamCalibration(target_fpr=0.01, floor=0.2, min_docs=250)
    result = calibrate(
        [*english, *multilingual, None], ["english"] * 400 + ["multilingual"] * 300 + [None], index, how
    )

    assert result["english"]["documents"] == 400 and result["multilingual"]["documents"] == 300
    for path, docs in (("english", english), ("multilingual", multilingual)):
        best = max(w["score"] for doc in docs for w in doc)
        assert 0.2 <= result[path]["thresholds"]["gsm8k"] <= best + 0.01
        assert result[path]["reached"]["gsm8k"] <= 0.01 * len(docs)
    assert result["multilingual"]["thresholds"]["gsm8k"] > result["english"]["thresholds"]["gsm8k"]
    fed_back = yaml.safe_load(to_yaml(result, how))["decontam"]
    semantic = SemanticParams.model_validate(fed_back["semantic"])
    assert semantic.thresholds == result["english"]["thresholds"]
    assert semantic.multilingual.thresholds == result["multilingual"]["thresholds"]
    too_few = calibrate(english[:10], ["english"] * 10, index, how)
    assert too_few["english"]["thresholds"] == {} and yaml.safe_load(to_yaml(too_few, how)) == {"decontam": {}}
