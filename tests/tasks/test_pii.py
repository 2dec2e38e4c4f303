"""PII detection per entity type, what must not be taken for PII, and the two actions."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import tasks.pii
from tasks.pii import ENTITY_TYPES, PiiParams, Span, find
from tasks.pii.spans import replace, resolve

P = PiiParams()


def found(text: str, params: PiiParams = P) -> list[tuple[str, str]]:
    return [(span.type, text[span.start : span.end]) for span in find(text, params)]


def table(texts: list[str]) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})


# --- e-mail and IP ----------------------------------------------------------------------------------


def test_emails_and_public_ips_are_found():
    text = "Write to jane.doe+news@mail.example.org; hosts 8.8.8.8 and 2001:4860:4860::8888 answer."

    assert found(text) == [
        ("email", "jane.doe+news@mail.example.org"),
        ("ip_address", "8.8.8.8"),
        ("ip_address", "2001:4860:4860::8888"),
    ]


def test_private_loopback_and_non_addresses_are_not_ips():
    text = "Router 192.168.1.1, host 127.0.0.1, ::1, 10.0.0.7, version 1.2.3.4.5, time 12:30:45, 999.1.1.1"

    assert found(text) == []


# --- phone numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, number",
    [
        ("Reach our desk on +44 20 7946 0018 any day.", "+44 20 7946 0018"),  # international: valid anywhere
        ("Our office: 0049 30 901820 is open.", "0049 30 901820"),  # 00 as the international prefix
        ("The shop answers at (415) 555-0132 on weekdays.", "(415) 555-0132"),  # US national format
        ("Les bureaux répondent au 01 42 68 53 00 le matin.", "01 42 68 53 00"),  # French grouping
        ("Telefon: 030 90182 0", "030 90182 0"),  # a keyword makes a possible number enough
    ],
)
def test_phone_numbers_are_found(text, number):
    assert found(text) == [("phone", number)]


@pytest.mark.parametrize(
    "text",
    [
        "The meeting of 2024-03-15 moved to 15. 03. 2024 and then 05.12.1972 00:00 UTC.",  # dates
        "Open Mo-Fr 8.30-12.30, in the years 1996-2020.",  # time and year ranges
        "ISBN 0-451-52634-1 (paperback).",  # an ISBN after its keyword
        "The dollar rose to 146.40/50 yen, 1.7733/38 marks.",  # quotes
        "Population 1 234 567 and 12 345 678 people, 4.0 4.1 4.2 4.3 versions.",  # amounts, versions
        "Order 73111 31 shipped.",  # two groups that do not fall on a region's format
    ],
)
def test_dates_prices_isbns_and_versions_are_not_phone_numbers(text):
    assert [kind for kind, _ in found(text) if kind == "phone"] == []


def test_phone_regions_bound_national_formats():
    text = "Les bureaux répondent au 01 42 68 53 00 le matin."

    assert found(text, PiiParams(phone_regions=("US",))) == []


# --- payment cards, IBANs, SSNs, national identifiers ------------------------------------------------


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117"])
def test_luhn_valid_cards_of_a_network_are_found(card):
    assert found(f"Paid with card {card} yesterday.") == [("payment_card", card)]


@pytest.mark.parametrize(
    "text",
    [
        "Paid with card 4111 1111 1111 1112 yesterday.",  # Luhn fails
        "Tracking 9111111111111111 arrived.",  # Luhn passes, no network starts with 9
        "See facebook.com/page/posts/4111111111111111 now.",  # a URL path's number
        "Fax +49 30 212341 410 0",  # inside an international phone number (Luhn-valid, 13 digits)
    ],
)
def test_numbers_that_are_not_cards(text):
    assert [kind for kind, _ in found(text) if kind == "payment_card"] == []


@pytest.mark.parametrize("iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "gb82west12345698765432"])
def test_ibans_with_a_valid_check_are_found(iban):
    assert found(f"Transfer to {iban} by Friday.") == [("iban", iban)]


def test_an_iban_with_a_wrong_check_is_not_one_and_the_next_word_is_not_taken_along():
    assert found("Transfer to GB83 WEST 1234 5698 7654 32 by Friday.") == []
    assert found("IBAN DE89 3704 0044 0532 0130 00 and more") == [("iban", "DE89 3704 0044 0532 0130 00")]


def test_ssns_the_ssa_could_issue():
    assert found("SSN 536-90-4399 on file.") == [("us_ssn", "536-90-4399")]
    assert found("SSN 000-12-3456 on file.") == []  # area 000 is never issued
    assert found("social security number 536904399") == [("us_ssn", "536904399")]
    assert [k for k, _ in found("Invoice 536904399 paid.") if k == "us_ssn"] == []  # nine bare digits


def test_national_ids_with_letters_suffice_digits_alone_need_their_acronym():
    assert found("DNI 12345678Z, NIE X-1234567-L, codice fiscale RSSMRA85T10A562S.") == [
        ("national_id", "12345678Z"),
        ("national_id", "X-1234567-L"),
        ("national_id", "RSSMRA85T10A562S"),
    ]
    assert found("Mijn BSN is 111222333.") == [("national_id", "111222333")]
    assert found("Order 111222333 shipped.") == []  # passes BSN's check, no acronym
    assert found("Codice Fiscale 06598550587") == []  # digits alone: a company's VAT number


def test_national_id_formats_are_configurable_and_checked():
    assert found("DNI 12345678Z", PiiParams(national_ids=("nl.bsn",))) == []
    with pytest.raises(ValidationError, match="no python-stdnum module"):
        PiiParams(national_ids=("xx.nothing",))


# --- secrets and credentials in URLs -----------------------------------------------------------------


def test_api_keys_and_tokens_are_secrets():
    text = "aws AKIAIOSFODNN7EXAMPLE then token ghp_" + "a1" * 18 + " and a Slack xoxb-1234-5678-abcdef."

    assert [kind for kind, _ in found(text)] == ["secret", "secret", "secret"]
    assert found(text)[0] == ("secret", "AKIAIOSFODNN7EXAMPLE")


def test_a_private_key_is_one_span_from_begin_to_end():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq3x9\n-----END RSA PRIVATE KEY-----"

    assert found(f"my key:\n{key}\nthanks") == [("secret", key)]


def test_credentials_in_urls():
    text = "Clone ftp://deploy:s3cr3tPass@files.example.com/x or https://api.example.com/v1?lang=en&access_token=abcDEF123456789"

    assert found(text) == [("secret", "s3cr3tPass"), ("url_credential", "abcDEF123456789")]
    assert found("https://example.com/?key=en&sid=3") == []  # short values are settings


def test_long_prose_has_no_secret():
    assert found("The committee's extraordinary international meeting concluded peacefully. " * 50) == []


# --- spans and actions --------------------------------------------------------------------------------


def test_overlapping_spans_keep_the_longer_then_the_higher_priority():
    priority = tasks.pii.PRIORITY
    spans = [Span("us_ssn", 4, 15), Span("phone", 0, 15), Span("email", 20, 30), Span("secret", 20, 30)]

    assert resolve(spans, priority) == [Span("phone", 0, 15), Span("secret", 20, 30)]


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 8), st.sampled_from(list(ENTITY_TYPES))), max_size=6))
def test_replaced_spans_point_at_their_placeholders(raw):
    text = "abcdefghij" * 5
    spans = resolve(
        [Span(kind, start, min(start + length, len(text))) for start, length, kind in raw], tasks.pii.PRIORITY
    )
    placeholders = {kind: f"<{kind.upper()}>" for kind in ENTITY_TYPES}

    out, moved = replace(text, spans, placeholders)

    assert [out[s.start : s.end] for s in moved] == [placeholders[s.type] for s in spans]
    assert len(out) == len(text) + sum(len(placeholders[s.type]) - (s.end - s.start) for s in spans)


def test_redact_rewrites_text_and_counts_per_type():
    out = tasks.pii.run(table(["Mail a@b.io or c@d.io, call +44 20 7946 0018.", "Nothing here."]), P)

    assert out.kept.column("text").to_pylist() == ["Mail <EMAIL> or <EMAIL>, call <PHONE>.", "Nothing here."]
    assert out.kept.column("pii_email").to_pylist() == [2, 0]
    assert out.kept.column("pii_phone").to_pylist() == [1, 0]
    assert out.kept.column("pii_spans").to_pylist()[0][0] == {"type": "email", "start": 5, "end": 12}
    assert out.rejected.num_rows == 0


def test_tag_keeps_the_text_and_records_the_spans():
    text = "Mail a@b.io today."

    out = tasks.pii.run(table([text]), PiiParams(action="tag"))

    assert out.kept.column("text").to_pylist() == [text]
    assert out.kept.column("pii_spans").to_pylist() == [[{"type": "email", "start": 5, "end": 11}]]


def test_placeholders_are_configurable_for_enabled_types_only():
    params = PiiParams(placeholders={"email": "[mail]"})

    assert tasks.pii.run(table(["a@b.io"]), params).kept.column("text").to_pylist() == ["[mail]"]
    with pytest.raises(ValidationError, match="not in `types`"):
        PiiParams(types=("phone",), placeholders={"email": "[mail]"})


def test_detection_params_leave_out_what_only_acts_on_the_spans():
    acted = PiiParams(action="tag", placeholders={"email": "[mail]"})

    assert acted.detection_params() == P.detection_params()
    assert PiiParams(phone_regions=("US",)).detection_params() != P.detection_params()


def test_types_turned_off_are_null_and_the_schema_does_not_change():
    texts = ["Mail a@b.io, call +44 20 7946 0018."]
    only_email = tasks.pii.run(table(texts), PiiParams(types=("email",)))
    off = tasks.pii.run(table(texts), PiiParams(enabled=False))

    assert only_email.kept.column("pii_phone").to_pylist() == [None]
    assert only_email.kept.column("text").to_pylist() == ["Mail <EMAIL>, call +44 20 7946 0018."]
    assert off.kept.column("pii_email").to_pylist() == [None] and off.kept.column("text").to_pylist() == texts
    assert off.kept.schema == only_email.kept.schema == tasks.pii.run(table(texts), P).kept.schema


def test_unknown_phone_regions_are_refused():
    with pytest.raises(ValidationError, match="not regions libphonenumber knows"):
        PiiParams(phone_regions=("XX",))


# --- names and places through a spaCy pipeline --------------------------------------------------------


@pytest.fixture(scope="module")
def ner_pipeline(tmp_path_factory) -> str:
    """A spaCy pipeline saved to disk whose recognizer is a rule list: what `ner_model` loads, offline."""
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "PERSON", "pattern": "Ada Lovelace"},
            {"label": "GPE", "pattern": "London"},
            {"label": "ORG", "pattern": "Acme"},
        ]
    )
    path = tmp_path_factory.mktemp("ner") / "pipeline"
    nlp.to_disk(path)
    return str(path)


def test_person_and_location_come_from_the_named_pipeline(ner_pipeline):
    params = PiiParams(types=("email", "person", "location"), ner_model=ner_pipeline)
    texts = ["Ada Lovelace of Acme moved to London; write to ada@acme.example.", "Nobody here."]

    out = tasks.pii.run(table(texts), params)

    assert out.kept.column("text").to_pylist() == ["<PERSON> of Acme moved to <LOCATION>; write to <EMAIL>.", texts[1]]
    assert out.kept.column("pii_person").to_pylist() == [1, 0]
    assert found(texts[0], params) == [
        ("person", "Ada Lovelace"),
        ("location", "London"),
        ("email", "ada@acme.example"),
    ]


def test_the_ner_model_is_required_checked_and_keyed(ner_pipeline, tmp_path):
    with pytest.raises(ValidationError, match="person needs `ner_model`"):
        PiiParams(types=("person",))
    with pytest.raises(ValidationError, match="neither an installed spaCy pipeline nor a directory"):
        PiiParams(types=("person",), ner_model=str(tmp_path / "missing"))
    keyed = PiiParams(types=("person",), ner_model=ner_pipeline).detection_params()
    assert keyed != PiiParams(types=("person",), ner_model=str(tmp_path)).detection_params()


def test_long_texts_are_cut_into_pieces_with_offsets_kept(ner_pipeline):
    text = ("filler line\n" * 3000) + "Ada Lovelace\n"  # over one piece of `ner.CHUNK_CHARS`

    assert found(text, PiiParams(types=("person",), ner_model=ner_pipeline)) == [("person", "Ada Lovelace")]
