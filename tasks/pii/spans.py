"""Spans of detected PII in a text, the choice among overlapping ones, and their replacement.

Offsets are Python string indices (code points), end exclusive, as `str` slicing takes them.
"""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """One detected entity: its type (`tasks.pii.ENTITY_TYPES`) and where it lies in the text."""

    type: str
    start: int
    end: int


def resolve(spans: list[Span], priority: dict[str, int]) -> list[Span]:
    """The spans to act on, in text order, none overlapping another.

    Where two overlap, the longer wins (the international phone number "+81 158-23-2012" over the SSN
    its last part looks like), then the type earlier in `priority` (a URL's password is a secret before
    it is anything else), then the earlier span.
    """
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, priority[s.type], s.start)):
        if all(span.end <= other.start or other.end <= span.start for other in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def replace(text: str, spans: list[Span], placeholders: dict[str, str]) -> tuple[str, list[Span]]:
    """`text` with each span replaced by its type's placeholder, and the placeholders' spans in it.

    `spans` must not overlap (`resolve`) and be in text order."""
    pieces, moved, at, shift = [], [], 0, 0
    for span in spans:
        placeholder = placeholders[span.type]
        pieces += (text[at : span.start], placeholder)
        start = span.start + shift
        moved.append(Span(span.type, start, start + len(placeholder)))
        shift += len(placeholder) - (span.end - span.start)
        at = span.end
    pieces.append(text[at:])
    return "".join(pieces), moved
