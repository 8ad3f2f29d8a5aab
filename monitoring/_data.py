"""The monitoring room's data files and their versions.

Thresholds (``drift_thresholds.json``), CDI query templates (``cdi_queries.json``) and the
financial configuration (``financial.json``) are data: every file is hashed into its version
(``<series>+<12 hex of sha256>``), so a report names exactly the thresholds and templates it used,
and an edit to a file changes the version. ``monitoring_drift_thresholds_file`` and
``monitoring_cdi_queries_file`` replace the packaged tables with your own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medcode._input import describe_validation_error
from medcode.config import Settings
from medcode.errors import ConfigError

__all__ = [
    "DATA_FILES",
    "CDIQuery",
    "CDITrigger",
    "DriftMetricThreshold",
    "DriftThresholds",
    "FinancialConfig",
    "load_cdi_queries",
    "load_drift_thresholds",
    "load_financial_config",
    "monitoring_data_version",
]

DATA_FILES = ("cdi_queries.json", "drift_thresholds.json", "financial.json")

DriftMetric = Literal[
    "code_mix_psi",
    "code_mix_js",
    "confidence_psi",
    "acceptance_rate_change",
    "override_rate_change",
    "llm_fallback_rate",
    "review_share_change",
    "rejection_mix_js",
]


def _read(name: str, override: Path | None) -> tuple[bytes, Any, str]:
    """Raw bytes, parsed JSON and a display name of a packaged data file or its override."""
    if override is not None:
        where = str(override)
        try:
            raw = override.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    else:
        where = f"monitoring/data/{name}"
        raw = resources.files("medcode.monitoring").joinpath(f"data/{name}").read_bytes()
    try:
        return raw, json.loads(raw), where
    except ValueError as exc:
        raise ConfigError(f"{where} is not valid JSON: {exc}") from None


def _version(series: str, raw: bytes) -> str:
    return f"{series}+{hashlib.sha256(raw).hexdigest()[:12]}"


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe_validation_error(exc)}") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftMetricThreshold(_Strict):
    """Levels of one drift metric (absolute value for ``*_change``) and the items each side needs."""

    description: str
    unit: str
    watch: float = Field(ge=0)
    alert: float = Field(ge=0)
    min_current: int = Field(ge=0)
    min_reference: int = Field(ge=0)


class DriftReference(_Strict):
    """``trailing``: the ``windows`` windows before the current one, pooled; ``fixed``: ``[start, end)`` dates."""

    mode: Literal["trailing", "fixed"] = "trailing"
    windows: int = Field(default=4, ge=1, le=52)
    start: str | None = None
    end: str | None = None


class DriftThresholds(_Strict):
    """The parsed ``drift_thresholds.json`` with its version."""

    series: str
    about: str = ""
    version: str = ""
    reference: DriftReference
    top_categories: int = Field(ge=2, le=500)
    confidence_bins: list[float] = Field(min_length=3)
    noise_multiplier: float = Field(ge=0)
    metrics: dict[DriftMetric, DriftMetricThreshold]


class CDITrigger(_Strict):
    """What raises a query: a validator rule (with severity and setting), or a chart fact."""

    kind: Literal["validator", "unspecified_final_code", "coder_rejected", "coder_replaced_with_unspecified"]
    rule: str | None = None
    severity: Literal["reject", "warn", "any"] = "any"
    setting: Literal["outpatient", "inpatient", "any"] = "any"


class CDIQuery(_Strict):
    """One CDI query template."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    title: str
    trigger: CDITrigger
    query: str


class CDIQueries(_Strict):
    series: str
    about: str = ""
    version: str = ""
    queries: list[CDIQuery]


class MsdrgVersion(_Strict):
    version: int
    from_: str = Field(alias="from")
    to: str


class DRGWeightsSource(_Strict):
    package: str
    package_version: str
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    fiscal_year: str
    source: str
    column: str


class FinancialConfig(_Strict):
    """The parsed ``financial.json``: grouper versions by date, the weights file pin, default ages."""

    series: str
    about: str = ""
    version: str = ""
    msdrg_versions: list[MsdrgVersion]
    msdrg_default_version: int
    drg_weights: DRGWeightsSource
    unknown_age: int = Field(ge=0, le=124)
    hcc_unknown_age: int = Field(ge=0, le=124)


def load_drift_thresholds(settings: Settings | None = None) -> DriftThresholds:
    """Drift thresholds from ``monitoring_drift_thresholds_file`` or the packaged file.

    Raises ``ConfigError`` naming the file and field when it is unreadable or invalid (a ``watch``
    above its ``alert``, bins that do not rise, a fixed reference without dates).
    """
    raw, data, where = _read("drift_thresholds.json", settings.monitoring_drift_thresholds_file if settings else None)
    parsed = _parse(DriftThresholds, data, where)
    for name, metric in parsed.metrics.items():
        if metric.watch > metric.alert:
            raise ConfigError(f"{where}: metrics.{name}: watch ({metric.watch}) is above alert ({metric.alert})")
    bins = parsed.confidence_bins
    if any(b >= a for b, a in itertools.pairwise(bins)) or bins[0] > 0 or bins[-1] < 1:
        raise ConfigError(f"{where}: confidence_bins must rise strictly from 0 or below to 1 or above")
    if parsed.reference.mode == "fixed" and not (parsed.reference.start and parsed.reference.end):
        raise ConfigError(f"{where}: reference.mode 'fixed' needs start and end dates (YYYY-MM-DD)")
    return parsed.model_copy(update={"version": _version(parsed.series, raw)})


def load_cdi_queries(settings: Settings | None = None) -> CDIQueries:
    """CDI query templates from ``monitoring_cdi_queries_file`` or the packaged file. Raises ``ConfigError``."""
    raw, data, where = _read("cdi_queries.json", settings.monitoring_cdi_queries_file if settings else None)
    parsed = _parse(CDIQueries, data, where)
    ids = [q.id for q in parsed.queries]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{where}: query ids must be unique")
    for query in parsed.queries:
        if query.trigger.kind == "validator" and not query.trigger.rule:
            raise ConfigError(f"{where}: query {query.id}: a validator trigger needs its rule id")
    return parsed.model_copy(update={"version": _version(parsed.series, raw)})


def load_financial_config() -> FinancialConfig:
    """The packaged ``financial.json``. Raises ``ConfigError`` when it is invalid (a broken install)."""
    raw, data, where = _read("financial.json", None)
    parsed = _parse(FinancialConfig, data, where)
    return parsed.model_copy(update={"version": _version(parsed.series, raw)})


def monitoring_data_version() -> str:
    """``monitoring-data+<12 hex>``: a digest of every packaged file in ``DATA_FILES`` (name and bytes)."""
    digest = hashlib.sha256()
    root = resources.files("medcode.monitoring").joinpath("data")
    for name in DATA_FILES:
        digest.update(name.encode() + b"\0" + root.joinpath(name).read_bytes() + b"\0")
    return f"monitoring-data+{digest.hexdigest()[:12]}"
