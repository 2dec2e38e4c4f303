"""Word and character tokens, shared by the stages that count words (clean) and the models that read
tokens (fastText scorers with `tokens: script`).

Tokenisation stands in for the NLTK Treebank tokenizer that datatrove's English filters use
(`datatrove/utils/word_tokenizers.py`): word tokens (letters/digits, with inner hyphens and apostrophes
and decimal/thousand separators) and punctuation tokens (one per character, except that "..." and
runs of dashes stay whole). One C-level `findall` instead of punkt + Treebank keeps this stage
fast; `Treebank` differs on contractions ("don't" is one token here, two there) and quote marks.

Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan) have no
whitespace words: a Chinese sentence would be one "word". In a document of an unsegmented language
those scripts are tokenised by character instead, as BERT's tokenizer does for CJK (Devlin et al.
2019, `tokenization.py`, `_tokenize_chinese_chars`): one token per Han or kana character, one per
letter with its combining vowel and tone marks for the Brahmic scripts; other scripts in the same
document (Latin names, numbers) keep their words. So a word count means "characters" there (a Chinese
word averages ~1.5 characters, a Thai one ~3 letters), and counts, ratios and n-grams over tokens
stay defined; word lengths do not (always ~1), so the mean-word-length rule does not judge these
languages. A dictionary segmenter (jieba, MeCab, PyThaiNLP) would give real words at the cost of a
dependency and a model per language; character tokens need neither and treat every such script alike.
"""

from __future__ import annotations

import regex

_WORD = r"\w+(?:[-'’]\w+)*(?:[.,:]\d+)*"
# Invisible separators are no tokens: the zero-width space (which Lao, Thai and Khmer web text puts
# between words: a Lao page of prose had one per word and failed the alphabetic ratio), word joiner, BOM
_INVISIBLE = "\u200b\u2060\ufeff"


def _punct(no_token: str) -> str:
    """Punctuation tokens: "..." and dash runs whole, else one per character not in `no_token`."""
    return rf"\.\.\.+|--+|[^\w\s{no_token}]"


_PUNCT = _punct(_INVISIBLE)
# `regex`, not `re`: its \w holds combining marks and the zero-width (non-)joiners, `re`'s does not, so
# with `re` a Devanagari vowel sign was a punctuation token and split its word ("हिन्दी" was 4 words
# and 2 symbols): 100% of lingua's Hindi, Marathi, Gujarati and Telugu prose failed the alphabetic ratio
TOKEN_RE = regex.compile(f"{_WORD}|{_PUNCT}")
WORD_RE = regex.compile(_WORD)  # the same word tokens TOKEN_RE yields, without the punctuation ones
# Character tokens of unsegmented scripts (the `regex` package: Unicode script classes, which `re`
# lacks): a Han or kana character; a Brahmic letter with the combining marks that follow it. Tibetan's
# tsheg marks syllable ends as a space marks word ends elsewhere: it is no token (else it would be a
# punctuation token every ~3 letters, and prose would fail the alphabetic-token ratio).
_IDEOGRAPHIC = r"\p{Han}\p{Hiragana}\p{Katakana}"
_BRAHMIC = r"\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
_CHARACTER = rf"[{_IDEOGRAPHIC}]|(?=\p{{L}})[{_BRAHMIC}]\p{{M}}*"
_SPACED = rf"[^\W{_IDEOGRAPHIC}{_BRAHMIC}]"  # a word character of a script written with spaces
_SPACED_WORD = rf"{_SPACED}+(?:[-'’]{_SPACED}+)*(?:[.,:]\d+)*"
_TSHEG = "\u0f0b\u0f0c"
CHARACTER_TOKEN_RE = regex.compile(f"{_CHARACTER}|{_SPACED_WORD}|{_punct(_INVISIBLE + _TSHEG)}")
CHARACTER_WORD_RE = regex.compile(f"{_CHARACTER}|{_SPACED_WORD}")
# The same tokens, with group `character` set for a character token (decontamination weighs them apart)
KIND_TOKEN_RE = regex.compile(f"(?P<character>{_CHARACTER})|{_SPACED_WORD}")

# Spans a classifier trained on sentences and posts scores one at a time (toxicity scorers, span
# cutting): a non-blank line, or a sentence up to its terminal punctuation or line end. Latin . ! ?
# end a sentence only before whitespace (after closing quotes or brackets), so "3.2%" and "U.S."
# inside a sentence do not; nor after a one-letter word ("U.S. states", "J. Smith"). CJK 。！？ end
# one wherever they stand. A fragment such as "Muslims made up 3." reads like a statement about a
# group, which a toxicity head scores as hate.
_TERMINAL = r"(?<![\s(.]\p{L})(?<!^\p{L})[.!?]+[\"'”’)\]]*(?=\s|$)|[。！？]+"
SPAN_PATTERNS = {
    "paragraph": regex.compile(r"[^\n]*\S[^\n]*"),
    "sentence": regex.compile(rf"\S(?:[^\n]*?(?:{_TERMINAL})|[^\n]*)", regex.MULTILINE),
}


def span_bounds(text: str, unit: str) -> list[tuple[int, int]]:
    """(start, end) of each `unit` ("sentence" or "paragraph") of `text`, in order."""
    return [m.span() for m in SPAN_PATTERNS[unit].finditer(text)]
