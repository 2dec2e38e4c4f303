import math
import re
from typing import NamedTuple

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tasks.clean import (
    RULES,
    SIGNAL_COLUMNS,
    THRESHOLDS,
    CleanParams,
    Doc,
    added_fields,
    decide,
    measure,
    run,
    signal_column,
)
from tasks.clean.c4 import C4Params, remove_lines
from tasks.clean.fineweb import FineWebParams
from tasks.clean.gopher import (
    GopherQualityParams,
    GopherRepetitionParams,
    dup_ngram_char_frac,
)
from tasks.contract import REASON

P = CleanParams()

# Passes every rule: 6 distinct sentences, one per line, each over 30 chars and ending in ".".
GOOD_TEXT = "\n".join(
    [
        "The river runs past the old mill and into the valley below the town.",
        "Farmers bring their grain to be ground with the heavy stones of the mill.",
        "In spring the water rises and the wheel turns faster than in the summer.",
        "Children watch the ducks that swim near the bank and feed them some bread.",
        "Visitors often have lunch at the small inn that stands beside the bridge.",
        "Later in the evening the lights of the houses shine across the quiet water.",
    ]
)


class Verdict(NamedTuple):
    keep: bool
    value: float


def rule(code: str, text: str, lang: str | None = "en", params: CleanParams = P) -> Verdict:
    """One rule alone: its measure of `text` as is, and `decide`'s verdict on that signal."""
    p = params.for_language(lang)
    value = RULES[code].measure(Doc(text, lang, p.is_segmented(lang)), p)
    signals = {name: pa.nulls(1, pa.float32()) for name in SIGNAL_COLUMNS}
    signals[signal_column(code)] = pa.array([value], pa.float32())
    judged = decide(pa.table({"lang": pa.array([lang], pa.string()), **signals}), params)
    return Verdict(judged.kept.num_rows == 1, value)


def table(texts: list[str], lang: str | None = "en") -> pa.Table:
    return pa.table(
        {
            "id": pa.array([str(i) for i in range(len(texts))], pa.string()),
            "text": pa.array(texts, pa.string()),
            "lang": pa.array([lang] * len(texts), pa.string()),
        }
    )


def expected_schema(input_table: pa.Table) -> pa.Schema:
    return pa.schema(list(input_table.schema) + added_fields())


# --- registry ---------------------------------------------------------------------------------------


def test_reason_codes_are_unique_and_well_formed():
    codes = list(RULES)

    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"^[a-z0-9_]+:[a-z0-9_]+$", code) for code in codes)


def test_every_family_in_the_registry_has_params():
    families = {code.split(":")[0] for code in RULES}

    assert families == {"gopher_quality", "gopher_repetition", "c4", "fineweb"}
    assert all(hasattr(P, family) for family in families)


def test_good_text_passes_every_rule():
    failing = [code for code in RULES if not rule(code, GOOD_TEXT).keep]

    assert failing == []


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_every_rule_is_total(text):
    for doc in (Doc(text, "en"), Doc(text, "zh", segmented=False)):
        for code, check in RULES.items():
            assert math.isfinite(check.measure(doc, P)), code


@settings(max_examples=100, deadline=None)
@given(st.text(), st.sampled_from(["en", "zh", "de", None]))
def test_run_on_one_row_never_raises(text, lang):
    out = run(table([text], lang), P)

    assert out.kept.num_rows + out.rejected.num_rows == 1


# --- Gopher quality ---------------------------------------------------------------------------------


def test_word_count_rejects_49_words():
    assert rule("gopher_quality:word_count", "word " * 49) == Verdict(False, 49.0)


def test_word_count_keeps_50_words():
    assert rule("gopher_quality:word_count", "word " * 50) == Verdict(True, 50.0)


def test_word_count_rejects_above_max():
    params = CleanParams(gopher_quality=GopherQualityParams(max_doc_words=3))

    assert rule("gopher_quality:word_count", "a b c d", params=params) == Verdict(False, 4.0)


def test_word_count_ignores_punctuation_tokens():
    assert rule("gopher_quality:word_count", "one , two ; three !").value == 3.0


def test_word_count_counts_the_characters_of_unsegmented_languages():
    assert rule("gopher_quality:word_count", "我们今天去公园散步，天气很好。", lang="zh") == Verdict(False, 13.0)
    assert rule("gopher_quality:word_count", "我们在 Berlin 住了 3 年，很开心。" * 5, lang="zh") == Verdict(True, 55.0)
    assert rule("gopher_quality:word_count", "ไม่" * 30, lang="th").value == 60.0  # a letter with its marks is one


def test_combining_marks_and_joiners_stay_inside_words():
    """Regression: with `re`'s \\w a Devanagari vowel sign was a symbol token that split its word, and
    all of lingua's Hindi prose failed the alphabetic ratio."""
    assert rule("gopher_quality:word_count", "हिन्दी भाषा", lang="hi").value == 2.0
    assert rule("gopher_quality:alpha_words_ratio", "हिन्दी भाषा", lang="hi") == Verdict(True, 1.0)
    assert rule("gopher_quality:word_count", "می\u200cخواهم", lang="fa").value == 1.0  # a zero-width non-joiner


def test_zero_width_spaces_are_no_tokens():
    lao = "ພວກ\u200bເຮົາ\u200bສະ\u200bເໜີ\u200bຂ່າວ"  # Lao web text puts one between words

    assert rule("gopher_quality:alpha_words_ratio", lao, lang="lo") == Verdict(True, 1.0)
    assert rule("gopher_quality:alpha_words_ratio", "one\u200b two", lang="en") == Verdict(True, 1.0)


def test_tibetan_syllable_marks_are_no_tokens():
    text = "བོད་ཀྱི་སྐད་ཡིག་ནི་"  # tsheg (U+0F0B) after every syllable, as spaces after words elsewhere

    assert rule("gopher_quality:alpha_words_ratio", text, lang="bo") == Verdict(True, 1.0)


def test_alpha_words_ratio_judges_chinese_by_character():
    table_row = "2024年 | 12.5% | 3,400 | 7.8 | 1,200 | 45% | 9.1 |"

    assert not rule("gopher_quality:alpha_words_ratio", table_row * 5, lang="zh").keep
    assert rule("gopher_quality:alpha_words_ratio", "我们今天去公园散步，天气很好。", lang="zh").keep


def test_mean_word_length_rejects_short_words():
    assert rule("gopher_quality:mean_word_length", "ab " * 10) == Verdict(False, 2.0)


def test_mean_word_length_keeps_three_char_words():
    assert rule("gopher_quality:mean_word_length", "abc " * 10) == Verdict(True, 3.0)


def test_mean_word_length_rejects_run_on_tokens():
    assert rule("gopher_quality:mean_word_length", "abcdefghijk " * 10) == Verdict(False, 11.0)


def test_mean_word_length_keeps_ten_char_words():
    assert rule("gopher_quality:mean_word_length", "abcdefghij " * 10) == Verdict(True, 10.0)


def test_symbol_word_ratio_rejects_hashes():
    assert rule("gopher_quality:symbol_word_ratio", "# # " + "word " * 8) == Verdict(False, 0.2)


def test_symbol_word_ratio_keeps_one_hash_in_ten_tokens():
    assert rule("gopher_quality:symbol_word_ratio", "# " + "word " * 9) == Verdict(True, 0.1)


def test_symbol_word_ratio_rejects_ellipses():
    assert rule("gopher_quality:symbol_word_ratio", "a b c d e f g h … ...") == Verdict(False, 0.2)


def test_bullet_lines_ratio_rejects_all_bullets():
    assert rule("gopher_quality:bullet_lines_ratio", "• a\n- b\n* c") == Verdict(False, 1.0)


def test_bullet_lines_ratio_keeps_nine_in_ten():
    text = "\n".join(["  • item"] * 9 + ["plain line"])

    assert rule("gopher_quality:bullet_lines_ratio", text) == Verdict(True, 0.9)


def test_ellipsis_lines_ratio_rejects_four_in_ten():
    text = "\n".join(["and then…"] * 4 + ["done."] * 6)

    assert rule("gopher_quality:ellipsis_lines_ratio", text) == Verdict(False, 0.4)


def test_ellipsis_lines_ratio_keeps_three_in_ten():
    text = "\n".join(["and then...  "] * 3 + ["done."] * 7)

    assert rule("gopher_quality:ellipsis_lines_ratio", text) == Verdict(True, 0.3)


def test_alpha_words_ratio_rejects_mostly_numbers():
    assert rule("gopher_quality:alpha_words_ratio", "1 2 3 a b c d e f g") == Verdict(False, 0.7)


def test_alpha_words_ratio_keeps_eight_in_ten():
    assert rule("gopher_quality:alpha_words_ratio", "1 2 a b c d e f g h") == Verdict(True, 0.8)


def test_alpha_words_ratio_counts_punctuation_tokens():
    assert rule("gopher_quality:alpha_words_ratio", "a , b , c , d , e").value == pytest.approx(5 / 9)


def test_stop_word_count_rejects_one_stop_word():
    assert rule("gopher_quality:stop_word_count", "the cat sat") == Verdict(False, 1.0)


def test_stop_word_count_keeps_two_stop_words():
    assert rule("gopher_quality:stop_word_count", "the cat and dog") == Verdict(True, 2.0)


def test_stop_word_count_judges_german_by_its_stopwords_iso_list():
    assert rule("gopher_quality:stop_word_count", "Der Hund und die Katze", lang="de") == Verdict(True, 2.0)
    assert rule("gopher_quality:stop_word_count", "Hund Katze Maus Haus", lang="de") == Verdict(False, 0.0)


def test_stop_word_count_does_not_judge_a_language_without_a_list():
    assert rule("gopher_quality:stop_word_count", "Qeni dhe macja", lang="sq").keep


def test_kurdish_stop_words_follow_the_script_of_the_lid_label():
    kurmanji = "Me di 114 bernameyên xwe yên berê da perçeyên ji berhemên zanyarî"  # lid.176 "ku", Latin script

    assert rule("gopher_quality:stop_word_count", kurmanji, lang="ku").keep  # stopwords-iso has no Kurmanji list
    assert rule("gopher_quality:stop_word_count", "ئێمە بۆ ئەو", lang="ckb") == Verdict(True, 3.0)  # Sorani's list


def test_stop_words_of_unsegmented_languages_are_counted_where_they_occur():
    thai = "ฉันไปตลาดกับแม่และพี่สาว"  # "I went to the market with mother and sister": went, with, and

    assert rule("gopher_quality:stop_word_count", thai, lang="th") == Verdict(True, 3.0)
    assert not rule("gopher_quality:stop_word_count", "ตลาดนัดจตุจักร", lang="th").keep  # a place name


def test_an_empty_stop_word_list_turns_the_rule_off_for_that_language():
    params = CleanParams(languages={"en": {"gopher_quality": {"stop_words": []}}})

    assert rule("gopher_quality:stop_word_count", "cat dog", params=params) == Verdict(True, 0.0)
    assert not rule("gopher_quality:stop_word_count", "cat dog", lang="fr", params=params).keep


def test_stop_word_count_does_not_judge_unknown_language():
    assert rule("gopher_quality:stop_word_count", "Der Hund", lang=None).keep


# --- Gopher repetition ------------------------------------------------------------------------------


def test_dup_para_frac_rejects_one_repeat_in_three():
    verdict = rule("gopher_repetition:dup_para_frac", "a\n\na\n\nb")

    assert verdict == Verdict(False, pytest.approx(1 / 3))


def test_dup_para_frac_keeps_three_repeats_in_ten():
    text = "\n\n".join(["same"] * 4 + [f"p{i}" for i in range(6)])

    assert rule("gopher_repetition:dup_para_frac", text) == Verdict(True, pytest.approx(0.3))


def test_dup_para_char_frac_rejects_repeated_long_paragraph():
    text = "x" * 10 + "\n\n" + "x" * 10 + "\n\n" + "y" * 25  # 10 repeated chars of 49

    assert rule("gopher_repetition:dup_para_char_frac", text) == Verdict(False, 10 / 49)


def test_dup_para_char_frac_keeps_a_fifth():
    text = "x" * 10 + "\n\n" + "x" * 10 + "\n\n" + "y" * 26  # 10 repeated chars of 50

    assert rule("gopher_repetition:dup_para_char_frac", text) == Verdict(True, 0.2)


def test_dup_line_frac_rejects_one_repeat_in_three():
    verdict = rule("gopher_repetition:dup_line_frac", "a\na\nb")

    assert verdict == Verdict(False, pytest.approx(1 / 3))


def test_dup_line_frac_keeps_three_repeats_in_ten_ignoring_blank_lines():
    text = "\n\n".join(["same"] * 4 + [f"l{i}" for i in range(6)])

    assert rule("gopher_repetition:dup_line_frac", text) == Verdict(True, pytest.approx(0.3))


def test_dup_line_char_frac_rejects_repeated_long_line():
    text = "x" * 10 + "\n" + "x" * 10 + "\n" + "y" * 27  # 10 repeated chars of 49

    assert rule("gopher_repetition:dup_line_char_frac", text) == Verdict(False, 10 / 49)


def test_dup_line_char_frac_keeps_a_fifth():
    text = "x" * 10 + "\n" + "x" * 10 + "\n" + "y" * 28  # 10 repeated chars of 50

    assert rule("gopher_repetition:dup_line_char_frac", text) == Verdict(True, 0.2)


@pytest.mark.parametrize(("n", "limit"), [(2, 0.2), (3, 0.18), (4, 0.16)])
def test_top_ngram_char_frac_rejects_a_repeated_ngram(n, limit):
    gram = " ".join("abcd"[:n])
    text = f"{gram} {gram}"

    verdict = rule(f"gopher_repetition:top_{n}gram_char_frac", text)

    assert verdict == Verdict(False, 2 * len(gram) / len(text))


@pytest.mark.parametrize(("n", "limit"), [(2, 0.2), (3, 0.18), (4, 0.16)])
def test_top_ngram_char_frac_keeps_a_gram_at_the_limit(n, limit):
    gram = " ".join("abcd"[:n])  # 2n - 1 chars, once; the doc padded to exactly len / limit chars
    text = f"{gram} " + "z" * (round((2 * n - 1) / limit) - 2 * n)

    verdict = rule(f"gopher_repetition:top_{n}gram_char_frac", text)

    assert verdict.keep and verdict.value == pytest.approx(limit, abs=0.005) and verdict.value <= limit


@pytest.mark.parametrize(("n", "limit"), [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)])
def test_dup_ngram_char_frac_rejects_a_repeated_ngram(n, limit):
    gram = " ".join("abcdefghij"[:n])
    text = f"{gram} {gram}"

    verdict = rule(f"gopher_repetition:dup_{n}gram_char_frac", text)

    assert verdict == Verdict(False, n / len(text))


@pytest.mark.parametrize(("n", "limit"), [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)])
def test_dup_ngram_char_frac_keeps_a_repeat_under_the_limit(n, limit):
    gram = " ".join("abcdefghij"[:n])
    base = f"{gram} {gram} "
    text = base + "z" * (math.ceil(n / limit) - len(base))

    verdict = rule(f"gopher_repetition:dup_{n}gram_char_frac", text)

    assert verdict.keep and 0 < verdict.value <= limit


def test_dup_ngram_char_frac_counts_overlapping_repeats_once():
    text = "a " * 20  # 5-grams at 0..15 are all "a a a a a": the scan counts tokens 5..19 once

    assert rule("gopher_repetition:dup_5gram_char_frac", text).value == 15 / 40


def test_word_ngram_rules_keep_unsegmented_japanese():
    text = "今日は 今日は 今日は 今日は 今日は 今日は"

    verdicts = [rule(code, text, lang="ja") for code in RULES if "gram" in code]

    assert all(v.keep for v in verdicts) and max(v.value for v in verdicts) > 0.2


def _reference_dup_chars(tokens: list[str], n: int) -> int:
    seen, repeated, i = set(), 0, 0
    while i <= len(tokens) - n:
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            repeated += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "c"]), max_size=60), st.integers(5, 10))
def test_dup_ngram_scan_over_repeat_starts_matches_the_full_scan(tokens, n):
    doc = Doc(" ".join(tokens), "en")

    value = dup_ngram_char_frac(doc, P, n=n)

    assert value == pytest.approx(_reference_dup_chars(tokens, n) / max(len(doc.text), 1))


# --- C4 ---------------------------------------------------------------------------------------------


def test_curly_bracket_rejects_a_brace():
    assert rule("c4:curly_bracket", "function f() { return 1 }") == Verdict(False, 1.0)


def test_curly_bracket_keeps_text_without_braces():
    assert rule("c4:curly_bracket", "no braces (only parentheses) here") == Verdict(True, 0.0)


def test_sentence_count_rejects_four_sentences():
    assert rule("c4:sentence_count", "One. Two! Three?\nFour") == Verdict(False, 4.0)


def test_sentence_count_keeps_five_sentences():
    assert rule("c4:sentence_count", "One. Two! Three?\n\nFour… Five 3.14") == Verdict(True, 5.0)


def test_remove_lines_drops_javascript_policy_and_lorem_lines():
    text = "\n".join(
        [
            "Keep this useful line.",
            "Please enable JavaScript to view.",
            "Read our Privacy Policy now.",
            "Lorem ipsum dolor sit amet.",
        ]
    )

    cleaned, n_removed = remove_lines(text, "en", P)

    assert (cleaned, n_removed) == ("Keep this useful line.", 3)


def test_remove_lines_drops_lines_under_three_words():
    cleaned, n_removed = remove_lines("Menu\nHome About\nA real sentence here.", "en", P)

    assert (cleaned, n_removed) == ("A real sentence here.", 2)


def test_remove_lines_drops_lines_with_an_overlong_word():
    cleaned, n_removed = remove_lines("a b " + "x" * 1001 + "\nshort words stay here", "en", P)

    assert (cleaned, n_removed) == ("short words stay here", 1)


def test_remove_lines_strips_citation_markers_without_counting_a_line():
    cleaned, n_removed = remove_lines("Paris is big.[1] It is old[citation needed] and fine.[edit]", "en", P)

    assert (cleaned, n_removed) == ("Paris is big. It is old and fine.", 0)


def test_remove_lines_keeps_blank_lines_between_paragraphs():
    cleaned, n_removed = remove_lines("First para is here.\n\nNav\n\nSecond para is here.", "en", P)

    assert (cleaned, n_removed) == ("First para is here.\n\nSecond para is here.", 1)


def test_remove_lines_returns_untouched_text_when_nothing_goes():
    assert remove_lines(GOOD_TEXT, "en", P) == (GOOD_TEXT, 0)


def test_remove_lines_counts_the_characters_of_chinese_lines():
    text = "首页\n今天天气很好。\n我们去公园。"  # "Home": two characters, under C4's three words

    assert remove_lines(text, "zh", P) == ("今天天气很好。\n我们去公园。", 1)


def test_remove_lines_drops_lines_without_terminal_punctuation_when_asked():
    params = CleanParams(c4=C4Params(filter_no_terminal_punct=True))

    assert remove_lines("ends well here.\nno end to this one\ntrails off here...", "en", params) == (
        "ends well here.",
        2,
    )


# --- FineWeb ----------------------------------------------------------------------------------------


def test_line_punct_ratio_rejects_one_in_nine():
    text = "\n".join(["ends here."] + ["no stop"] * 8)

    assert rule("fineweb:line_punct_ratio", text) == Verdict(False, pytest.approx(1 / 9))


def test_line_punct_ratio_keeps_one_in_eight():
    text = "\n".join(["ends here!"] + ["no stop"] * 7)

    assert rule("fineweb:line_punct_ratio", text) == Verdict(True, 0.125)


def test_line_punct_ratio_counts_chinese_full_stops():
    assert rule("fineweb:line_punct_ratio", "今天天气很好。", lang="zh") == Verdict(True, 1.0)


def test_other_scripts_full_stops_end_lines_and_sentences():
    """Regression: Urdu's "۔" was no terminal punctuation, and 24 of 40 lingua prose documents of
    Urdu failed the line-punctuation rule."""
    urdu = "یہ ایک جملہ ہے۔ یہ دوسرا ہے۔\nیہ تیسرا ہے۔"

    assert rule("fineweb:line_punct_ratio", urdu, lang="ur") == Verdict(True, 1.0)
    assert rule("c4:sentence_count", urdu, lang="ur").value == 3.0
    assert rule("fineweb:line_punct_ratio", "Բարև։\nԻնչպես ես։", lang="hy").value == 1.0  # Armenian


def test_short_line_ratio_rejects_three_short_in_four():
    text = "\n".join(["x" * 30] * 3 + ["y" * 31])

    assert rule("fineweb:short_line_ratio", text) == Verdict(False, 0.75)


def test_short_line_ratio_keeps_two_short_in_three():
    text = "\n".join(["x" * 30] * 2 + ["y" * 31])

    assert rule("fineweb:short_line_ratio", text) == Verdict(True, pytest.approx(2 / 3))


def test_char_dup_ratio_rejects_one_percent():
    text = "ab\nab\n" + "x" * 196  # 2 repeated chars of 200 (newlines excluded)

    assert rule("fineweb:char_dup_ratio", text) == Verdict(False, 0.01)


def test_char_dup_ratio_keeps_under_one_percent():
    text = "ab\nab\n" + "x" * 197  # 2 of 201

    assert rule("fineweb:char_dup_ratio", text) == Verdict(True, 2 / 201)


def test_list_ratio_rejects_one_word_lines():
    assert rule("fineweb:list_ratio", "a\nb\nc") == Verdict(False, pytest.approx(2 / 3))


def test_list_ratio_keeps_three_newlines_in_ten_tokens():
    text = "a b c\nd e f\ng h i\nj"

    assert rule("fineweb:list_ratio", text) == Verdict(True, pytest.approx(0.3))


# --- the stage ----------------------------------------------------------------------------------------


def test_run_keeps_good_text_with_its_signals():
    out = run(table([GOOD_TEXT]), P)

    assert out.kept.num_rows == 1 and out.rejected.num_rows == 0
    assert out.kept.column("gopher_quality_word_count").to_pylist() == [float(len(GOOD_TEXT.split()))]
    assert out.kept.column("n_lines_removed").to_pylist() == [0]


def test_run_rejects_with_the_first_failing_rule():
    out = run(table(["tiny text with a { brace"]), P)

    assert out.rejected.column(REASON).to_pylist() == ["gopher_quality:word_count"]
    assert out.rejected.column("c4_curly_bracket").to_pylist() == [1.0]


def test_run_rewrites_text_and_counts_transforms():
    text = GOOD_TEXT + "\nPlease enable JavaScript to continue.\nMail the editor at ed@news.example.com today."

    out = run(table([text]), P)

    assert out.kept.column("text").to_pylist() == [GOOD_TEXT + "\nMail the editor at ed@news.example.com today."]
    assert out.kept.column("n_lines_removed").to_pylist() == [1]


def test_clean_pii_config_names_the_stage_it_moved_to():
    with pytest.raises(ValidationError, match="clean.pii moved to its own stage"):
        CleanParams.model_validate({"pii": {"redact_emails": False}})


def test_run_rejects_a_doc_emptied_by_line_removal():
    out = run(table(["Menu\nHome\nLogin"]), P)

    assert out.rejected.column(REASON).to_pylist() == ["gopher_quality:word_count"]
    assert out.rejected.column("text").to_pylist() == [""]


def test_run_keeps_german_prose_by_its_own_stop_words():
    german = "\n".join(
        [
            "Der Fluss fließt an der alten Mühle vorbei und weiter in das tiefe Tal.",
            "Die Bauern bringen ihr Korn zur Mühle, wo es mit schweren Steinen gemahlen wird.",
            "Im Frühling steigt das Wasser, und das große Rad dreht sich schneller als sonst.",
            "Kinder beobachten die Enten, die nahe am Ufer schwimmen, und füttern sie mit Brot.",
            "Besucher essen oft im kleinen Gasthaus, das gleich neben der steinernen Brücke steht.",
            "Am Abend leuchten die Lichter der Häuser über dem ruhigen, dunklen Wasser des Flusses.",
        ]
    )

    out = run(table([german], lang="de"), P)

    assert out.kept.num_rows == 1
    assert out.kept.column("gopher_quality_stop_word_count").to_pylist()[0] >= 20  # der, die, und, ...


def test_rules_that_do_not_judge_a_language_are_not_measured_there():
    rows = pa.table({"text": ["我们今天去公园散步。", "The cat sat."], "lang": ["zh", "en"]})

    out = measure(rows, P).kept

    assert out.column("gopher_quality_mean_word_length").to_pylist() == [None, 3.0]
    assert out.column("gopher_repetition_dup_5gram_char_frac").to_pylist()[0] is None
    assert out.column("gopher_quality_word_count").to_pylist() == [9.0, 3.0]


def test_run_keeps_chinese_prose_that_whitespace_words_would_drop():
    chinese = (
        "我们今天去公园散步。天气很好，阳光明媚。孩子们在草地上玩耍。"
        "老人在树下下棋聊天。鸟儿在枝头唱歌。湖边有很多人在钓鱼。"
    )

    out = run(table([chinese], lang="zh"), P)

    assert out.kept.num_rows == 1  # 6 whitespace-and-punctuation "words"
    assert out.kept.column("gopher_quality_word_count").to_pylist()[0] == sum(map(str.isalpha, chinese)) == 51


def test_disabling_a_family_removes_its_rejections_and_nulls_its_columns():
    params = CleanParams(gopher_quality=GopherQualityParams(enabled=False))

    out = run(table(["tiny text."]), params)

    assert out.rejected.num_rows == 1
    assert not any(r.startswith("gopher_quality:") for r in out.rejected.column(REASON).to_pylist())
    assert out.rejected.column("gopher_quality_word_count").null_count == 1


def test_disabled_transforms_keep_null_count_columns():
    params = CleanParams(c4=C4Params(enabled=False))

    out = run(table([GOOD_TEXT + "\nmail a@b.io"]), params)

    rows = pa.concat_tables([out.kept, out.rejected.drop_columns([REASON])])
    assert rows.column("n_lines_removed").null_count == 1
    assert rows.column("text").to_pylist() == [GOOD_TEXT + "\nmail a@b.io"]


def test_schema_does_not_depend_on_params():
    everything_off = CleanParams(
        gopher_quality=GopherQualityParams(enabled=False),
        gopher_repetition=GopherRepetitionParams(enabled=False),
        c4=C4Params(enabled=False),
        fineweb=FineWebParams(enabled=False),
    )

    assert run(table([GOOD_TEXT]), everything_off).kept.schema == run(table([GOOD_TEXT]), P).kept.schema


def test_empty_table_gives_the_declared_schema():
    empty = table([])

    out = run(empty, P)

    assert out.kept.schema == expected_schema(empty)
    assert out.rejected.schema == expected_schema(empty).append(pa.field(REASON, pa.string()))
    assert out.kept.num_rows == out.rejected.num_rows == 0


def test_multi_chunk_table_gives_the_declared_schema_and_every_row():
    chunked = pa.concat_tables([table([GOOD_TEXT, "short"]), table(["x y z", GOOD_TEXT])])

    out = run(chunked, P)

    assert out.kept.schema == expected_schema(chunked)
    assert out.kept.num_rows + out.rejected.num_rows == 4
    assert sorted(out.kept.column("id").to_pylist()) == ["0", "1"]


def test_signal_columns_are_named_from_reason_codes():
    names = [field.name for field in added_fields()]

    assert names[: len(RULES)] == [signal_column(code) for code in RULES]
    assert "gopher_quality_mean_word_length" in names and names[-1:] == ["n_lines_removed"]


def test_params_reject_unknown_fields():
    with pytest.raises(ValueError):
        CleanParams(gopher_quality={"min_doc_word": 10})


# --- per-language params and the two phases -------------------------------------------------------------


def test_a_language_override_changes_that_language_only():
    params = CleanParams(languages={"de": {"gopher_quality": {"min_doc_words": 3}}})
    four_words = "eins zwei drei vier"

    assert rule("gopher_quality:word_count", four_words, lang="de", params=params).keep
    assert rule("gopher_quality:word_count", four_words, lang="de-AT", params=params).keep  # base language
    assert not rule("gopher_quality:word_count", four_words, lang="fr", params=params).keep
    assert params.for_language("fr") is params


def test_a_language_override_of_a_measure_knob_changes_its_signal():
    params = CleanParams(languages={"de": {"fineweb": {"short_line_max_chars": 5}}})
    text = "one two three\nfour five six seven eight nine ten eleven"  # 13 and 40 chars

    de, en = measure(table([text], "de"), params).kept, measure(table([text], "en"), params).kept

    assert de.column("fineweb_short_line_ratio").to_pylist() == [0.0]
    assert en.column("fineweb_short_line_ratio").to_pylist() == [0.5]


def test_language_overrides_are_checked_at_load():
    with pytest.raises(ValueError, match="languages.de"):
        CleanParams(languages={"de": {"gopher_quality": {"min_alpha_words_ratio": 2.0}}})
    with pytest.raises(ValueError, match="base language"):
        CleanParams(languages={"de-AT": {}})
    with pytest.raises(ValueError):
        CleanParams(languages={"de": {"gopher_quality": {"min_doc_word": 3}}})


def test_signal_params_forget_thresholds_but_keep_measure_knobs():
    thresholds = CleanParams(
        gopher_quality=GopherQualityParams(min_doc_words=10, max_symbol_word_ratio=0.5),
        fineweb=FineWebParams(line_punct_exclude_zero=True),
        languages={"de": {"gopher_repetition": {"max_dup_line_frac": 0.5}}},
    )
    measures = CleanParams(
        fineweb=FineWebParams(short_line_max_chars=10),
        languages={"de": {"gopher_quality": {"min_doc_words": 3, "stop_words": ["der"]}}},
    )

    assert thresholds.signal_params() == P.signal_params() == P
    assert measures.signal_params().fineweb.short_line_max_chars == 10
    assert measures.signal_params().languages["de"].changes() == {"gopher_quality": {"stop_words": ("der",)}}


def test_every_threshold_is_a_knob_of_its_family():
    for family, names in THRESHOLDS.items():
        assert names and names <= set(type(getattr(P, family)).model_fields), family


def test_decide_reads_no_text_and_rejects_on_stored_signals():
    measured = measure(table([GOOD_TEXT, "tiny text."]), P).kept

    judged = decide(measured.drop_columns(["text"]), P)

    assert judged.kept.column("id").to_pylist() == ["0"]
    assert judged.rejected.column(REASON).to_pylist() == ["gopher_quality:word_count"]


def test_a_null_signal_keeps():
    measured = measure(table(["tiny text."]), P).kept
    nulled = measured.set_column(
        measured.schema.get_field_index("gopher_quality_word_count"),
        "gopher_quality_word_count",
        pa.nulls(1, pa.float32()),
    )

    assert decide(nulled, P).rejected.column(REASON).to_pylist() != ["gopher_quality:word_count"]


def test_measure_rejects_nothing():
    out = measure(table(["tiny text.", "", GOOD_TEXT]), P)

    assert out.kept.num_rows == 3 and out.rejected.num_rows == 0
