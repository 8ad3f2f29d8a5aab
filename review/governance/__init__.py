"""The governance room of the review stage: blinded audits, case types, and earned autonomy.

- ``AutonomyPolicy`` / ``CaseType`` (``load_policy``): case types as data (a versioned, hashed TOML
  file) with precision targets, audit sample sizes and approvers.
- ``RiskAdjustmentCodes``: the CMS-HCC V28 code list; a note touching it is never autonomous.
- ``AuditProgram``: ``medcode audit sample`` draws charts into blinded audits; auditors code them
  blind, an adjudicator settles disagreements, and the result is a gold label.
- ``evaluate_case_type`` and friends: per case type, per-code precision and recall and per-claim
  exact match of the machine and of the first coder, each with a Wilson 95% interval; the
  confidence threshold derived from calibrated confidence; eligibility.
- ``AutonomyLedger``: grants (``medcode autonomy grant``), automatic suspension when the running
  bound falls below target or a ``drift_alert`` names the case type, and the ``AutonomyGate``
  the CLI root wires into the coder's routing.
"""

from medcode.review.governance._audits import (
    AdjudicationTask,
    AuditBatch,
    AuditProgram,
    AuditTaskDetail,
    BlindAnswer,
    BlindTask,
    BlindTaskSummary,
    CodeChecker,
)
from medcode.review.governance._autonomy import AUTOMATIC, AutonomyLedger, AutonomyReport, recheck_grant
from medcode.review.governance._hcc import HCC_CODES_FILE, RiskAdjustmentCodes
from medcode.review.governance._measure import (
    AuditedChart,
    CaseTypeEvaluation,
    CodingAccuracy,
    ThresholdDerivation,
    accuracy,
    derive_threshold,
    evaluate_case_type,
    would_go_auto,
)
from medcode.review.governance._policy import (
    DEFAULT_POLICY_FILE,
    AutonomyPolicy,
    CaseType,
    CodeFamily,
    load_policy,
)
from medcode.review.governance._records import Grant
from medcode.review.governance._stats import Proportion, wilson_interval

__all__ = [
    "AUTOMATIC",
    "DEFAULT_POLICY_FILE",
    "HCC_CODES_FILE",
    "AdjudicationTask",
    "AuditBatch",
    "AuditProgram",
    "AuditTaskDetail",
    "AuditedChart",
    "AutonomyLedger",
    "AutonomyPolicy",
    "AutonomyReport",
    "BlindAnswer",
    "BlindTask",
    "BlindTaskSummary",
    "CaseType",
    "CaseTypeEvaluation",
    "CodeChecker",
    "CodeFamily",
    "CodingAccuracy",
    "Grant",
    "Proportion",
    "RiskAdjustmentCodes",
    "ThresholdDerivation",
    "accuracy",
    "derive_threshold",
    "evaluate_case_type",
    "load_policy",
    "recheck_grant",
    "wilson_interval",
    "would_go_auto",
]
