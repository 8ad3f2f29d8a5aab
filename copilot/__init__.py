"""Stage 5: the coder copilot. A web app and HTTP API where coders review the agent's suggestions.

``create_app(settings)`` builds the FastAPI app (``medcode serve`` runs it with uvicorn);
``CopilotService`` is its back end: one ``MedicalCoder``, a background coding worker fed by a
persistent job queue, and the same review queue and audit log as the CLI.
"""

from medcode.copilot._app import create_app
from medcode.copilot._jobs import CodingWorker, JobStore, WorkerState
from medcode.copilot._models import CodeRequest, CodingJob, ErrorInfo, JobStatus, ReviewAction, ReviewRequest, SearchHit
from medcode.copilot._service import CopilotService, QueueFilter
from medcode.copilot.cli import is_loopback

__all__ = [
    "CodeRequest",
    "CodingJob",
    "CodingWorker",
    "CopilotService",
    "ErrorInfo",
    "JobStatus",
    "JobStore",
    "QueueFilter",
    "ReviewAction",
    "ReviewRequest",
    "SearchHit",
    "WorkerState",
    "create_app",
    "is_loopback",
]
