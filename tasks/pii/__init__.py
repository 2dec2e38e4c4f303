"""PII: find personal data per entity type, then redact it or tag it.

Two phases per shard, as `clean` has (`flows/stages/pii.py`):
- `detect` (`pii.spans`): every enabled detector over `text`; the spans, none overlapping, in
  `pii_found` (type, start, end in code points of the text as it came), and a count per type in
  `pii_<type>`. Keyed on what finds PII only (`PiiParams.detection_params`): a new placeholder or
  action detects nothing again.
- `apply` (`pii`): `redact` replaces each span by its type's placeholder; `tag` keeps the text as it
  was, so an audit sees what redaction would remove. Either way `pii_spans` locates the spans in the
  text the stage outputs (the placeholders, or the PII itself).

What runs offline, in every language: e-mail and public IP (as Dolma and FineWeb), phone numbers
(libphonenumber), payment cards (Luhn and issuer ranges), IBANs (mod-97), US SSNs and national
identifiers (python-stdnum validators), credentials and API keys (detect-secrets' patterns) and
credentials in URLs. Names and places (`person`, `location`) need a model: opt-in, through a spaCy
pipeline the user names (`tasks.pii.ner`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

import phonenumbers
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.contract import StageOutput, split_by_reason
from tasks.errors import ConfigError
from tasks.pii import ner, network, numbers, secrets
from tasks.pii.spans import Span, replace, resolve

__all__ = [
    "ENTITY_TYPES",
    "FOUND_COLUMN",
    "SPANS_COLUMN",
    "SPAN_TYPE",
    "PiiParams",
    "Span",
    "apply",
    "count_column",
    "detect",
    "detected_fields",
    "find",
    "run",
]

VERSION = 1  # bump when the same input + params give different output


class EntityType(NamedTuple):
    """One kind of PII: its default placeholder and its detector over a text under the params."""

    placeholder: str
    detect: Callable[[str, PiiParams], Iterable[tuple[int, int]]]


# The one registry. Where spans of equal length overlap, the earlier type wins (`spans.resolve`).
# Placeholders in the manner of Dolma's |||EMAIL_ADDRESS||| masks.
ENTITY_TYPES: dict[str, EntityType] = {
    "secret": EntityType("<SECRET>", lambda text, p: secrets.secrets(text)),
    "url_credential": EntityType("<URL_CREDENTIAL>", lambda text, p: network.url_credentials(text)),
    "email": EntityType("<EMAIL>", lambda text, p: network.emails(text)),
    "iban": EntityType("<IBAN>", lambda text, p: numbers.ibans(text)),
    "payment_card": EntityType("<PAYMENT_CARD>", lambda text, p: numbers.payment_cards(text)),
    "us_ssn": EntityType("<US_SSN>", lambda text, p: numbers.us_ssns(text)),
    "national_id": EntityType("<NATIONAL_ID>", lambda text, p: numbers.national_ids(text, p.national_ids)),
    "phone": EntityType("<PHONE>", lambda text, p: numbers.phones(text, p.phone_regions)),
    "ip_address": EntityType("<IP_ADDRESS>", lambda text, p: network.ip_addresses(text)),
    "person": EntityType("<PERSON>", lambda text, p: _named(text, p, "person")),
    "location": EntityType("<LOCATION>", lambda text, p: _named(text, p, "location")),
}
PRIORITY = {name: rank for rank, name in enumerate(ENTITY_TYPES)}
EntityName = Literal[tuple(ENTITY_TYPES)]  # the config accepts the registry's names, and only them
OFFLINE_TYPES = tuple(name for name in ENTITY_TYPES if name not in ner.NER_TYPES)  # the default

# Regions whose national formats are tried for a phone number written without "+": the EU's larger
# members and their neighbours, North America, and the other large English-, Spanish- and
# Portuguese-writing web regions. Order does not matter; each region costs one parse per candidate.
PHONE_REGIONS = (
    "US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "LU", "ES", "PT", "IT", "DK", "SE", "NO",
    "FI", "PL", "CZ", "HU", "GR", "AU", "NZ", "IN", "ZA", "BR", "MX", "AR",
)  # fmt: skip
# python-stdnum formats tried on candidate identifiers: national identity, tax and social security
# numbers of persons (not companies) with a check digit, from the same regions. Left out: pt.cc, whose
# validator accepts an 8-character "100000 m3".
NATIONAL_IDS = (
    "es.dni", "es.nie", "it.codicefiscale", "fr.nir", "de.idnr", "nl.bsn", "be.nn", "pl.pesel", "cz.rc",
    "se.personnummer", "dk.cpr", "fi.hetu", "no.fodselsnummer", "br.cpf", "in_.aadhaar",
)  # fmt: skip

SPAN_TYPE = pa.list_(pa.struct([("type", pa.string()), ("start", pa.int32()), ("end", pa.int32())]))


def count_column(entity: str) -> str:
    return f"pii_{entity}"


class PiiParams(BaseModel):
    """Which PII to find, where numbers are read as phone numbers and ids, and what to do with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Find PII (the count columns stay, null, when off).")
    types: tuple[EntityName, ...] = Field(
        OFFLINE_TYPES,
        description="Entity types to find: "
        + ", ".join(OFFLINE_TYPES)
        + " run offline with no model; person and location need `ner_model`.",
    )
    action: Literal["redact", "tag"] = Field(
        "redact",
        description="redact: replace each span by its placeholder; tag: keep the text and record the spans "
        "(`pii_spans`) for an audit.",
    )
    placeholders: dict[EntityName, str] = Field(
        default_factory=dict,
        description="Replacement text per type; unset types get <TYPE> ("
        + ", ".join(f"{name}: {t.placeholder}" for name, t in ENTITY_TYPES.items())
        + ").",
    )
    phone_regions: tuple[str, ...] = Field(
        PHONE_REGIONS,
        description="ISO 3166 regions whose national phone formats are tried (libphonenumber); "
        "numbers written with + are read in any region.",
    )
    ner_model: str | None = Field(
        None,
        description="spaCy pipeline for person and location: an installed package name (en_core_web_lg) "
        "or a pipeline directory. Needs the `ner` extra; nothing is downloaded.",
    )
    national_ids: tuple[str, ...] = Field(
        NATIONAL_IDS,
        description="python-stdnum formats of national identifiers, by module under `stdnum` "
        '("es.dni", "in_.aadhaar").',
    )

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(regions) - phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            raise ValueError(f"not regions libphonenumber knows: {unknown}")
        return regions

    @field_validator("national_ids")
    @classmethod
    def _known_formats(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        for name in formats:
            try:
                numbers.id_validator(name)
            except ImportError:
                raise ValueError(f"no python-stdnum module stdnum.{name}") from None
        return formats

    @model_validator(mode="after")
    def _ner_model_when_named_types(self) -> PiiParams:
        named = [entity for entity in self.types if entity in ner.NER_TYPES]
        if named and self.enabled:
            if self.ner_model is None:
                verb = "needs" if len(named) == 1 else "need"
                raise ValueError(f"{' and '.join(named)} {verb} `ner_model`, a spaCy pipeline")
            try:
                ner.check_model(self.ner_model)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return self

    @model_validator(mode="after")
    def _placeholders_of_enabled_types(self) -> PiiParams:
        unused = sorted(set(self.placeholders) - set(self.types))
        if unused:
            raise ValueError(f"placeholders for types not in `types`: {unused}")
        return self

    def placeholder(self, entity: str) -> str:
        return self.placeholders.get(entity, ENTITY_TYPES[entity].placeholder)

    def detection_params(self) -> PiiParams:
        """These params less what only acts on the spans: what `pii.spans` is keyed on."""
        return self.model_copy(update={"action": "redact", "placeholders": {}})


def find(text: str, params: PiiParams, named: list[tuple[str, int, int]] | None = None) -> list[Span]:
    """The PII spans of one text, in text order, none overlapping. `named`: its person and location
    spans, when the caller ran the recognizer over many texts at once."""
    spans = [
        Span(entity, start, end)
        for entity in params.types
        if named is None or entity not in ner.NER_TYPES
        for start, end in ENTITY_TYPES[entity].detect(text, params)
    ]
    spans += [Span(*span) for span in named or ()]
    return resolve(spans, PRIORITY)


def _named(text: str, params: PiiParams, entity: str) -> list[tuple[int, int]]:
    return [(start, end) for _, start, end in ner.entities([text], params.ner_model, (entity,))[0]]


FOUND_COLUMN = "pii_found"  # the spans in the text as `pii` was given it
SPANS_COLUMN = "pii_spans"  # the spans in the text as `pii` outputs it


def detected_fields() -> list[pa.Field]:
    """The columns `detect` appends, in order (the same for any params and data)."""
    return [pa.field(FOUND_COLUMN, SPAN_TYPE)] + [pa.field(count_column(name), pa.int32()) for name in ENTITY_TYPES]


def detect(table: pa.Table, params: PiiParams) -> StageOutput:
    """The `pii.spans` phase: every document's spans and counts per type; rejects nothing."""
    texts = [text or "" for text in table.column("text").to_pylist()]
    wanted = tuple(entity for entity in params.types if entity in ner.NER_TYPES)
    named = ner.entities(texts, params.ner_model, wanted) if wanted and params.enabled else [None] * len(texts)
    found = [find(text, params, spans) if params.enabled else [] for text, spans in zip(texts, named)]
    columns = {FOUND_COLUMN: [[span._asdict() for span in spans] for spans in found]}
    for entity in ENTITY_TYPES:
        on = params.enabled and entity in params.types
        columns[count_column(entity)] = (
            [sum(span.type == entity for span in spans) for spans in found] if on else [None] * len(texts)
        )
    for field in detected_fields():
        table = table.append_column(field, pa.array(columns[field.name], field.type))
    return _nothing_rejected(table)


def apply(table: pa.Table, params: PiiParams) -> StageOutput:
    """The `pii` phase: redact (text rewritten, `pii_spans` on the placeholders) or tag (text kept,
    `pii_spans` as found). Reads `text` and `pii_found` only."""
    found = table.column(FOUND_COLUMN)
    if params.action == "tag" or not params.enabled:
        return _nothing_rejected(table.append_column(SPANS_COLUMN, found))
    placeholders = {entity: params.placeholder(entity) for entity in ENTITY_TYPES}
    texts, spans_out = [], []
    for text, spans in zip(table.column("text").to_pylist(), found.to_pylist()):
        if spans:
            text, moved = replace(text, [Span(**span) for span in spans], placeholders)
            spans = [span._asdict() for span in moved]
        texts.append(text)
        spans_out.append(spans)
    index = table.schema.get_field_index("text")
    table = table.set_column(index, table.schema.field(index), pa.array(texts, table.schema.field(index).type))
    return _nothing_rejected(table.append_column(pa.field(SPANS_COLUMN, SPAN_TYPE), pa.array(spans_out, SPAN_TYPE)))


def run(table: pa.Table, params: PiiParams) -> StageOutput:
    """Both phases on one table (what the flow does in two cached steps): tests and benches."""
    return apply(detect(table, params.detection_params()).kept, params)


def _nothing_rejected(table: pa.Table) -> StageOutput:
    return split_by_reason(table, pa.nulls(table.num_rows, pa.string()))
