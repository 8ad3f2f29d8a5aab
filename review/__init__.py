"""Stage 5: review. The review queue, the hash-chained audit log and the coder's hand-off to them.

``QueueRecorder`` takes the agent's finished runs into the ``ReviewQueue`` as charts (a
``CodingDecision`` each); coders accept, reject, replace and add codes and finalise charts. Codes a
coder adds or substitutes go through the validators when the queue has them (``CodeCheck``,
``EvidenceSpan``). Every change is one ``AuditLog`` record written in the same transaction of the one
review database (``ReviewStore``, reached by ``review_database_url``; it also holds the copilot's
coding jobs, ``jobs_table``). ``medcode queue`` and ``medcode audit`` are this stage's commands.
"""

from medcode.review._audit import (
    AuditLog,
    AuditRecord,
    CodingDecision,
    VerifyResult,
    decision_payload,
)
from medcode.review._newcodes import CodeCheck, EvidenceSpan
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
)
from medcode.review._recorder import QueueRecorder, stored_note_id
from medcode.review._store import ReviewStore, review_database_url
from medcode.review._store import jobs as jobs_table
from medcode.review._users import BOOTSTRAP_USER, ROLES, Principal, Role, User, UserDirectory

__all__ = [
    "BOOTSTRAP_USER",
    "CHART_STATUSES",
    "ROLES",
    "AuditLog",
    "AuditRecord",
    "Chart",
    "ChartAction",
    "ChartCode",
    "ChartStatus",
    "ChartSummary",
    "CodeAction",
    "CodeCheck",
    "CodingDecision",
    "EvidenceSpan",
    "Principal",
    "QueueMetrics",
    "QueueRecorder",
    "RateGroup",
    "ReviewQueue",
    "ReviewStore",
    "Role",
    "User",
    "UserDirectory",
    "VerifyResult",
    "decision_payload",
    "jobs_table",
    "review_database_url",
    "stored_note_id",
]
