"""Stage 5: review. The review queue, the hash-chained audit log and the coder's hand-off to them.

``QueueRecorder`` takes the agent's finished runs into the ``ReviewQueue`` as charts (a
``CodingDecision`` each); coders accept, reject, replace and add codes and finalise charts, and
every change is one ``AuditLog`` record written in the same transaction. ``medcode queue`` and
``medcode audit`` are this stage's commands.
"""

from medcode.review._audit import (
    AuditLog,
    AuditRecord,
    CodingDecision,
    VerifyResult,
    audit_db_path,
    decision_payload,
)
from medcode.review._queue import (
    CHART_STATUSES,
    Chart,
    ChartAction,
    ChartCode,
    ChartStatus,
    ChartSummary,
    CodeAction,
    QueueMetrics,
    RateGroup,
    ReviewQueue,
    queue_db_path,
)
from medcode.review._recorder import QueueRecorder

__all__ = [
    "CHART_STATUSES",
    "AuditLog",
    "AuditRecord",
    "Chart",
    "ChartAction",
    "ChartCode",
    "ChartStatus",
    "ChartSummary",
    "CodeAction",
    "CodingDecision",
    "QueueMetrics",
    "QueueRecorder",
    "RateGroup",
    "ReviewQueue",
    "VerifyResult",
    "audit_db_path",
    "decision_payload",
    "queue_db_path",
]
