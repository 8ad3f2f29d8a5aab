"""Assertion status of quoted evidence with medspaCy's ConText (rules in ``data/context_rules.json``).

The note is tokenised and sentence-split once (medspaCy tokenizer + PyRuSH); ConText then matches
its modifier rules over the whole note. A quote is judged by its *content runs*: the stretches of
the quote between modifier phrases ("denies | chest pain", "type 2 diabetes | without |
complications"). Each run gets the categories of every modifier whose scope covers it, whether
the modifier sits inside the quote or around it. The caller picks the run that carries the code's
concept. Sections named by ``retrieval.segment_note`` add a category (a Family History section
makes every run FAMILY).

Three corrections to ConText's scopes, two from the note's layout and one from the rules file:

* a modifier never reaches across a line break that starts a new item (a bullet, a number, a capital
  letter) or a blank line, and a modifier with a token window (``max_scope``) never reaches across
  a sentence end either: PyRuSH keeps "Will monitor for\nPneumonia, right lower lobe" in one
  sentence;
* a header line that ends in a colon and names a category ("Denies:", "Negative for:", listed in
  ``assertion_policy.json`` ``list_headers``) gives that category to the bulleted or numbered lines
  under it, up to a blank line or a line that is not a list item;
* ``scope_limits`` in the rules file: a trigger listed under ``breaks`` does not reach over those tokens
  ("atrial fibrillation, normal blood count"), and an ``attributive`` trigger followed by a content word
  qualifies what follows it up to a punctuation mark ("negative nitrites"), otherwise only what precedes it
  ("HIV negative"; not "leukocytosis" in "leukocytosis with normal formula").
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from itertools import takewhile
from typing import Any

__all__ = ["AssertionDetector", "ContentRun", "SpanAssertion"]

_NOT_MODIFYING = frozenset({"TERMINATE", "PSEUDO"})
_JOINERS = frozenset({"-", "/"})  # punctuation inside a term ("Bence-Jones"), not a clause break
_CACHED_DOCS = 8
# A line break that starts a new item: a bullet, a numbered item, a capital letter, or a blank line.
_ITEM_BREAK = re.compile(r"\n[ \t]*(?:\n|[-*\u2022\u25cf\u25aa\u2013\u2014>]|\d{1,3}[.)]\s|\(?[a-zA-Z][)]\s|[A-Z])")
# A sentence end: . ! ? followed by whitespace and a capital letter, a digit or a bullet, or run on to a
# capitalised word ("fever.Cellulitis", which PyRuSH keeps in one sentence).
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9\-*\u2022])|(?<=[a-z])[.!?](?=[A-Z][a-z])")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*\u2022\u25cf\u25aa\u2013\u2014>]|\d{1,3}[.)]|\(?[a-zA-Z][)])[ \t]+\S")
_HEADER_LINE = re.compile(r"[ \t]*(?:[-*\u2022#]+[ \t]*)?(?P<label>[A-Za-z][A-Za-z /,'-]{0,60}?)[ \t]*:[ \t]*$")


@dataclass
class ContentRun:
    """A stretch of a quote outside modifier phrases, with the modifiers that cover it."""

    start: int
    end: int
    text: str
    categories: dict[str, str] = field(default_factory=dict)  # category -> modifier text (or "section:<name>")


@dataclass
class SpanAssertion:
    """ConText's view of one quote: its runs, sentence and section."""

    start: int
    end: int
    runs: list[ContentRun]
    sentence_start: int
    sentence_end: int
    section: str | None = None


def _silence_loguru() -> None:
    """PyRuSH logs DEBUG lines (with text) through loguru; notes must never reach a log."""
    from loguru import logger

    for name in ("PyRuSH", "PyFastNER", "quicksectx", "medspacy"):
        logger.disable(name)


def _rule(cls: Any, spec: dict[str, Any]) -> Any:
    """A ConTextRule from its JSON form, with ``terminated_by`` (which medspaCy's ``from_dict`` does not read)."""
    spec = dict(spec)
    terminated_by = spec.pop("terminated_by", None)
    rule = cls.from_dict(spec)
    if terminated_by is not None:
        rule.terminated_by = {str(category).upper() for category in terminated_by}
    return rule


class AssertionDetector:
    """Loads the medspaCy pipeline once; ``analyse`` is thread-safe.

    Raises ``ConfigError`` when the rules file is invalid.
    """

    def __init__(
        self, rules_resource: str = "data/context_rules.json", list_headers: dict[str, list[str]] | None = None
    ) -> None:
        from medcode.errors import ConfigError

        _silence_loguru()
        import medspacy
        from medspacy.context import ConText, ConTextRule

        text = resources.files("medcode.validators").joinpath(rules_resource).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
            rules = [_rule(ConTextRule, r) for r in data["context_rules"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"invalid ConText rules file validators/{rules_resource}: {exc}") from None
        self.version: str = str(data.get("version", "unversioned"))
        limits = data.get("scope_limits", {})
        try:
            self._breaks: dict[str, frozenset[str]] = {
                k.lower(): frozenset(w.lower() for w in v) for k, v in limits.get("breaks", {}).items()
            }
            self._attributive = frozenset(w.lower() for w in limits.get("attributive", []))
            self._function_words = frozenset(w.lower() for w in limits.get("function_words", []))
        except (AttributeError, TypeError) as exc:
            raise ConfigError(f"invalid scope_limits in validators/{rules_resource}: {exc}") from None
        self._nlp: Any = medspacy.load(medspacy_enable=["medspacy_pyrush"])
        self._context: Any = ConText(self._nlp, rules=None, input_span_type="group", span_group_name="medcode_targets")
        self._context.add(rules)
        self._lock = threading.Lock()
        # The last few notes' parsed docs: validating many proposals against one note (a coder's edits,
        # an evaluation's swaps) parses it once. Keyed by the text itself; never logged.
        self._docs: OrderedDict[str, tuple[Any, list[Any]]] = OrderedDict()
        self._list_headers = {
            " ".join(label.lower().split()): category
            for category, labels in (list_headers or {}).items()
            for label in labels
        }

    def analyse(
        self, note: str, spans: list[tuple[int, int]], sections: list[tuple[int, int, str]] | None = None
    ) -> list[SpanAssertion]:
        """Assertion for each ``(start, end)`` span of ``note`` (offsets into the note).

        ``sections`` are ``(start, end, name)`` ranges; a span inside one gets its name. Never
        raises for odd spans: a span that covers no token yields one run with no categories.
        """
        with self._lock:
            cached = self._docs.get(note)
            if cached is None:
                doc = self._nlp(note)
                doc.spans["medcode_targets"] = []
                self._context(doc)
                cached = (doc, list(doc._.context_graph.modifiers))
                self._docs[note] = cached
                while len(self._docs) > _CACHED_DOCS:
                    self._docs.popitem(last=False)
            else:
                self._docs.move_to_end(note)
            doc, modifiers = cached
        section_map = sections or []
        item_breaks = [m.start() for m in _ITEM_BREAK.finditer(note)]
        sentence_ends = sorted(item_breaks + [m.start() for m in _SENTENCE_END.finditer(note)])
        lists = self._list_regions(note)
        out: list[SpanAssertion] = []
        for start, end in spans:
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is None or len(span) == 0:
                out.append(SpanAssertion(start, end, [ContentRun(start, end, note[start:end])], start, end))
                continue
            sent = span[0].sent
            section = next((name for s, e, name in section_map if s <= start < e), None)
            runs = self._runs(doc, span, modifiers)
            for run in runs:
                run_span = doc.char_span(run.start, run.end, alignment_mode="expand")
                for modifier in modifiers:
                    if modifier.category not in _NOT_MODIFYING and run_span is not None and modifier.modifies(run_span):
                        a, b = modifier.modifier_span
                        trigger = doc[a:b]
                        gap = (min(trigger.end_char, run.start), max(trigger.start_char, run.end))
                        breaks = sentence_ends if modifier.max_scope is not None else item_breaks
                        if any(gap[0] <= pos < gap[1] for pos in breaks):
                            continue  # the scope ran over a line item or a sentence end
                        if self._limited(doc, modifier, run):
                            continue
                        run.categories.setdefault(modifier.category, trigger.text)
                for start_, end_, category, trigger_text in lists:
                    if start_ <= run.start < end_:
                        run.categories.setdefault(category, trigger_text)
            out.append(SpanAssertion(start, end, runs, sent.start_char, sent.end_char, section))
        return out

    def _limited(self, doc: Any, modifier: Any, run: ContentRun) -> bool:
        """Whether ``scope_limits`` keep the modifier off the run: a break token between them, or an
        attributive trigger reaching the wrong way (see the module docstring)."""
        literal = str(modifier.rule.literal).lower()
        a, b = modifier.modifier_span
        follows = run.start >= doc[b - 1].idx + len(doc[b - 1].text)
        if follows:  # the tokens after the trigger, up to the run
            between = list(takewhile(lambda t: t.idx < run.start, doc[b:]))
        else:  # the tokens before the trigger, back to the run
            between = list(takewhile(lambda t: t.idx >= run.end, reversed(doc[:a])))
        if any(t.lower_ in self._breaks.get(literal, ()) for t in between):
            return True
        if literal in self._attributive:
            # Before a content word the trigger qualifies what follows, up to punctuation ("negative nitrites",
            # "normal blood count"); otherwise what precedes it ("HIV negative", "gait normal").
            attributive = b < len(doc) and doc[b].text[:1].isalpha() and doc[b].lower_ not in self._function_words
            if follows:
                return not attributive or any(t.is_punct and t.text not in _JOINERS for t in between)
            return attributive
        return False

    def _list_regions(self, note: str) -> list[tuple[int, int, str, str]]:
        """``(start, end, category, header)`` for the list items under a header such as "Denies:"."""
        if not self._list_headers:
            return []
        regions: list[tuple[int, int, str, str]] = []
        lines: list[tuple[int, str]] = []
        offset = 0
        for line in note.split("\n"):
            lines.append((offset, line))
            offset += len(line) + 1
        i = 0
        while i < len(lines):
            start, text = lines[i]
            header = _HEADER_LINE.match(text)
            label = " ".join(header.group("label").lower().split()) if header else ""
            category = self._list_headers.get(label) or self._list_headers.get(label.split(",")[-1].strip())
            i += 1
            if not category or not header:
                continue
            end = None
            while i < len(lines) and _LIST_ITEM.match(lines[i][1]):
                end = lines[i][0] + len(lines[i][1])
                i += 1
            if end is not None:
                regions.append((start + len(text), end, category, header.group("label").strip()))
        return regions

    @staticmethod
    def _runs(doc: Any, span: Any, modifiers: list[Any]) -> list[ContentRun]:
        """Split a span at modifier phrases and punctuation-only gaps into content runs."""
        covered: set[int] = set()
        for modifier in modifiers:
            a, b = modifier.modifier_span
            if a < span.end and b > span.start:
                covered.update(range(a, b))
        runs: list[ContentRun] = []
        current: list[Any] = []

        def flush() -> None:
            content = [t for t in current if not (t.is_punct or t.is_space)]
            if content and any(t.is_alpha or t.like_num for t in content):
                first, last = content[0], content[-1]
                s, e = first.idx, last.idx + len(last.text)
                runs.append(ContentRun(s, e, doc.text[s:e]))
            current.clear()

        for token in span:
            if token.i in covered or token.text in {";", ",", ".", ":"} or token.is_space:
                flush()
            else:
                current.append(token)
        flush()
        if not runs:
            runs.append(ContentRun(span.start_char, span.end_char, span.text))
        return runs
