"""Specificity: does a code's evidence support the words that set it apart from its siblings?

Code texts include their ancestors' words, so SPAN_UNRELATED cannot tell E11.65 (with
hyperglycemia) from E11.9 (without complications), a right-side code from its left-side twin, or
an initial encounter from a subsequent one. This module compares a code with its *family*, found
in the code set itself (no per-code lists):

* the billable codes of its category with the same 7th character: E11.65 -> every E11 code;
  S52.531A -> the S52 codes ending in A;
* its 7th-character variants (A/D/S ...) for the encounter axis;
* the same subcode in a category of the block whose description shares most of its stems
  (E11.65 <-> E10.65: the diabetes type).

Each description and each evidence text is *read* the same way (``data/specificity.json``): side
words, acuity phrases and trimesters as axis values; the rest as signed Porter stems (words under
'without'/'no'/'not' are negative), with numbers bound to the word before them (``stage_3a``,
``type_2``). What distinguishes a code from a family member is the difference of their readings.

``SpecificityAnalyser.analyse`` returns ``Finding`` objects; ``_rules.py`` turns them into rule
results. How it fails: a paraphrase the lexicon does not know reads as silence, never as a
contradiction, so the rules miss rather than reject; a text that names two sides or two acuities
is ambiguous and never contradicts either. Findings never quote the note: they name lexicon values
and code-set descriptions only.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from medcode.codesets import CodeRecord, ICD10CMCodeSet, strip_dot

__all__ = ["Finding", "NoteContext", "Reading", "SpecificityAnalyser", "SpecificityLexicon"]

_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?[a-z]?|[,;:.!?()]")
_PAREN = re.compile(r"\([^)]*\)")
_NEGATED_CLAUSE = re.compile(r"\b(?:without|not|no)\b[^,;]*")
_BOUNDARY = frozenset(",;:.!?()")
# Porter maps "esophagitis" and "esophageal" to one stem; inflammations keep their whole word.
_KEEP_WHOLE = ("itis", "osis", "iasis")
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u2013": "-", "\u2014": "-", "\u00a0": " "})
_CLASS_OF_MEANING = (("initial encounter", "initial"), ("subsequent encounter", "subsequent"), ("sequela", "sequela"))

RuleKind = Literal[
    "SPECIFICITY_UNSUPPORTED",
    "LATERALITY_CONFLICT",
    "ENCOUNTER_CONFLICT",
    "MORE_SPECIFIC_AVAILABLE",
    "DOCUMENTATION_GAP",
]


@dataclass(frozen=True)
class Finding:
    """One specificity problem of one code. ``rule`` is its rule id; ``suggestions`` are better codes."""

    rule: RuleKind
    severity: Literal["reject", "warn"]
    reason: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reading:
    """What a text states: signed stems ("+stem", "-stem") and axis values."""

    signed: frozenset[str]
    sides: frozenset[str]
    acuity: frozenset[str]
    trimester: frozenset[str]

    @property
    def positive(self) -> frozenset[str]:
        return frozenset(t[1:] for t in self.signed if t[0] == "+")

    @property
    def negative(self) -> frozenset[str]:
        return frozenset(t[1:] for t in self.signed if t[0] == "-")


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(p.lower()) for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])")


class SpecificityLexicon:
    """The parsed ``specificity.json``, ``encounter_cues.json``, ``complication_cues.json`` and ``cdi_queries.json``.

    Raises ``KeyError``/``TypeError``/``re.error`` on a malformed table (the caller wraps them in
    ``ConfigError``).
    """

    def __init__(self, lexicon: dict[str, Any], encounter: dict[str, Any], cues: dict[str, Any], cdi: dict[str, Any]):
        self.stopwords = frozenset(lexicon["stopwords"])
        self.catch_all_words = frozenset(lexicon["catch_all"])
        self.weak_words = frozenset(lexicon["weak"])
        self.negation_cues = frozenset(lexicon["negation_cues"])
        self.negation_stops = frozenset(lexicon["negation_stops"])
        self.uncomplicated = frozenset(lexicon["uncomplicated"])
        self.numbered_words = frozenset(lexicon["numbered_words"])
        self.roman = {str(k): str(v) for k, v in lexicon["roman_numerals"].items()}
        self.equivalents: dict[str, str] = {}
        for group in lexicon["equivalents"]:
            for word in group:
                self.equivalents[word] = group[0]
        self.side_patterns = {value: _phrase_pattern(words) for value, words in lexicon["sides"].items()}
        self.side_letter_need = frozenset(lexicon["side_single_letters_need"])
        self.acuity_order = list(lexicon["acuity"])
        self.acuity_patterns = {value: _phrase_pattern(words) for value, words in lexicon["acuity"].items()}
        self.axis_names = {word: axis for axis, words in lexicon["axis_names"].items() for word in words}
        tri = lexicon["trimester"]
        self.trimester_patterns = {value: _phrase_pattern(words) for value, words in tri["phrases"].items()}
        self.weeks = re.compile(tri["weeks_pattern"], re.IGNORECASE)
        self.second_from_week = int(tri["second_from_week"])
        self.third_from_week = int(tri["third_from_week"])
        self.twin_overlap = float(lexicon["twin_overlap"])
        self.member_overlap = float(lexicon["member_overlap"])
        self.hit_share = float(lexicon["hit_share"])
        self.max_suggestions = int(lexicon["max_suggestions"])
        classes = encounter["classes"]
        self.encounter_explicit = {c: _phrase_pattern(v["explicit"]) for c, v in classes.items()}
        self.encounter_suggestive = {c: _phrase_pattern(v["explicit"] + v["suggestive"]) for c, v in classes.items()}
        self.encounter_sections = frozenset(encounter["note_sections"])
        self.cue_phrases = {str(k): _phrase_pattern(v) for k, v in cues["cues"].items() if not k.startswith("_")}
        self.cdi_axes = list(cdi["axes"])
        self.cdi_templates = {str(k): str(v) for k, v in cdi["templates"].items()}


@dataclass
class _Member:
    record: CodeRecord
    reading: Reading
    clause: frozenset[str]  # stems of its 'with ...' clauses (what it asserts beyond its head)
    catch_all: bool


@dataclass
class _Family:
    code: _Member
    members: list[_Member]
    variants: list[CodeRecord]  # 7th-character variants of the same base
    encounter: str | None


@dataclass
class NoteContext:
    """A note read once per validation: its reading, its lines' readings and its sections."""

    text: str
    lower: str
    reading: Reading
    lines: list[Reading]
    sections: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class _Evidence:
    reading: Reading
    line_text: str
    note: NoteContext


class SpecificityAnalyser:
    """Compares a code with its family on the evidence. Thread-safe; families are cached per code.

    ``stem`` maps a lower-case word to its stem; ``expand`` returns the text with abbreviations and
    lay terms expanded (None when nothing changed).
    """

    def __init__(
        self, lexicon: SpecificityLexicon, stem: Callable[[str], str], expand: Callable[[str], str | None]
    ) -> None:
        self.lex = lexicon
        self._stem_word = stem
        self._expand = expand
        self._stems: dict[str, str] = {}
        self._skip = frozenset(
            self.stem(w)
            for w in lexicon.catch_all_words | {"right", "left", "bilateral", "acute", "chronic", "subacute", "on"}
        )
        self._weak_stems = frozenset(self.stem(w) for w in lexicon.weak_words)
        self._side_stems = {self.stem(w): w for w in ("right", "left", "bilateral")}
        self._acuity_stems = frozenset(self.stem(w) for w in ("acute", "chronic", "subacute", "on"))
        self._catch_stems = frozenset(self.stem(w) for w in lexicon.catch_all_words)
        self._families: dict[str, _Family] = {}
        self._categories: dict[str, tuple[str, ...]] = {}  # billable codes of a category, per release
        self._members: dict[str, _Member] = {}
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------
    def stem(self, word: str) -> str:
        cached = self._stems.get(word)
        if cached is None:
            word = self.lex.equivalents.get(word, word)
            cached = word if word.endswith(_KEEP_WHOLE) else self._stem_word(word)
            if len(self._stems) < 50_000:
                self._stems[word] = cached
        return cached

    def read(self, text: str, *, description: bool = False) -> Reading:
        """Signed stems and axis values of a description (parentheses dropped) or of note text (expanded)."""
        low = text.translate(_TRANSLATE).lower()
        if description:
            low = _PAREN.sub(" ", low).replace("\t", " ")
        else:
            expanded = self._expand(text)
            if expanded and expanded.lower() != low:
                low = f"{low} ; {expanded.translate(_TRANSLATE).lower()}"
        # a description's acuity is what it asserts: "without acute cor pulmonale" is not acute
        asserted = _NEGATED_CLAUSE.sub(" ", low) if description else low
        return Reading(
            signed=frozenset(self._signed(low)),
            sides=frozenset(self._sides(low)),
            acuity=frozenset(self._phrases(asserted, self.lex.acuity_patterns, self.lex.acuity_order)),
            trimester=frozenset(self._trimesters(low, weeks=not description)),
        )

    def _signed(self, low: str) -> list[str]:
        lex = self.lex
        tokens = _TOKEN.findall(low.replace("-", " "))
        out: list[str] = []
        negative = False
        last_word: str | None = None  # the last numbered word, for number binding
        since_word = 99
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            i += 1
            since_word += 1
            if tok in _BOUNDARY:
                negative = False
                since_word = 99
                continue
            if tok in lex.negation_cues:
                negative = True
                continue
            if tok in lex.negation_stops:
                negative = False
                continue
            if tok in lex.uncomplicated:
                out.append("-" + self.stem("complications"))
                continue
            if tok == "non" and i < len(tokens) and tokens[i].isalpha():
                tok = "non" + tokens[i]
                i += 1
            number = tok[0].isdigit() or (tok in lex.roman and last_word is not None and since_word <= 1)
            if number:
                value = lex.roman.get(tok, tok)
                if "." in value:
                    value = value.split(".")[0]
                if last_word is not None and since_word <= 2:
                    out.append(f"{'-' if negative else '+'}{last_word}_{value}")
                    since_word = 0  # ranges: "32.0-32.9" binds both ends
                else:
                    out.append(f"{'-' if negative else '+'}{value}")
                continue
            if tok in lex.stopwords:
                continue
            stem = self.stem(tok)
            out.append(f"{'-' if negative else '+'}{stem}")
            if tok in lex.numbered_words:
                last_word, since_word = tok, 0
        return out

    def _sides(self, low: str) -> set[str]:
        found: set[str] = set()
        for value, pattern in self.lex.side_patterns.items():
            for match in pattern.finditer(low):
                word = match.group(0)
                if len(word) == 1:  # "r"/"l" only before a body part: "R knee"
                    after = re.match(r"\s*([a-z]+)", low[match.end() :])
                    if after is None or after.group(1) not in self.lex.side_letter_need:
                        continue
                found.add(value)
        return found

    @staticmethod
    def _phrases(low: str, patterns: dict[str, re.Pattern[str]], order: list[str]) -> set[str]:
        found: set[str] = set()
        taken: list[tuple[int, int]] = []
        for value in order:
            for match in patterns[value].finditer(low):
                if any(match.start() < e and match.end() > s for s, e in taken):
                    continue
                taken.append(match.span())
                found.add(value)
        return found

    def _trimesters(self, low: str, *, weeks: bool) -> set[str]:
        found = {v for v, p in self.lex.trimester_patterns.items() if p.search(low)}
        if weeks:
            for match in self.lex.weeks.finditer(low):
                week = int(match.group(1))
                if 1 <= week <= 45:
                    found.add(
                        "third"
                        if week >= self.lex.third_from_week
                        else "second"
                        if week >= self.lex.second_from_week
                        else "first"
                    )
        return found

    # -- the family ----------------------------------------------------------------------
    def _member(self, record: CodeRecord) -> _Member:
        key = f"{record.release}:{record.code}"
        with self._lock:
            cached = self._members.get(key)
        if cached is not None:
            return cached
        reading = self.read(record.description, description=True)
        clause: set[str] = set()
        low = _PAREN.sub(" ", record.description.lower())
        parts = re.split(r"\bwith\b", low)
        if len(parts) > 1:
            head = {t[1:] for t in self._signed(parts[0])}
            for part in parts[1:]:
                clause |= {t[1:] for t in self._signed(part) if t[0] == "+"} - head
        words = set(re.findall(r"[a-z]+", low))
        member = _Member(record, reading, frozenset(clause), bool(words & {"unspecified", "nos"}))
        with self._lock:
            if len(self._members) > 100_000:
                self._members.clear()
            self._members[key] = member
        return member

    def _member_of(self, code: str, release: str, codeset: ICD10CMCodeSet) -> _Member:
        """A family member by code: from the cache without reading its record again."""
        with self._lock:
            cached = self._members.get(f"{release}:{code}")
        return cached if cached is not None else self._member(codeset.get(code))

    def _category_codes(self, record: CodeRecord, codeset: ICD10CMCodeSet) -> tuple[str, ...]:
        """The billable codes of the record's category, read once per release and category."""
        key = f"{record.release}:{record.category}"
        with self._lock:
            cached = self._categories.get(key)
        if cached is None:
            cached = tuple(codeset.billable_descendants(record.category, limit=50_000))
            with self._lock:
                if len(self._categories) > 5_000:
                    self._categories.clear()
                self._categories[key] = cached
        return cached

    def family(self, record: CodeRecord, codeset: ICD10CMCodeSet) -> _Family:
        key = f"{record.release}:{record.code}"
        with self._lock:
            cached = self._families.get(key)
        if cached is not None:
            return cached
        nodot = strip_dot(record.code)
        seventh = record.seventh.character if record.seventh is not None and record.kind == "extension" else None
        codes = [
            c
            for c in self._category_codes(record, codeset)
            if c != record.code and (strip_dot(c)[6:7] or None) == seventh
        ]
        members = [self._member_of(c, record.release, codeset) for c in codes[:2_000]]
        if len(nodot) > 3:
            mine = self.read(codeset.get(nodot[:3]).description, description=True).positive
            start, _, end = record.block.partition("-")
            for n in range(100):
                category = f"{start[0]}{n:02d}"
                if category < start or category > (end or start) or category == nodot[:3] or category not in codeset:
                    continue
                twin = f"{category}.{nodot[3:]}"
                if twin not in codeset or not codeset.is_billable(twin):
                    continue
                theirs = self.read(codeset.get(category).description, description=True).positive
                if len(mine & theirs) >= self.lex.twin_overlap * len(mine | theirs):
                    members.append(self._member(codeset.get(twin)))
        variants = [codeset.get(c) for c in codeset.children(record.parent)] if seventh and record.parent else []
        encounter = _encounter_class(record)
        family = _Family(self._member(record), members, [v for v in variants if v.code != record.code], encounter)
        with self._lock:
            if len(self._families) > 20_000:
                self._families.clear()
            self._families[key] = family
        return family

    # -- checks --------------------------------------------------------------------------
    def note_context(self, note: str, sections: list[tuple[int, int, str]]) -> NoteContext:
        """Read a note once for all the codes of a proposal."""
        lines = [self.read(line) for line in note.splitlines() if line.strip()]
        return NoteContext(note, note.lower(), self.read(note), lines, sections)

    def evidence(self, spans: Sequence[tuple[int, int]], note: NoteContext) -> _Evidence:
        """The reading of a code's supported spans and the text of their lines."""
        text = note.text
        lines = []
        for s, e in spans:
            left = text.rfind("\n", 0, s) + 1
            right = text.find("\n", e)
            lines.append(text[left : right if right != -1 else len(text)])
        return _Evidence(self.read(" ; ".join(text[s:e] for s, e in spans)), " ; ".join(lines).lower(), note)

    def analyse(
        self,
        record: CodeRecord,
        codeset: ICD10CMCodeSet,
        ev: _Evidence,
        *,
        index_names: Callable[[CodeRecord], bool | None] | None = None,
    ) -> list[Finding]:
        """Findings for one code (rejecting ones first); empty when the evidence fits the code.

        ``index_names(record)`` tells whether a quote of the evidence names an Alphabetic Index term leading to
        that code (None: the Index has no term for it). When one names a term leading to this code
        ('Hemianopia (heteronymous)' H53.47 on 'bitemporal hemianopia') and none names a term leading to the
        family member that shares more of its words (H53.40 'Unspecified visual field defects', which has
        terms), the Index has chosen the code for those words, and the member does not contradict it on the
        type/site axis.
        """
        fam = self.family(record, codeset)
        findings: list[Finding] = []
        findings += self._laterality(fam, ev)
        findings += self._encounter(fam, ev)
        findings += self._acuity(fam, ev)
        findings += self._trimester(fam, ev)
        findings += self._contradicted(fam, ev, index_names)
        findings += self._undocumented(fam, ev)
        if not any(f.severity == "reject" for f in findings):
            findings += self._more_specific_or_gap(fam, ev)
        return findings

    def _describe(self, codes: Iterable[CodeRecord]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.code for r in codes))[: self.lex.max_suggestions]

    def _laterality(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        code = fam.code
        sides = code.reading.sides
        if len(sides) != 1 or not ev.reading.sides:
            return []
        side = next(iter(sides))
        if not any(m.reading.sides and m.reading.sides != sides for m in fam.members):
            return []
        stated = set(ev.reading.sides)
        if {"right", "left"} <= stated:
            stated.add("bilateral")
        if "bilateral" in stated and not any("bilateral" in m.reading.sides for m in fam.members):
            stated |= {"right", "left"}  # no bilateral code in the family: both sides are coded
        if side in stated:
            return []
        better = [
            m.record
            for m in fam.members
            if m.reading.signed - self._sided(m) == code.reading.signed - self._sided(code) and m.reading.sides & stated
        ]
        said = " and ".join(sorted(ev.reading.sides))
        return [
            Finding(
                "LATERALITY_CONFLICT",
                "reject",
                f"{code.record.code} ({code.record.description}) is a {side} code but its evidence states {said}",
                self._describe(better),
            )
        ]

    def _sided(self, member: _Member) -> frozenset[str]:
        return frozenset(t for t in member.reading.signed if t[1:] in self._side_stems)

    def _encounter(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        mine = fam.encounter
        if mine is None or not fam.variants:
            return []
        explicit = {c for c, p in self.lex.encounter_explicit.items() if p.search(ev.line_text)}
        if explicit and mine not in explicit:
            return [self._encounter_finding(fam, explicit, "reject", "its evidence")]
        if explicit:
            return []
        note_text = (
            " ".join(ev.note.lower[s:e] for s, e, name in ev.note.sections if name in self.lex.encounter_sections)
            or ev.note.lower
        )
        hinted = {c for c, p in self.lex.encounter_suggestive.items() if p.search(note_text)}
        if hinted and mine not in hinted and not self.lex.encounter_suggestive[mine].search(ev.note.lower):
            return [self._encounter_finding(fam, hinted, "warn", "the note")]
        return []

    def _encounter_finding(
        self, fam: _Family, classes: set[str], severity: Literal["reject", "warn"], where: str
    ) -> Finding:
        record = fam.code.record
        meaning = (record.seventh.meaning or "") if record.seventh else ""
        mine = set(meaning.split())
        better = sorted(
            (v for v in fam.variants if _encounter_class(v) in classes),
            key=lambda v: -len(mine & set(((v.seventh.meaning or "") if v.seventh else "").split())),
        )
        best: dict[str | None, CodeRecord] = {}
        for v in better:
            best.setdefault(_encounter_class(v), v)
        said = " or ".join(sorted(classes))
        return Finding(
            "ENCOUNTER_CONFLICT",
            severity,
            f"{record.code}'s 7th character {record.seventh.character if record.seventh else '?'} means {meaning}, "
            f"but {where} describes a {said} encounter",
            self._describe(best.values()),
        )

    def _acuity(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        code = fam.code
        mine = code.reading.acuity
        stated = set(ev.reading.acuity)
        if len(mine) != 1 or not stated:
            return []
        if not any(m.reading.acuity and m.reading.acuity != mine for m in fam.members):
            return []
        value = next(iter(mine))
        if {"acute", "chronic"} <= stated:
            stated.add("acute_on_chronic")
        ok = {
            "acute": "acute" in stated and "acute_on_chronic" not in ev.reading.acuity,
            "chronic": "chronic" in stated and "acute_on_chronic" not in ev.reading.acuity,
            "acute_on_chronic": "acute_on_chronic" in stated,
            "subacute": "subacute" in stated,
        }.get(value, True)
        if ok:
            return []
        if value in ("acute", "chronic") and {"acute", "chronic"} <= set(ev.reading.acuity):
            return []  # both named apart: ambiguous, not a contradiction

        def rest(m: _Member) -> frozenset[str]:
            return frozenset(t for t in m.reading.signed if t[1:] not in self._acuity_stems)

        better = [m.record for m in fam.members if rest(m) == rest(code) and m.reading.acuity & set(ev.reading.acuity)]
        said = " and ".join(v.replace("_", " ") for v in sorted(ev.reading.acuity))
        return [
            Finding(
                "SPECIFICITY_UNSUPPORTED",
                "reject",
                f"acuity: {code.record.code} ({code.record.description}) is {value.replace('_', ' ')} "
                f"but its evidence states {said}",
                self._describe(better),
            )
        ]

    def _trimester(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        code = fam.code
        mine = code.reading.trimester
        if len(mine) != 1:
            return []
        stated = ev.reading.trimester or ev.note.reading.trimester
        if not stated or mine & stated or len(stated) > 1:
            return []
        where = "its evidence" if ev.reading.trimester else "the note"
        tri_stems = {self.stem(w) for w in ("first", "second", "third", "trimester")}

        def rest(m: _Member) -> frozenset[str]:
            return frozenset(t for t in m.reading.signed if t[1:] not in tri_stems)

        better = [m.record for m in fam.members if rest(m) == rest(code) and m.reading.trimester & stated]
        return [
            Finding(
                "SPECIFICITY_UNSUPPORTED",
                "reject",
                f"trimester: {code.record.code} ({code.record.description}) is for the {next(iter(mine))} trimester "
                f"but {where} dates the pregnancy in the {next(iter(stated))}",
                self._describe(better),
            )
        ]

    def _content(self, signed: Iterable[str]) -> set[str]:
        """Signed stems that can distinguish codes: no side, acuity, catch-all or stop words."""
        return {t for t in signed if t[1:] not in self._skip}

    def _axis(self, tokens: Iterable[str]) -> str:
        names: Counter[str] = Counter()
        stems = {self.stem(w): axis for w, axis in self.lex.axis_names.items()}
        for t in tokens:
            body = t[1:]
            if t[0] == "-":
                names["complication"] += 1
            word = body.split("_")[0]
            if word in stems:
                names[stems[word]] += 2
            elif body in stems:
                names[stems[body]] += 2
            elif "_" in body:
                names["stage"] += 1
        return names.most_common(1)[0][0] if names else "type or site"

    def _contradicted(
        self, fam: _Family, ev: _Evidence, index_names: Callable[[CodeRecord], bool | None] | None = None
    ) -> list[Finding]:
        code = fam.code
        stated = ev.reading.signed
        weak = self._weak_stems
        mine = self._content(code.reading.signed)
        # The code says 'without X' where the evidence states X, or 'with X' where it states 'without X'.
        direct = sorted(
            {t[1:] for t in mine if t[0] == "-" and "+" + t[1:] in stated and "+" + t[1:] not in mine}
            | {s for s in code.clause if "-" + s in stated and "+" + s not in stated and "-" + s not in mine}
        )
        if direct:
            return [
                Finding(
                    "SPECIFICITY_UNSUPPORTED",
                    "reject",
                    f"complication: {code.record.code} ({code.record.description}) says with/without where its "
                    f"evidence says the opposite",
                    self._describe(
                        m.record
                        for m in fam.members
                        if not m.catch_all
                        and self._content(m.reading.signed) <= self._content(stated) | {"+" + s for s in m.clause}
                        and any(("+" + d) in m.reading.signed or ("-" + d) in m.reading.signed for d in direct)
                    ),
                )
            ]
        better: list[tuple[int, _Member, set[str]]] = []
        for member in fam.members:
            theirs = self._content(member.reading.signed)
            if len(theirs & mine) < self.lex.member_overlap * min(len(theirs), len(mine)):
                continue  # another condition of the category, not another value of an axis
            only_theirs, only_mine = theirs - mine, mine - theirs
            hits = only_theirs & stated
            strong = {t for t in only_theirs if t[1:] not in weak or t[0] == "-"}
            strong_hits = strong & hits
            if not strong_hits or len(strong_hits) < self.lex.hit_share * len(strong):
                continue  # one shared modifier ("elevated") is not the member's concept
            if not only_mine or any(_loosely_in(t, stated) for t in only_mine):
                continue  # the code is documented as well, or the member only refines it
            if any(t[0] == "+" and "-" + t[1:] in stated for t in only_theirs & hits):
                continue
            better.append((len(hits), member, only_theirs | only_mine))
        if not better or (
            index_names is not None
            and index_names(code.record)
            and all(index_names(b[1].record) is False for b in better)
        ):
            return self._contradicted_by_note(fam, ev)
        better.sort(key=lambda b: (-b[0], b[1].record.code))
        axis = self._axis(better[0][2])
        return [
            Finding(
                "SPECIFICITY_UNSUPPORTED",
                "reject",
                f"{axis}: the evidence documents what sets {better[0][1].record.code} "
                f"({better[0][1].record.description}) apart, not what sets {code.record.code} "
                f"({code.record.description}) apart",
                self._describe(b[1].record for b in better),
            )
        ]

    def _contradicted_by_note(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        """A code that says 'without' (E11.9, J45.40 uncomplicated) where a line of the note that names the same
        condition documents everything a family member adds (E11.22: 'with diabetic chronic kidney disease').

        A catch-all code ('unspecified') only gets MORE_SPECIFIC_AVAILABLE: it is less specific, not wrong.
        """
        code = fam.code
        mine = self._content(code.reading.signed)
        if not any(t[0] == "-" for t in mine):
            return []
        head = {t for t in mine if t[0] == "+" and t[1:] not in self._weak_stems}
        lines = [line for line in ev.note.lines if 3 * len(head & line.signed) >= 2 * len(head) > 0]
        for line in lines:
            stated = line.signed
            for member in fam.members:
                theirs = self._content(member.reading.signed)
                if len(theirs & mine) < self.lex.member_overlap * min(len(theirs), len(mine)):
                    continue
                only_theirs, only_mine = theirs - mine, mine - theirs
                strong = {t for t in only_theirs if t[0] == "+" and t[1:] not in self._weak_stems}
                if not strong or not strong <= stated or any(_loosely_in(t, stated) for t in only_mine):
                    continue
                if code.catch_all:
                    return [
                        Finding(
                            "MORE_SPECIFIC_AVAILABLE",
                            "warn",
                            f"{code.record.code} is less specific than the note documents: consider "
                            f"{member.record.code} ({member.record.description})",
                            self._describe([member.record]),
                        )
                    ]
                return [
                    Finding(
                        "SPECIFICITY_UNSUPPORTED",
                        "reject",
                        f"{self._axis(only_theirs | only_mine)}: the note documents what sets {member.record.code} "
                        f"({member.record.description}) apart, which {code.record.code} ({code.record.description}) "
                        "says is absent",
                        self._describe([member.record]),
                    )
                ]
        return []

    def _undocumented(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        """A 'with ...' clause (a complication) that neither the evidence nor the note names."""
        code = fam.code
        weak = self._weak_stems
        clause = {s for s in code.clause if s not in weak and not s[0].isdigit() and "_" not in s}
        clause -= self._skip
        if not clause:
            return []
        if not any(not (clause & m.clause) for m in fam.members):
            return []  # every member says it: not what sets this code apart
        seen = ev.reading.positive | ev.note.reading.positive
        if clause & seen:
            return []
        for word, pattern in self.lex.cue_phrases.items():
            if self.stem(word) in clause and any(
                not self._negated_before(ev.note.lower, m.start()) for m in pattern.finditer(ev.note.lower)
            ):
                return []
        return [
            Finding(
                "SPECIFICITY_UNSUPPORTED",
                "reject",
                f"complication: {code.record.code} ({code.record.description}) asserts a complication that neither "
                "its evidence nor the note documents",
                self._describe(self._without_clause(fam, ev)),
            )
        ]

    def _without_clause(self, fam: _Family, ev: _Evidence) -> list[CodeRecord]:
        """Family members with no undocumented 'with' clause, closest to the evidence first (E11.9 for E11.65)."""
        stated = self._content(ev.reading.signed)
        seen = ev.reading.positive | ev.note.reading.positive
        fitting = [
            m
            for m in fam.members
            if not m.catch_all and not (m.clause - self._weak_stems - seen) and self._content(m.reading.signed) & stated
        ]
        fitting.sort(key=lambda m: (len(self._content(m.reading.signed) - stated), m.record.code))
        return [m.record for m in fitting]

    def _negated_before(self, low: str, start: int) -> bool:
        """A negation cue between the start of the clause and ``start`` ("denies chest pain")."""
        left = max(low.rfind(ch, 0, start) for ch in ".;:\n")
        words = re.findall(r"[a-z]+", low[left + 1 : start])
        return any(w in self.lex.negation_cues for w in words)

    def _refinements(self, fam: _Family) -> list[tuple[_Member, set[str]]]:
        """Members that say everything the code says and more (ignoring catch-all words), with the extra."""
        mine = {t for t in fam.code.reading.signed if t[1:] not in self._catch_stems}
        out = []
        for m in fam.members:
            theirs = {t for t in m.reading.signed if t[1:] not in self._catch_stems}
            if mine <= theirs and theirs - mine:
                out.append((m, theirs - mine))
        return out

    def _related_lines(self, fam: _Family, ev: _Evidence) -> list[Reading]:
        """The note's lines that name the code's condition (a strong stem of its description)."""
        core = {
            t[1:]
            for t in fam.code.reading.signed
            if t[0] == "+" and t[1:] not in self._skip and t[1:] not in self._weak_stems and "_" not in t
        }
        return [line for line in ev.note.lines if line.positive & core]

    def _more_specific_or_gap(self, fam: _Family, ev: _Evidence) -> list[Finding]:
        code = fam.code
        refinements = self._refinements(fam)
        if not refinements:
            return []
        related = self._related_lines(fam, ev)
        note_sides = {side for line in related for side in line.sides}
        for where, stated, sides in (
            ("its evidence", ev.reading.signed, ev.reading.sides),
            ("the note", None, note_sides),
        ):
            if {"right", "left"} <= sides:
                sides = sides | {"bilateral"}
            fitting = []
            for member, extra in refinements:
                member_sides = {self._side_stems[t[1:]] for t in extra if t[1:] in self._side_stems}
                rest = {t for t in extra if t[1:] not in self._side_stems}
                if stated is None and rest:
                    continue  # from the note only the side, not other details, counts
                if member_sides and not member_sides & sides:
                    continue
                if stated is not None and not rest <= stated:
                    continue
                fitting.append((len(extra), member))
            if fitting:
                fitting.sort(key=lambda f: (-f[0], f[1].record.code))
                best = [m.record for n, m in fitting if n == fitting[0][0]]
                names = ", ".join(f"{r.code} ({r.description})" for r in best[:3])
                if stated is not None and not code.catch_all and not code.reading.sides:
                    # Not a catch-all: a sibling that says all it says and more, all of it documented, is
                    # the code ("Nausea" cited on "nausea and vomiting" is R11.2, not R11.0).
                    extra = set().union(*(e for m, e in refinements if m.record.code == best[0].code))
                    return [
                        Finding(
                            "SPECIFICITY_UNSUPPORTED",
                            "reject",
                            f"{self._axis(extra)}: the evidence also documents what sets {names} apart from "
                            f"{code.record.code} ({code.record.description})",
                            self._describe(best),
                        )
                    ]
                return [
                    Finding(
                        "MORE_SPECIFIC_AVAILABLE",
                        "warn",
                        f"{code.record.code} is less specific than {where} documents: consider {names}",
                        self._describe(best),
                    )
                ]
        if not code.catch_all:
            return []
        return self._gap(fam, ev, refinements, related, note_sides)

    def _gap(
        self,
        fam: _Family,
        ev: _Evidence,
        refinements: list[tuple[_Member, set[str]]],
        related: list[Reading],
        note_sides: set[str],
    ) -> list[Finding]:
        """DOCUMENTATION_GAP: a query for each axis the family distinguishes that the note leaves open."""
        code = fam.code
        queries: list[str] = []
        for axis in self.lex.cdi_axes:
            options: list[str] = []
            if axis == "laterality" and not ev.reading.sides and not note_sides:
                options = self._side_options(refinements)
            elif axis == "acuity" and not ev.reading.acuity and not any(line.acuity for line in related):
                found_acuity = {a for m, _ in refinements for a in m.reading.acuity} - set(code.reading.acuity)
                options = [a.replace("_", " ") for a in sorted(found_acuity)] if len(found_acuity) >= 2 else []
            elif axis == "type":
                # one representative per type: refinements grouped by their extra words apart from side and
                # acuity, the group's shortest description standing for it (I50.20 for the systolic codes)
                groups: dict[frozenset[str], list[tuple[int, CodeRecord]]] = {}
                for m, extra in refinements:
                    rest = frozenset(
                        t
                        for t in extra
                        if t[0] == "+"
                        and t[1:] not in self._skip
                        and t[1:] not in m.clause
                        and t[1:] not in self._weak_stems
                    )
                    if rest:
                        groups.setdefault(rest, []).append((len(extra), m.record))
                seen = ev.reading.positive.union(*(line.positive for line in related))
                words = {t[1:] for rest in groups for t in rest}
                if len(groups) >= 2 and not words & (seen - code.reading.positive):
                    ranked = sorted(groups.values(), key=lambda g: (-len(g), min(g, key=lambda x: x[0])[0]))
                    options = [
                        f"{r.description} ({r.code})"
                        for r in (min(g, key=lambda x: (x[0], x[1].code))[1] for g in ranked[:4])
                    ]
            template = self.lex.cdi_templates.get(axis)
            if options and template:
                queries.append(
                    template.format(
                        code=code.record.code,
                        description=code.record.description,
                        options=("; " if axis == "type" else ", ").join(options),
                    )
                )
        if not queries:
            return []
        return [Finding("DOCUMENTATION_GAP", "warn", " ".join(queries), ())]

    def _side_options(self, refinements: list[tuple[_Member, set[str]]]) -> list[str]:
        """Sides the family tells apart for the same condition: two refinements equal but for the side word."""
        by_rest: dict[frozenset[str], set[str]] = {}
        for _, extra in refinements:
            sides = {self._side_stems[t[1:]] for t in extra if t[1:] in self._side_stems}
            if len(sides) == 1:
                rest = frozenset(t for t in extra if t[1:] not in self._side_stems)
                by_rest.setdefault(rest, set()).update(sides)
        found: set[str] = set()
        for sides in by_rest.values():
            if len(sides) >= 2:
                found |= sides
        return sorted(found) if len(found) >= 2 else []


def _loosely_in(token: str, stated: frozenset[str]) -> bool:
    """``token``, or a word of the same sign that one of them begins ("+allergi" ~ "+allerg"; 5+ letters)."""
    if token in stated:
        return True
    body = token[1:]
    if len(body) < 5 or not body.isalpha():
        return False
    return any(
        s[0] == token[0] and s[1:].isalpha() and len(s) >= 6 and (s.startswith(token) or token.startswith(s))
        for s in stated
    )


def _encounter_class(record: CodeRecord) -> str | None:
    if record.seventh is None or record.seventh.meaning is None or record.kind != "extension":
        return None
    for phrase, cls in _CLASS_OF_MEANING:
        if record.seventh.meaning.startswith(phrase):
            return cls
    return None
