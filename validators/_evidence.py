"""Finding a proposal's quotes in the note: whitespace-normalised, exact offsets out.

A quote matches when it equals a stretch of the note after every run of whitespace (and the
typographic quotes and dashes that copy-paste produces) is normalised. Case is ignored only as a
fallback. Offsets given by the proposer must slice to the quote under the same normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NormalizedText", "Occurrence", "normalize_quote"]

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)


def _fold(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else ch


def normalize_quote(text: str, *, casefold: bool = False) -> str:
    """Collapse whitespace runs to one space, trim, map typographic quotes/dashes to ASCII."""
    out = " ".join(text.translate(_TRANSLATE).split())
    return "".join(_fold(c) for c in out) if casefold else out


@dataclass(frozen=True)
class Occurrence:
    """Where a quote sits in the original note (``note[start:end]``) and whether case had to be ignored."""

    start: int
    end: int
    case_insensitive: bool


class NormalizedText:
    """A note in normalised form with a map back to original offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        chars: list[str] = []
        index: list[int] = []
        pending_space = False
        for i, raw in enumerate(text.translate(_TRANSLATE)):
            if raw.isspace():
                pending_space = bool(chars)
                continue
            if pending_space:
                chars.append(" ")
                index.append(i - 1)
                pending_space = False
            chars.append(raw)
            index.append(i)
        self.norm = "".join(chars)
        self.folded = "".join(_fold(c) for c in self.norm)
        self._index = index

    def _span(self, nstart: int, nend: int) -> tuple[int, int]:
        return self._index[nstart], self._index[nend - 1] + 1

    def find_all(self, quote: str) -> list[Occurrence]:
        """Every occurrence of ``quote`` (exact after normalisation; case-insensitive if none)."""
        needle = normalize_quote(quote)
        if not needle:
            return []
        hits = self._scan(self.norm, needle, case_insensitive=False)
        if not hits:
            hits = self._scan(self.folded, normalize_quote(quote, casefold=True), case_insensitive=True)
        return hits

    def _scan(self, haystack: str, needle: str, *, case_insensitive: bool) -> list[Occurrence]:
        out: list[Occurrence] = []
        pos = haystack.find(needle)
        while pos != -1:
            start, end = self._span(pos, pos + len(needle))
            out.append(Occurrence(start, end, case_insensitive))
            pos = haystack.find(needle, pos + 1)
        return out

    def slices_to(self, start: int, end: int, quote: str) -> bool:
        """True when ``note[start:end]`` equals the quote after normalisation (case must match)."""
        if not (0 <= start < end <= len(self.text)):
            return False
        return normalize_quote(self.text[start:end]) == normalize_quote(quote) != ""


MAX_QUOTE_SPAN = 2_000
"""Evidence.text's limit: a quote whose whitespace-expanded span is longer is not used."""


def locate_quote(
    normalized: NormalizedText, text: str, start: int | None, end: int | None
) -> tuple[list[Occurrence], str]:
    """Where a quote is in the note: its offsets when they slice to it, else up to 20 verbatim occurrences.

    Returns no occurrence and the reason (empty quote, one offset without the other, offsets that do
    not slice to the quote, not found); never raises.
    """
    if not text.strip():
        return [], "empty quote"
    if (start is None) != (end is None):
        return [], "give both start and end offsets, or neither"
    if start is not None and end is not None:
        if end - start <= MAX_QUOTE_SPAN and normalized.slices_to(start, end, text):
            return [Occurrence(start, end, False)], ""
        return [], f"offsets {start}-{end} do not slice to the quote"
    found = [o for o in normalized.find_all(text) if o.end - o.start <= MAX_QUOTE_SPAN]
    if not found:
        return [], "quote not found verbatim in the note (whitespace-normalised, any case)"
    return found[:20], ""
