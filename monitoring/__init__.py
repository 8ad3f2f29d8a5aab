"""Stage 6: monitoring. Drift alerts, dollars at risk, clinician documentation feedback and the coding KPIs.

Reads the review stage's charts (``load_records``) and writes nothing but drift alerts, which go to
the audit log as ``monitoring.drift_alert`` events for the autonomy policy to react to.
``FinancialImpactCheck`` is the agent's ``RoutingCheck`` that keeps a chart whose machine codes move
the MS-DRG or add a CMS-HCC away from ``auto``. ``medcode monitor`` is this stage's command.
"""

from medcode.monitoring._financial import (
    ClaimImpact,
    DRGResult,
    FinancialImpactCheck,
    FinancialModel,
    HCCResult,
)

__all__ = [
    "ClaimImpact",
    "DRGResult",
    "FinancialImpactCheck",
    "FinancialModel",
    "HCCResult",
]
