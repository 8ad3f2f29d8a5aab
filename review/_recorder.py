"""``QueueRecorder``: the review stage's end of the hand-off from the coder.

The agent stage hands each finished ``CodingRun`` to a ``Recorder``; this one turns it into a
``CodingDecision`` and stores it as a chart in the review queue, with its audit record written
in the same transaction.
"""

from __future__ import annotations

from medcode.agent import CodingRun
from medcode.config import Settings
from medcode.review._audit import CodingDecision
from medcode.review._queue import ReviewQueue

__all__ = ["QueueRecorder"]


class QueueRecorder:
    """Records coding runs into the review queue and audit log of the settings' data directory.

    ``record`` returns the chart id (an existing one when the same note gave the same result
    before) and raises ``StoreError`` when the store cannot be written.
    """

    def __init__(self, settings: Settings, *, queue: ReviewQueue | None = None) -> None:
        self._owns_queue = queue is None
        self.queue = queue if queue is not None else ReviewQueue(settings)

    def record(self, run: CodingRun) -> int | None:
        return self.queue.enqueue(CodingDecision.from_run(run))

    def close(self) -> None:
        """Close the queue's connections when this recorder opened it."""
        if self._owns_queue:
            self.queue.close()
