"""``QueueRecorder``: the review stage's end of the hand-off from the coder.

The agent stage hands each finished ``CodingRun`` to a ``Recorder``; this one turns it into a
``CodingDecision`` and stores it as a chart in the review queue, with its audit record written
in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from medcode.agent import CodingRun
from medcode.config import Settings
from medcode.review._audit import CodingDecision
from medcode.review._queue import ReviewQueue

__all__ = ["QueueRecorder", "stored_note_id"]

_IDENTIFIER = re.compile(r"\d")


def stored_note_id(settings: Settings, note_id: str | None) -> str | None:
    """The note id as the review database and audit log keep it.

    With ``note_id_key`` set, an id that looks like an identifier (it holds a digit: an MRN, an encounter
    or accession number) becomes ``nid:`` and the first 32 hex digits of its HMAC-SHA256 under that key, so
    the same id always maps to the same value (charts of one note stay together) but cannot be read back or
    guessed without the key. Ids without a digit, and every id when no key is set, are kept as given.
    """
    if note_id is None or settings.note_id_key is None or not _IDENTIFIER.search(note_id):
        return note_id
    key = settings.note_id_key.get_secret_value().encode("utf-8")
    digest = hmac.new(key, note_id.encode("utf-8", errors="surrogatepass"), hashlib.sha256).hexdigest()
    return "nid:" + digest[:32]


class QueueRecorder:
    """Records coding runs into the review queue and audit log of the settings' data directory.

    ``record`` returns the chart id (an existing one when the same note gave the same result
    before) and raises ``StoreError`` when the store cannot be written.
    """

    def __init__(self, settings: Settings, *, queue: ReviewQueue | None = None) -> None:
        self.settings = settings
        self._owns_queue = queue is None
        self.queue = queue if queue is not None else ReviewQueue(settings)

    def record(self, run: CodingRun) -> int | None:
        decision = CodingDecision.from_run(run)
        decision.note_id = stored_note_id(self.settings, decision.note_id)
        return self.queue.enqueue(decision)

    def close(self) -> None:
        """Close the queue's connections when this recorder opened it."""
        if self._owns_queue:
            self.queue.close()
