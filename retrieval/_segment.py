"""Note segmentation: section headers, sentences, clauses and list items, with exact offsets.

Header labels come from ``retrieval/data/section_headers.json`` (rules as data). Every segment
satisfies ``text[seg.start:seg.end] == seg.text``; segments never overlap and come in text order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from medcode.retrieval._models import Segment

__all__ = ["SECTION_NAMES", "section_headers", "segment_note", "split_mentions"]

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
_BULLET = re.compile(
    r"\s*(?:[\u2022\u2023\u25aa\u25cf\u25e6\u00b7*\-\u2013\u2014>]+|\(?\d{1,3}[.)]|\(?[a-zA-Z][)])(?=\s|$)\s*"
)
_INLINE_HEADER = re.compile(r"\s*#*\s*([A-Za-z][A-Za-z /&\-]{0,48}?)\s*:\s*")
_WS = re.compile(r"\s+")
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace.
_SENT_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
_ABBREV = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "vs",
        "e.g",
        "i.e",
        "etc",
        "approx",
        "no",
        "st",
        "fig",
        "mg",
        "ml",
        "dl",
        "pt",
        "pts",
        "hx",
        "dx",
        "tx",
        "rx",
        "sx",
        "fx",
        "yo",
        "y.o",
        "cf",
        "al",
        "inc",
        "jr",
        "sr",
        "min",
        "max",
        "wk",
        "wks",
        "mo",
        "mos",
        "yr",
        "yrs",
        "q",
        "b.i.d",
        "t.i.d",
        "q.i.d",
        "p.o",
    ]
)
_LIST_SECTIONS = frozenset(
    {"past_medical_history", "medications", "allergies", "family_history", "assessment_plan", "social_history"}
)
# A list item that qualifies the one before it: a side, alone or with a body site ("left ankle", "bilateral",
# "right lower extremity"; not "right hemiparesis"), or a 7th-character encounter ("initial encounter", "sequela").
_SITE = (
    r"(?:ankle|knee|hip|shoulder|elbow|wrist|hand|foot|feet|toe|finger|thumb|eye|ear|arm|leg|side|sided|breast|"
    r"kidney|lung|thigh|calf|heel|forearm|upper|lower|extremity|limb|lobe|ovary|testis|buttock|groin)s?"
)
_QUALIFIER = re.compile(
    rf"(?:(?:left|right|bilateral|bilat|lt|rt)(?:\s+{_SITE}){{0,2}}|(?:initial|subsequent)\s+(?:encounter|visit)"
    r"|sequelae?)[.;]?$",
    re.IGNORECASE,
)
_MAX_SENTENCE = 200
_CLAUSE_TARGET = 150


@lru_cache(maxsize=1)
def section_headers() -> dict[str, str]:
    """Header label (lower case, single spaces) -> normalised section name."""
    raw = resources.files("medcode.retrieval").joinpath("data/section_headers.json").read_text(encoding="utf-8")
    table: dict[str, list[str]] = json.loads(raw)["sections"]
    return {_WS.sub(" ", label.strip().lower()): section for section, labels in table.items() for label in labels}


SECTION_NAMES: tuple[str, ...] = (*sorted(set(section_headers().values())), "other")


def _label(text: str) -> str:
    return _WS.sub(" ", text.strip().strip("#").strip().rstrip(":.").strip().lower())


def _trim(text: str, start: int, end: int) -> tuple[int, int, bool]:
    """Shrink [start, end) past whitespace and a leading bullet marker; say if there was a bullet."""
    while start < end and text[start].isspace():
        start += 1
    bullet = _BULLET.match(text, start, end)
    had_bullet = bool(bullet and bullet.end() > start)
    if bullet and had_bullet:
        start = bullet.end()
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end, had_bullet


def _has_word(text: str, start: int, end: int) -> bool:
    return any(ch.isalnum() for ch in text[start:end])


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    begin = start
    for match in _SENT_END.finditer(text, start, end):
        stop = match.end()
        # The word before the punctuation: skip abbreviations and initials ("Dr.", "J. Smith").
        word_start = match.start()
        while word_start > begin and not text[word_start - 1].isspace():
            word_start -= 1
        word = text[word_start : match.start()].lower().strip("(\"'")
        if match.group().startswith(".") and (word in _ABBREV or (len(word) == 1 and word.isalpha())):
            continue
        nxt = stop
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt < end and text[nxt].islower():
            continue
        out.append((begin, stop))
        begin = stop
    out.append((begin, end))
    return out


def _split_at(text: str, start: int, end: int, sep: str) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    begin = start
    pos = text.find(sep, start, end)
    while pos != -1:
        pieces.append((begin, pos))
        begin = pos + len(sep)
        pos = text.find(sep, begin, end)
    pieces.append((begin, end))
    return pieces


def _pack(pieces: list[tuple[int, int]], target: int) -> list[tuple[int, int]]:
    """Merge neighbouring pieces while the merged span stays under ``target`` characters."""
    packed: list[tuple[int, int]] = []
    for start, end in pieces:
        if packed and end - packed[-1][0] <= target:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def _join_qualifiers(text: str, items: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join to the item before it a list item that only qualifies it: "Sprain of ankle ligament, left ankle,
    initial encounter" is one diagnosis (its side and encounter), not three."""
    out: list[tuple[int, int]] = []
    for start, end in items:
        if out and _QUALIFIER.match(text[start:end].strip()):
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _clauses(text: str, start: int, end: int, section: str) -> list[tuple[int, int]]:
    """Split a long sentence at ';' then ',', and list-like lines into items."""
    length = end - start
    commas = text.count(",", start, end)
    if section in _LIST_SECTIONS and commas >= 2:
        items = _split_at(text, start, end, ",")
        sizes = [e - s for s, e in items]
        if max(sizes) <= 60 and sum(sizes) / len(sizes) <= 40:
            return _join_qualifiers(text, items)
    if length <= _MAX_SENTENCE:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    for s, e in _split_at(text, start, end, ";"):
        if e - s <= _MAX_SENTENCE:
            out.append((s, e))
        else:
            out.extend(_pack(_split_at(text, s, e, ", "), _CLAUSE_TARGET))
    return out


_MENTION_SPLIT = re.compile(
    r"[,;:()\[\]]|\s(?:and|or|but|who|which|that|whereas|while|because|since|although|then|so|plus|as well as|"
    r"with|complaining of|compatible with|consistent with|suggestive of|presented with|presenting with|showed|"
    r"shows|showing|revealed|reveals|diagnosed with|diagnosis of|due to|secondary to)\s",
    re.IGNORECASE,
)
_MENTION_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "by",
        "from",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "has",
        "had",
        "have",
        "he",
        "she",
        "it",
        "they",
        "his",
        "her",
        "their",
        "this",
        "that",
        "patient",
        "pt",
        "also",
        "no",
        "not",
        "any",
        "some",
        "and",
        "or",
        "as",
        "which",
        "who",
        "there",
        "then",
        "very",
        "well",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_MAX_MENTIONS = 12


def split_mentions(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sub-spans of ``text[start:end]`` split at punctuation and clause words (``,`` ``;`` ``and`` ...).

    Returns ``[]`` when the span does not split into at least two pieces with a content word.
    Offsets index ``text``; pieces keep at most ``12`` per span, in order.
    """
    stop = len(text) if end is None else end
    pieces: list[tuple[int, int]] = []
    begin = start
    for match in _MENTION_SPLIT.finditer(text, start, stop):
        pieces.append((begin, match.start()))
        begin = match.end()
    pieces.append((begin, stop))
    out: list[tuple[int, int]] = []
    for s, e in pieces:
        while s < e and (text[s].isspace() or text[s] in ".-*"):
            s += 1
        while e > s and (text[e - 1].isspace() or text[e - 1] in ".-*"):
            e -= 1
        words = [w.lower() for w in _WORD.findall(text, s, e)]
        if any(w not in _MENTION_STOP for w in words):
            out.append((s, e))
    if len(out) < 2:
        return []
    return out[:_MAX_MENTIONS]


@dataclass
class _Block:
    start: int
    end: int
    section: str


def segment_note(text: str) -> list[Segment]:
    """Split a note into sections and sentences/clauses/list items with exact character offsets.

    Never raises on odd input: empty or whitespace-only text gives ``[]``; CRLF, bullets,
    numbered lists and text without punctuation are handled. Header lines themselves are not
    segments; an inline header ("PMH: HTN, DM2") switches the section for its own content.
    Text before the first recognised header is in section ``"other"``.
    """
    headers = section_headers()
    section = "other"
    # Blocks: runs of lines that belong together (a wrapped paragraph), as (start, end, section).
    blocks: list[_Block] = []
    prev_open = False  # previous line ended without terminal punctuation and may continue
    for match in _LINE.finditer(text):
        line_start, line_end = match.start(), match.end()
        if line_start == line_end:
            break
        content_end = line_end
        while content_end > line_start and text[content_end - 1] in "\r\n":
            content_end -= 1
        s, e, is_bullet = _trim(text, line_start, content_end)
        if s >= e:
            prev_open = False
            continue
        if not is_bullet:
            label = _label(text[s:e])
            if label in headers and e - s <= 60:
                section = headers[label]
                prev_open = False
                continue
            inline = _INLINE_HEADER.match(text, s, e)
            if inline and _label(inline.group(1)) in headers:
                section = headers[_label(inline.group(1))]
                s = inline.end()
                prev_open = False
                if s >= e:
                    continue
        if prev_open and not is_bullet and blocks and text[s].islower() and blocks[-1].section == section:
            blocks[-1].end = e
        else:
            blocks.append(_Block(s, e, section))
        prev_open = text[e - 1] not in ".!?:;"
    segments: list[Segment] = []
    for block in blocks:
        for sent_start, sent_end in _sentences(text, block.start, block.end):
            for c_start, c_end in _clauses(text, sent_start, sent_end, block.section):
                s, e, _ = _trim(text, c_start, c_end)
                if s < e and _has_word(text, s, e):
                    segments.append(Segment(id=len(segments), start=s, end=e, text=text[s:e], section=block.section))
    return segments
