"""Numbers that identify a person: phone numbers, payment cards, IBANs, US SSNs, national identifiers.

A pattern only proposes a candidate; a parser or a checksum decides, wherever one exists:
- phone numbers: Google's libphonenumber (`phonenumbers`) parses and validates them per region;
- payment cards: the Luhn checksum (`stdnum.luhn`) and the issuer's prefix and length (ISO/IEC 7812
  issuer identification numbers, as the card networks publish them);
- IBANs: ISO 13616's country formats and mod-97 check (`stdnum.iban`);
- US SSNs: the SSA's area, group and serial rules (`stdnum.us.ssn`);
- national identifiers: the `python-stdnum` validator of each configured format.

A number without its own check digit (most phone numbers, an SSN, a national id of digits alone with a
weak checksum) is accepted only with the evidence a reader would use: a keyword before it ("Tel.",
"phone", "SSN", the identifier's own acronym), or a form that only that kind of number takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from importlib import import_module
from itertools import accumulate
from types import ModuleType

import phonenumbers
from phonenumbers import NumberParseException
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

CONTEXT_CHARS = 40  # how far before a number its keyword may stand ("Phone:\n", "call me at ")

# Words that announce a phone number, in the languages of Winnow's demo and dev sets and their
# neighbours; matched case-insensitively at a word start ("Tel.", "telephone", "Telefonnummer").
PHONE_CONTEXT_RE = re.compile(
    r"(?<!\w)(?:phone|tel|telephone|mobile|mob|cell|fax|call|ring|sms|text me|whatsapp|hotline|contact"
    r"|téléphone|tél|portable|appel|telefon|handy|anruf|ruf|teléfono|telefono|telefone|móvil|celular"
    r"|cellulare|chiama|llam|ligue|gsm|puhelin|tlf|тел|телефон)",
    re.IGNORECASE,
)
# Every candidate pattern starts with a character class and checks the character before it by a
# lookbehind after it: `re` then skips ahead in C to the next possible start.
PHONE_CANDIDATE_RE = re.compile(
    r"[(+\d](?<![\w+.,/:-][(+\d])(?:(?<=\()\+?)?[\d().\-/ \u00a0]{4,29}\d"
    r"(?:\s?(?:x|ext\.?|#)\s?\d{1,6})?(?![\w:]|[.,/]\d)"
)
RANGE_RE = re.compile(r"\s[-/\u2013]\s")
EXTENSION_RE = re.compile(r"\s?(?:x|ext\.?|#)\s?\d{1,6}$")
PHONE_DIGITS = (7, 15)  # a local number without area code has 7; E.164 allows 15 at most
DATE_RE = re.compile(r"\(?(\d{1,4})(?:[-/.]\s?|\s)(\d{1,2})(?:[-/.]\s?|\s)(\d{1,4})(?!\d)\.?")
SLASH_DATE_RE = re.compile(r"(?<!\d)\d{1,2}/\d{1,2}/\d{2,4}(?!\d)")
YEAR_RANGE_RE = re.compile(r"(?:1[89]|20)\d\d\s?[-\u2013]\s?(?:1[89]|20)\d\d")
TIME_RANGE_RE = re.compile(r"(?:[01]?\d|2[0-3])[.:][0-5]\d\s?[-\u2013]\s?(?:[01]?\d|2[0-3])[.:][0-5]\d")
NOT_PHONE_CONTEXT_RE = re.compile(r"(?<!\w)(?:isbn|issn|doi|version|ver\.)", re.IGNORECASE)
MAX_ONE_DIGIT_GROUPS = 2  # "+1 (876) 926-3590-4" has two; "4.0 4.1 4.2" and "0 1 2 3 4" are not numbers to dial
IPV4_SHAPE_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
DIGITS_RE = re.compile(r"\d+")

# Payment cards: candidates of 12 to 19 digits, single spaces or dashes between them
CARD_CANDIDATE_RE = re.compile(r"\d(?<![\w+/.-]\d)(?:[ -]?\d){11,18}(?![\w-])")
# (first digits low, high, lengths): issuer identification ranges of the major networks (Visa,
# Mastercard incl. the 2-series, American Express, Discover, JCB, Diners Club, UnionPay, Maestro, Mir)
CARD_RANGES = (
    ("4", "4", (13, 16, 19)),
    ("51", "55", (16,)),
    ("2221", "2720", (16,)),
    ("34", "34", (15,)),
    ("37", "37", (15,)),
    ("6011", "6011", (16, 17, 18, 19)),
    ("644", "649", (16, 17, 18, 19)),
    ("65", "65", (16, 17, 18, 19)),
    ("3528", "3589", (16, 17, 18, 19)),
    ("35", "35", (16,)),  # the rest of 35 is unassigned; test-card generators (Faker) use it
    ("1800", "1800", (15,)),
    ("2131", "2131", (15,)),
    ("300", "305", (14, 15, 16, 17, 18, 19)),
    ("36", "36", (14, 15, 16, 17, 18, 19)),
    ("38", "39", (16, 17, 18, 19)),
    ("62", "62", (16, 17, 18, 19)),
    ("50", "50", tuple(range(12, 20))),
    ("56", "69", tuple(range(12, 20))),
    ("2200", "2204", (16, 17, 18, 19)),
)

# An IBAN's country letters are matched behind its check digits: a pattern starting at a letter would
# try every letter of the text.
IBAN_CANDIDATE_RE = re.compile(
    r"\d\d(?<=[A-Za-z]{2}\d\d)(?<![\w-][A-Za-z]{2}\d\d)(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?(?![\w-])"
)

SSN_CANDIDATE_RE = re.compile(r"\d(?<![\w-]\d)\d{2}([- ]?)\d{2}\1\d{4}(?![\w-])")
SSN_CONTEXT_RE = re.compile(r"(?<!\w)(?:ssn|social security|soc\. ?sec|ss#|ss ?no)", re.I)

# Groups that each hold a digit, joined by single separators, with a lone check letter at the end
# ("123.456.789-09", "12345678-Z"). A candidate starts at a digit that follows no digit; the letters
# before it in its token ("RSSMRA85T10A562S", "X1234567L", "X-1234567-L") are taken along after.
ID_CANDIDATE_RE = re.compile(
    r"\d(?<!\d\d)[A-Za-z0-9]*(?:[ .\-/][A-Za-z0-9]*\d[A-Za-z0-9]*){0,6}(?:[ .-][A-Za-z](?!\w))?(?![\w-])"
)
MIN_ID_DIGITS = 6
# Formats whose digits-only form identifies a company, not a person: the 11-digit codice fiscale is
# an Italian company's VAT number (partita IVA)
LETTERED_ONLY = frozenset({"it.codicefiscale"})


def phones(text: str, regions: tuple[str, ...]) -> Iterator[tuple[int, int]]:
    """Phone numbers: international ones libphonenumber validates; national ones valid in one of
    `regions` and written in groups, or possible there after a phone keyword."""
    for match in PHONE_CANDIDATE_RE.finditer(text):
        for start, end in _pieces(match):
            candidate = text[start:end]
            if candidate.startswith("(") and ")" not in candidate:  # "( 2012-06-04 09:20:26 )"
                opened = candidate
                candidate = candidate[1:].lstrip()
                start += len(opened) - len(candidate)
            core = EXTENSION_RE.sub("", candidate)
            n_digits = sum(c.isdigit() for c in core)
            if not PHONE_DIGITS[0] <= n_digits <= PHONE_DIGITS[1] or not _may_be_phone(core):
                continue
            window = max(0, start - CONTEXT_CHARS)
            if NOT_PHONE_CONTEXT_RE.search(text, window, start):
                continue
            context = PHONE_CONTEXT_RE.search(text, window, start) is not None
            if _is_phone(core, regions, context):
                yield start, end


def _pieces(match: re.Match[str]) -> Iterator[tuple[int, int]]:
    """The candidate's parts between spaced dashes and slashes ("08.30 - 12.00", "25 / 10 / 2016"):
    ranges and lists, each part judged alone, with the punctuation at their ends trimmed."""
    at = match.start()
    for part in RANGE_RE.split(match.group()):
        stripped = part.rstrip(" (-./\u00a0")
        if stripped:
            yield at, at + len(stripped)
        at += len(part) + 3


def _is_phone(core: str, regions: tuple[str, ...], context: bool) -> bool:
    """Valid and written the way libphonenumber formats it in a region (an international number: valid
    at all); or, after a phone keyword, of a length some region's numbers take."""
    international = core.startswith(("+", "00"))
    if international:
        parsed = [_parse("+" + core[2:] if core.startswith("00") else core, None)]
    else:
        parsed = [_parse(core, region) for region in regions]
    numbers = [number for number in parsed if number is not None]
    for number in numbers:
        if phonenumbers.is_valid_number(number) and (international or _grouped_as_formatted(core, number)):
            return True
    return context and any(phonenumbers.is_possible_number(number) for number in numbers)


def _grouped_as_formatted(core: str, number: phonenumbers.PhoneNumber) -> bool:
    """Whether the candidate's digit groups are those of the number's national format, or merge or
    split some of them ("0490 75 40 81" for "04 90 75 40 81"; at least three groups then). Amounts, years and
    fractions rarely fall on a region's grouping; phone numbers as people write them do."""
    written = [len(group) for group in DIGITS_RE.findall(core)]
    if len(written) < 2:
        return False
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    formatted = [len(group) for group in DIGITS_RE.findall(national)]
    if written == formatted:
        return True
    if len(written) < 3:
        return False
    written_ends, formatted_ends = set(accumulate(written)), set(accumulate(formatted))
    return written_ends <= formatted_ends or formatted_ends <= written_ends


def _parse(candidate: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(candidate, region)
    except NumberParseException:
        return None


def _may_be_phone(core: str) -> bool:
    """False for the shapes a phone number never takes: a date ("2024-03-15", "15. 03. 2024", "05.12.1972
    00", "(2020-01-21"), a year or time range ("1996-2020", "8.30-12.30"), an IPv4 address, unbalanced parentheses, or
    more one-digit groups than a country code and an extension make."""
    if core.count("(") != core.count(")") or IPV4_SHAPE_RE.fullmatch(core):
        return False
    if YEAR_RANGE_RE.fullmatch(core) or TIME_RANGE_RE.fullmatch(core) or SLASH_DATE_RE.search(core):
        return False
    if sum(len(group) == 1 for group in DIGITS_RE.findall(core)) > MAX_ONE_DIGIT_GROUPS:
        return False
    date = DATE_RE.match(core)  # at the start: "05.12.1972 00" is a date and an hour
    return date is None or not _is_date(*date.groups(), whole=date.end() == len(core))


def _is_date(first: str, middle: str, last: str, whole: bool) -> bool:
    """Whether three numbers are a calendar date, year first or last (day and month either way). A date
    followed by more digits must have a four-digit year: "06 12 34 56 78" is a French mobile number."""
    if len(first) == 4:
        return 1 <= int(middle) <= 12 and 1 <= int(last) <= 31 and len(last) <= 2
    if len(last) != 4 and not (whole and len(last) == 2):
        return False
    a, b = int(first), int(middle)
    return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)


def payment_cards(text: str) -> Iterator[tuple[int, int]]:
    for match in CARD_CANDIDATE_RE.finditer(text):
        for start, end in _prefixes(match.group(), match.start(), " -"):
            if is_payment_card(text[start:end]):
                yield start, end
                break


def is_payment_card(candidate: str) -> bool:
    """Luhn-valid, with the prefix and length of a card network's issuer range."""
    digits = "".join(c for c in candidate if c.isdigit())
    if not luhn.is_valid(digits):
        return False
    return any(len(digits) in lengths and low <= digits[: len(low)] <= high for low, high, lengths in CARD_RANGES)


def ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in IBAN_CANDIDATE_RE.finditer(text):
        at = match.start() - 2  # the country code
        for start, end in _prefixes(text[at : match.end()], at, " "):
            if stdnum_iban.is_valid(text[start:end]):
                yield start, end
                break


def us_ssns(text: str) -> Iterator[tuple[int, int]]:
    """SSNs the SSA could have issued, written ddd-dd-dddd (or spaced); nine bare digits after a
    keyword ("SSN", "social security")."""
    for match in SSN_CANDIDATE_RE.finditer(text):
        if (
            not match.group(1)
            and SSN_CONTEXT_RE.search(text, max(0, match.start() - CONTEXT_CHARS), match.start()) is None
        ):
            continue
        if stdnum_ssn.is_valid(match.group()):
            yield match.span()


@cache
def id_validator(name: str) -> tuple[ModuleType, re.Pattern[str]]:
    """A `python-stdnum` module by its name under `stdnum` ("es.dni", "in_.aadhaar"), and the pattern of
    the keyword it goes by: its acronym, the first word of the module's docstring ("DNI", "Aadhaar")."""
    module = import_module(f"stdnum.{name}")
    if not callable(getattr(module, "is_valid", None)):
        raise ValueError(f"stdnum.{name} has no is_valid(): not an identifier validator")
    acronym = (module.__doc__ or name).split()[0]
    return module, re.compile(rf"(?<!\w){re.escape(acronym)}(?!\w)", re.I)


def national_ids(text: str, formats: tuple[str, ...]) -> Iterator[tuple[int, int]]:
    """Identifiers a configured stdnum validator accepts. Letters and digits together (a DNI's check
    letter, a codice fiscale) suffice; digits alone need the identifier's acronym before them: many 9- to
    12-digit numbers pass a one-digit checksum by chance."""
    validators = [(name, *id_validator(name)) for name in formats]
    for match in ID_CANDIDATE_RE.finditer(text):
        if sum(c.isdigit() for c in match.group()) < MIN_ID_DIGITS:
            continue
        start = _token_start(text, match.start())
        if start is None:
            continue
        token = text[start : match.end()]
        digits_only = not any(c.isalpha() for c in token)
        window = text[max(0, start - CONTEXT_CHARS) : start]
        for name, module, acronym in validators:
            if digits_only and (name in LETTERED_ONLY or not acronym.search(window)):
                continue
            if module.is_valid(token):
                yield start, match.end()
                break


def _token_start(text: str, digit: int) -> int | None:
    """Where the identifier whose first digit is at `digit` starts: back over the letters before it and
    one lone letter with a separator ("X-"); None when it is inside a longer word or number."""
    start = digit
    while start > 0 and text[start - 1].isalpha() and text[start - 1].isascii():
        start -= 1
    if start == digit and start >= 2 and text[start - 1] in " .-" and text[start - 2].isalpha():
        if start == 2 or not (text[start - 3].isalnum() or text[start - 3] in ".-"):
            start -= 2  # "X-1234567-L": a single letter before the separator
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
        return None
    return start


def _prefixes(candidate: str, offset: int, separators: str) -> Iterator[tuple[int, int]]:
    """Spans of `candidate` and of its prefixes cut at separators, longest first: a greedy candidate
    may have taken the next word or number along."""
    yield offset, offset + len(candidate)
    for i in range(len(candidate) - 1, 0, -1):
        if candidate[i] in separators:
            yield offset, offset + i
