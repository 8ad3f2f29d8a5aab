"""Stage 6: monitoring. Drift alerts, dollars at risk, clinician documentation feedback and the coding KPIs.

Reports are pure functions of a chart stream (``ChartRecord``, read from the review queue with
``load_records``): ``detect_drift`` (thresholds as data; alerts go to the audit log as
``monitoring.drift_alert`` events through ``record_alerts``, for the autonomy policy to react to),
``dollars_at_risk`` (``FinancialModel``: MS-DRG and CMS-HCC of machine against final codes),
``build_cdi_report`` (documentation gaps as CDI queries, per provider) and ``build_report`` (every
KPI, per window, with SVG plots). ``FinancialImpactCheck`` is the agent's ``RoutingCheck`` that keeps
a chart whose machine codes move the MS-DRG or add a CMS-HCC away from ``auto``. ``medcode monitor``
is this stage's command; the copilot shows the same reports at ``/monitor`` and ``/cdi``.
"""

from medcode.monitoring._cdi import CDIFinding, CDIReport, build_cdi_report, specific_options, write_cdi_report
from medcode.monitoring._data import (
    load_cdi_queries,
    load_drift_thresholds,
    load_financial_config,
    monitoring_data_version,
)
from medcode.monitoring._drift import (
    ALERT_EVENT,
    DriftAlert,
    DriftReport,
    DriftValue,
    GroupDrift,
    detect_drift,
    jensen_shannon,
    psi,
    record_alerts,
    suspend_drifting_case_types,
)
from medcode.monitoring._financial import (
    ClaimImpact,
    DRGResult,
    FinancialImpactCheck,
    FinancialModel,
    HCCResult,
)
from medcode.monitoring._records import (
    GROUP_BY,
    ChartRecord,
    CodeRecord,
    GroupBy,
    Window,
    category,
    group_key,
    load_records,
    rate_group,
    records_from_charts,
)
from medcode.monitoring._report import (
    DENIAL_FLAGS,
    AccuracyReport,
    CalibrationReport,
    DollarsAtRisk,
    MonitoringReport,
    accuracy,
    accuracy_by_code,
    build_report,
    confidence_calibration,
    denial_risk_flags,
    dollars_at_risk,
    percentile,
)
from medcode.monitoring._svg import line_chart

__all__ = [
    "ALERT_EVENT",
    "DENIAL_FLAGS",
    "GROUP_BY",
    "AccuracyReport",
    "CDIFinding",
    "CDIReport",
    "CalibrationReport",
    "ChartRecord",
    "ClaimImpact",
    "CodeRecord",
    "DRGResult",
    "DollarsAtRisk",
    "DriftAlert",
    "DriftReport",
    "DriftValue",
    "FinancialImpactCheck",
    "FinancialModel",
    "GroupBy",
    "GroupDrift",
    "HCCResult",
    "MonitoringReport",
    "Window",
    "accuracy",
    "accuracy_by_code",
    "build_cdi_report",
    "build_report",
    "category",
    "confidence_calibration",
    "denial_risk_flags",
    "detect_drift",
    "dollars_at_risk",
    "group_key",
    "jensen_shannon",
    "line_chart",
    "load_cdi_queries",
    "load_drift_thresholds",
    "load_financial_config",
    "load_records",
    "monitoring_data_version",
    "percentile",
    "psi",
    "rate_group",
    "record_alerts",
    "records_from_charts",
    "specific_options",
    "suspend_drifting_case_types",
    "write_cdi_report",
]
