"""Assertion status of quoted evidence with medspaCy's ConText (rules in ``data/context_rules.json``).

The note is tokenised and sentence-split once (medspaCy tokenizer + PyRuSH); ConText then matches
its modifier rules over the whole note. A quote is judged by its *content runs*: the stretches of
the quote between modifier phrases ("denies | chest pain", "type 2 diabetes | without |
complications"). Each run gets the categories of every modifier whose scope covers it, whether
the modifier sits inside the quote or around it. The caller picks the run that carries the code's
concept. Sections named by ``retrieval.segment_note`` add a category (a Family History section
makes every run FAMILY).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["AssertionDetector", "ContentRun", "SpanAssertion"]

_NOT_MODIFYING = frozenset({"TERMINATE", "PSEUDO"})
_CACHED_DOCS = 8


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


class AssertionDetector:
    """Loads the medspaCy pipeline once; ``analyse`` is thread-safe.

    Raises ``ConfigError`` when the rules file is invalid.
    """

    def __init__(self, rules_resource: str = "data/context_rules.json") -> None:
        from medcode.errors import ConfigError

        _silence_loguru()
        import medspacy
        from medspacy.context import ConText, ConTextRule

        text = resources.files("medcode.validators").joinpath(rules_resource).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
            rules = [ConTextRule.from_dict(r) for r in data["context_rules"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"invalid ConText rules file validators/{rules_resource}: {exc}") from None
        self.version: str = str(data.get("version", "unversioned"))
        self._nlp: Any = medspacy.load(medspacy_enable=["medspacy_pyrush"])
        self._context: Any = ConText(self._nlp, rules=None, input_span_type="group", span_group_name="medcode_targets")
        self._context.add(rules)
        self._lock = threading.Lock()
        # The last few notes' parsed docs: validating many proposals against one note (a coder's edits,
        # an evaluation's swaps) parses it once. Keyed by the text itself; never logged.
        self._docs: OrderedDict[str, tuple[Any, list[Any]]] = OrderedDict()

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
                        run.categories.setdefault(modifier.category, doc[a:b].text)
            out.append(SpanAssertion(start, end, runs, sent.start_char, sent.end_char, section))
        return out

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
