"""Monitoring reports on generated chart streams with known answers: drift, dollars at risk, CDI queries, KPIs."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pytest
from chart_streams import START, make_stream, populate_queue

from medcode.agent import NoteMetadata
from medcode.cli import main
from medcode.codesets import ICD10CMCodeSet
from medcode.config import load_settings
from medcode.errors import ConfigError
from medcode.monitoring import (
    ALERT_EVENT,
    ChartRecord,
    CodeRecord,
    FinancialModel,
    Window,
    accuracy,
    accuracy_by_code,
    build_cdi_report,
    build_report,
    confidence_calibration,
    denial_risk_flags,
    detect_drift,
    dollars_at_risk,
    jensen_shannon,
    line_chart,
    load_cdi_queries,
    load_drift_thresholds,
    load_records,
    percentile,
    psi,
    rate_group,
    record_alerts,
    specific_options,
    write_cdi_report,
)
from medcode.review import AuditLog, ReviewQueue

T0 = dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def model() -> FinancialModel:
    m = FinancialModel(load_settings())
    yield m
    m.close()


def _chart(chart_id: int, codes: list[CodeRecord], **fields: object) -> ChartRecord:
    base: dict[str, object] = {
        "chart_id": chart_id,
        "note_id": f"n{chart_id}",
        "note_type": "discharge_summary",
        "setting": "inpatient",
        "created_at": T0,
        "status": "finalised",
        "finalised_at": T0 + dt.timedelta(hours=5),
        "finalised_by": "coder",
        "codes": tuple(codes),
    }
    base.update(fields)
    return ChartRecord.model_validate(base)


def _code(code: str, decision: str = "accepted", **fields: object) -> CodeRecord:
    return CodeRecord.model_validate({"code": code, "decision": decision, "confidence": 0.9, **fields})


# -- the statistics ----------------------------------------------------------------------------------


def test_psi_and_jensen_shannon_have_known_values() -> None:
    assert psi({"a": 50, "b": 50}, {"a": 50, "b": 50}) == 0
    # 80/20 against 50/50, no smoothing: (0.3 ln 1.6) + (-0.3 ln 0.4) = 0.4159
    assert psi({"a": 80, "b": 20}, {"a": 50, "b": 50}, smoothing=0) == pytest.approx(
        0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    )
    assert jensen_shannon({"a": 1}, {"b": 1}) == pytest.approx(1.0)
    assert jensen_shannon({"a": 3, "b": 1}, {"a": 3, "b": 1}) == 0
    assert percentile([5, 1, 3, 2, 4], 90) == 5 and percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9
    assert percentile([], 50) is None


def test_windows_cut_weeks_days_and_n_days() -> None:
    moment = dt.datetime(2026, 5, 7, 23, tzinfo=dt.UTC)  # a Thursday
    assert Window.parse("week").start(moment) == dt.date(2026, 5, 4)
    assert Window.parse("day").start(moment) == dt.date(2026, 5, 7)
    assert Window.parse("month").end(dt.date(2026, 12, 1)) == dt.date(2027, 1, 1)
    fortnight = Window.parse("14d")
    assert (fortnight.end(fortnight.start(moment)) - fortnight.start(moment)).days == 14
    with pytest.raises(Exception, match="unknown window"):
        Window.parse("fortnight")


# -- drift -------------------------------------------------------------------------------------------


def test_a_shifted_stream_raises_drift_alerts_and_a_stable_one_does_not() -> None:
    thresholds = load_drift_thresholds()
    stable = detect_drift(make_stream(weeks=8, seed=3), thresholds)
    assert stable.alerts == [] and stable.status in ("ok", "watch")
    shifted = detect_drift(make_stream(weeks=8, seed=3, shift_week=6), thresholds)
    shift_start = START + dt.timedelta(weeks=6)
    alerted = {(a.metric, a.window_start) for a in shifted.alerts}
    for metric in ("code_mix_psi", "code_mix_js", "confidence_psi", "acceptance_rate_change"):
        assert (metric, shift_start) in alerted, metric
    assert all(a.window_start >= shift_start for a in shifted.alerts)  # no alert before the shift
    psi_alert = next(a for a in shifted.alerts if a.metric == "code_mix_psi" and a.window_start == shift_start)
    assert psi_alert.value > 0.25 and psi_alert.group == "outpatient/outpatient_visit"
    assert psi_alert.reference_start == shift_start - dt.timedelta(weeks=4)
    acceptance = next(
        a for a in shifted.alerts if a.metric == "acceptance_rate_change" and a.window_start == shift_start
    )
    assert acceptance.value < -0.10 and acceptance.current is not None and acceptance.current < 0.75
    assert shifted.status == "alert"


def test_drift_is_judged_per_case_type_and_small_windows_are_insufficient() -> None:
    thresholds = load_drift_thresholds()
    clinic = make_stream(weeks=8, seed=5)
    ed = make_stream(weeks=8, seed=6, shift_week=6, note_type="ed_note", first_id=10_000)
    report = detect_drift([*clinic, *ed], thresholds)
    groups = {a.group for a in report.alerts}
    assert "outpatient/ed_note" in groups and "outpatient/outpatient_visit" not in groups
    tiny = detect_drift(make_stream(weeks=8, per_week=5, seed=3, shift_week=6), thresholds)
    assert tiny.alerts == []
    assert {v.level for g in tiny.groups for k, v in g.metrics.items() if k == "code_mix_psi"} == {"insufficient"}


def test_an_llm_outage_and_a_review_share_jump_are_alerts() -> None:
    records = make_stream(weeks=6, seed=9)
    broken = [
        r.model_copy(update={"reasons": ("LLM_UNAVAILABLE", "HUMAN_ASSISTED_DEFAULT")})
        if r.created_at.date() >= START + dt.timedelta(weeks=5) and r.chart_id % 4 == 0
        else r
        for r in records
    ]
    report = detect_drift(broken, load_drift_thresholds())
    fallback = [a for a in report.alerts if a.metric == "llm_fallback_rate"]
    assert len(fallback) == 1 and fallback[0].value == pytest.approx(0.25, abs=0.02)
    auto_then_review = [
        r.model_copy(update={"routing": "auto", "finalised_by": "auto"})
        if r.created_at.date() < START + dt.timedelta(weeks=5) and r.chart_id % 2
        else r
        for r in records
    ]
    report = detect_drift(auto_then_review, load_drift_thresholds())
    assert any(a.metric == "review_share_change" and a.value > 0.4 for a in report.alerts)


def test_alerts_go_to_the_audit_log_once(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    report = detect_drift(make_stream(weeks=8, seed=3, shift_week=6), load_drift_thresholds())
    with AuditLog(settings) as log:
        first = record_alerts(log, report.alerts)
        again = record_alerts(log, report.alerts)
        records = log.records(event_type=ALERT_EVENT)
        assert log.verify().ok
    assert len(first) == len(report.alerts) > 0 and again == []
    payload = records[0].payload
    assert (
        payload["metric"]
        and payload["group_by"] == "case_type"
        and payload["thresholds_version"].startswith("2026.11+")
    )
    assert "note_text" not in json.dumps(payload)


def test_thresholds_are_versioned_data(tmp_path: Path) -> None:
    packaged = load_drift_thresholds()
    custom = json.loads((Path(__file__).parents[1] / "monitoring/data/drift_thresholds.json").read_text())
    custom["metrics"]["code_mix_psi"]["alert"] = 50.0
    path = tmp_path / "t.json"
    path.write_text(json.dumps(custom))
    loose = load_drift_thresholds(load_settings(monitoring_drift_thresholds_file=path))
    assert loose.version != packaged.version and loose.version.startswith("2026.11+")
    report = detect_drift(make_stream(weeks=8, seed=3, shift_week=6), loose)
    assert "code_mix_psi" not in {a.metric for a in report.alerts}
    custom["metrics"]["code_mix_psi"]["watch"] = 60.0
    path.write_text(json.dumps(custom))
    with pytest.raises(ConfigError, match=r"watch .* is above alert"):
        load_drift_thresholds(load_settings(monitoring_drift_thresholds_file=path))


# -- dollars at risk ---------------------------------------------------------------------------------


def test_a_known_code_swap_changes_the_drg_and_its_payment(model: FinancialModel) -> None:
    # The machine coded CKD stage 5 (an MCC): DRG 291 (weight 1.2838). The coder rejected it: DRG 293 (0.5660).
    over = _chart(1, [_code("I50.20"), _code("E11.65"), _code("N18.6", "rejected")])
    # The machine missed it: the coder added N18.6 -> under-coding by the same amount.
    under = _chart(2, [_code("I50.20"), _code("E11.65"), _code("N18.6", origin="added", proposed_status=None)])
    same = _chart(3, [_code("J18.9"), _code("I10")])
    total, groups, impacts = dollars_at_risk([over, under, same], model)
    by_id = {i.chart_id: i for i in impacts}
    assert (
        by_id[1].drg_machine
        and by_id[1].drg_machine.drg == "291"
        and by_id[1].drg_final
        and by_id[1].drg_final.drg == "293"
    )
    assert by_id[1].weight_delta == pytest.approx(1.2838 - 0.5660)
    assert by_id[1].payment_delta_usd == pytest.approx((1.2838 - 0.5660) * 6500, abs=0.01)
    assert by_id[1].direction == "over" and by_id[1].hcc_machine_only == ["HCC326"]
    assert by_id[2].direction == "under" and by_id[2].hcc_final_only == ["HCC326"]
    assert by_id[3].direction == "none" and not by_id[3].drg_changed
    assert total.charts_compared == 3 and total.drg_changed == 2 and total.hcc_changed == 2
    assert total.over_usd == pytest.approx(4665.70) and total.under_usd == pytest.approx(4665.70)
    assert total.at_risk_usd == pytest.approx(9331.40) and total.net_usd == 0
    assert groups["inpatient/discharge_summary"].charts_compared == 3


def test_the_base_rate_and_raf_pricing_are_settings() -> None:
    priced = FinancialModel(load_settings(drg_base_rate_usd=10_000, hcc_annual_base_usd=12_000))
    impact = priced.compare(["I50.20", "N18.6"], ["I50.20"], setting="inpatient")
    assert impact.payment_delta_usd == pytest.approx(7178.0)
    assert impact.raf_delta > 0 and impact.raf_delta_usd == pytest.approx(impact.raf_delta * 12_000, abs=0.01)
    outpatient = priced.compare(["E11.9"], ["E11.9", "I50.20"], setting="outpatient")
    assert (
        outpatient.drg_machine is None and outpatient.direction == "under" and outpatient.hcc_final_only == ["HCC226"]
    )
    priced.close()


def test_audited_gold_replaces_final_codes(model: FinancialModel) -> None:
    chart = _chart(1, [_code("I50.20"), _code("N18.6")])  # the coder kept both
    assert dollars_at_risk([chart], model)[0].at_risk_usd == 0
    audited, _, _ = dollars_at_risk([chart], model, gold={1: ["I50.20"]})  # the audit removed N18.6
    assert audited.over_usd == pytest.approx((1.2838 - 0.5660) * 6500, abs=0.01)
    assert accuracy([(["I50.20", "N18.6"], ["I50.20"])]).as_dict() == {
        "claims": 1, "exact_claims": 0, "tp": 1, "fp": 1, "fn": 0,
        "precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "claim_accuracy": 0.0,
    }  # fmt: skip


def test_accuracy_by_code_counts_each_code() -> None:
    pairs = [(["E11.9", "I10"], ["E11.9"]), (["E11.9"], ["E11.65"]), (["I10"], ["I10", "E78.5"])]
    by_code = accuracy_by_code(pairs)
    assert by_code["E119"] == {"tp": 1, "fp": 1, "fn": 0, "precision": 0.5, "recall": 1.0}
    assert by_code["I10"] == {"tp": 1, "fp": 1, "fn": 0, "precision": 0.5, "recall": 1.0}
    assert by_code["E1165"] == {"tp": 0, "fp": 0, "fn": 1, "precision": None, "recall": 0.0}
    assert list(by_code)[:2] == ["E119", "I10"]  # most frequent first
    assert len(accuracy_by_code(pairs, top=1)) == 1


def test_confidence_is_compared_with_what_coders_kept() -> None:
    reviewed = _chart(
        1,
        [
            _code("I10", confidence=0.9),
            _code("E11.9", "rejected", confidence=0.9),
            _code("J45.909", confidence=0.3),
            _code("R51.9", "replaced", confidence=0.3, replaced_by="G44.209"),
            _code("G44.209", origin="added", replaces="R51.9", confidence=None),  # the coder's code: no confidence
            _code("R07.9", "rejected", proposed_status="rejected", confidence=0.2),  # the validators' rejection
            _code("Z79.4", confidence=None),
        ],
    )
    auto = _chart(2, [_code("I10", confidence=0.9)], finalised_by="auto")
    open_chart = _chart(3, [_code("I10", "pending", confidence=0.9)], status="in_review", finalised_at=None)
    cal = confidence_calibration([reviewed, auto, open_chart])
    assert cal.codes == 4 and cal.mean_confidence == pytest.approx(0.6) and cal.kept_rate == pytest.approx(0.5)
    assert cal.gap == pytest.approx(0.1)  # overconfident by ten points
    assert cal.bins == [(0.3, 0.3, 0.5, 2), (0.9, 0.9, 0.5, 2)]
    assert cal.ece == pytest.approx(0.5 * 0.2 + 0.5 * 0.4)
    assert confidence_calibration([auto, open_chart]).codes == 0
    from medcode.monitoring.cli import _calibration

    assert "kept 50.0% (overconfident by 10.0 points), ECE 0.300 over 4 suggestions" in _calibration(cal.model_dump())
    assert "--from-queue" not in _calibration(cal.model_dump())  # four codes are too few to act on
    many = confidence_calibration([reviewed] * 5)
    assert many.codes == 20 and "`medcode train --from-queue`" in _calibration(many.model_dump())
    assert "no human-reviewed suggestion" in _calibration(confidence_calibration([auto]).model_dump())


def test_denial_risk_flags(model: FinancialModel) -> None:
    override = _chart(1, [_code("I50.20"), _code("Z87.891", proposed_status="rejected", rules=("SPAN_NEGATED",))])
    assert "GUARDRAIL_OVERRIDE" in denial_risk_flags(override, model)
    warned = _chart(2, [_code("I50.20", warnings=("USE_ADDITIONAL",))], setting="outpatient")
    assert denial_risk_flags(warned, model) == ["UNRESOLVED_WARNING"]
    external_first = _chart(3, [_code("W19.XXXA"), _code("S72.001A")])
    flags = denial_risk_flags(external_first, model)
    assert "MCE_EDIT" in flags and "DRG_UNGROUPABLE" in flags
    assert denial_risk_flags(_chart(4, [_code("I50.20")]), model) == []


# -- CDI ---------------------------------------------------------------------------------------------


def _cdi_stream() -> list[ChartRecord]:
    uncertain = _code(
        "J18.9",
        "rejected",
        description="Pneumonia, unspecified organism",
        proposed_status="rejected",
        rules=("SPAN_UNCERTAIN",),
        quotes=("possible pneumonia",),
    )
    records = [
        _chart(i, [_code("R05.9", description="Cough, unspecified"), uncertain], setting="outpatient", note_type="ed_note",
               metadata=NoteMetadata(provider_id="P-1"))
        for i in (1, 2, 3)
    ]  # fmt: skip
    records.append(
        _chart(4, [_code("I50.9", description="Heart failure, unspecified")], metadata=NoteMetadata(provider_id="P-2"))
    )
    records.append(
        _chart(
            5,
            [
                _code("E11.9", "rejected", description="Type 2 diabetes mellitus without complications"),
                _code("I10", "replaced", description="Essential (primary) hypertension", replaced_by="I15.9"),
                _code("I15.9", description="Secondary hypertension, unspecified", origin="added", proposed_status=None, replaces="I10"),
            ],
            metadata=NoteMetadata(provider_id="P-2"),
        )
    )  # fmt: skip
    return records


def test_cdi_report_counts_gaps_per_provider_as_queries(tmp_path: Path) -> None:
    options = {"I50.9": ["I50.20", "I50.30", "I50.9"], "I15.9": ["I15.0", "I15.8", "I15.9"]}
    report = build_cdi_report(
        _cdi_stream(), load_cdi_queries(), group_by="provider_id", options=lambda c: options.get(c, [])
    )
    groups = report.by_group()
    (uncertain,) = [f for f in groups["P-1"] if f.query_id == "UNCERTAIN_DX_OUTPATIENT"]
    assert uncertain.charts == 3 and uncertain.example_note_ids == ["n1", "n2", "n3"] and uncertain.code == "J18.9"
    assert "In 3 outpatient note(s) Pneumonia, unspecified organism is documented as possible" in uncertain.query
    assert "unable to determine" in uncertain.query and uncertain.quotes == []  # no note text by default
    assert groups["P-1"][0].query_id == "UNCERTAIN_DX_OUTPATIENT"  # the most frequent gap first
    p2 = {(f.query_id, f.code) for f in groups["P-2"]}
    assert ("SPECIFICITY", "I50.9") in p2 and ("CLINICAL_VALIDATION", "E11.9") in p2
    assert ("SPECIFICITY_NOT_SUPPORTED", "I15.9") in p2
    specificity = next(f for f in groups["P-2"] if f.query_id == "SPECIFICITY")
    assert "I50.20; I50.30" in specificity.query
    csv_path, html_path = write_cdi_report(report, tmp_path / "cdi")
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert {r["group"] for r in rows} == {"P-1", "P-2"} and all("possible pneumonia" not in r["quotes"] for r in rows)
    page = html_path.read_text(encoding="utf-8")
    assert "Pneumonia, unspecified organism" in page and "possible pneumonia" not in page
    with_text = build_cdi_report(_cdi_stream(), load_cdi_queries(), include_text=True)
    assert any("possible pneumonia" in f.quotes for f in with_text.findings)


def test_cdi_options_come_from_the_nearest_parent(codeset: ICD10CMCodeSet) -> None:
    options = specific_options(codeset)
    assert options("I50.20") == ["I50.21", "I50.22", "I50.23"]
    assert options("J18.9") == ["J18.0", "J18.1", "J18.2", "J18.8"]
    assert options("I10") == []  # a category without other codes: no specificity query
    report = build_cdi_report(
        [_chart(1, [_code("I10", description="Essential (primary) hypertension, unspecified")])],
        load_cdi_queries(),
        options=options,
    )
    assert report.findings == []


# -- KPIs --------------------------------------------------------------------------------------------


def test_kpis_on_a_generated_stream(model: FinancialModel) -> None:
    records = make_stream(weeks=8, per_week=120, seed=3, shift_week=6, open_last_week=10)
    now = dt.datetime.combine(START + dt.timedelta(weeks=8), dt.time(0), tzinfo=dt.UTC)
    report = build_report(records, thresholds=load_drift_thresholds(), model=model, now=now)
    k = report.kpis
    finalised = [r for r in records if r.finalised]
    assert k["charts"] == 960 and k["queue"]["open"] == 10 and k["auto_share"] == 0
    rates = rate_group(records)
    assert k["acceptance_rate"] == pytest.approx(rates.acceptance_rate) and k["edit_rate"] == pytest.approx(
        rates.edit_rate
    )
    ttf = sorted(r.seconds_to_finalise or 0 for r in finalised)
    assert k["time_to_finalise_s"]["p90"] == pytest.approx(ttf[math.ceil(0.9 * len(ttf)) - 1])
    assert 2 * 3600 <= k["time_to_finalise_s"]["median"] <= 30 * 3600
    expected = accuracy((r.machine_codes, r.final_codes or []) for r in finalised)
    assert k["accuracy"]["f1"] == pytest.approx(expected.f1)
    assert k["drift_status"] == "alert" and k["drift_alerts"] > 0
    assert k["calibration"] == confidence_calibration(records).model_dump(mode="json") and k["calibration"]["codes"]
    assert all("calibration" in g for g in report.by_group.values())
    assert "bins" not in report.series[0]["calibration"] and report.series[0]["calibration"]["codes"] > 0
    # Over time: eight weekly rows; acceptance drops in the shifted weeks; the plots are SVG with a drift marker.
    assert [s["window_start"] for s in report.series][:2] == ["2026-04-06", "2026-04-13"] and len(report.series) == 8
    assert report.series[2]["acceptance_rate"] > 0.85 > 0.7 > report.series[6]["acceptance_rate"]
    assert set(report.plots) == {"agreement", "accuracy", "time_to_finalise", "drift", "dollars"}
    assert report.plots["drift"].startswith("<svg") and 'fill="#b91c1c"' in report.plots["drift"]
    data = report.as_dict()
    assert "plots" not in data and json.dumps(data)
    top = [abs(c["dollars"]) for c in data["dollars"]["charts"]]
    assert top == sorted(top, reverse=True) and all(
        c["hcc_changed"] or c["drg_changed"] for c in data["dollars"]["charts"]
    )


def test_the_report_works_without_the_financial_model() -> None:
    report = build_report(make_stream(weeks=3, per_week=30), thresholds=load_drift_thresholds(), model=None)
    assert report.dollars == {"available": False} and report.kpis["dollars_at_risk_usd"] is None
    assert "dollars" not in report.plots and "agreement" in report.plots


def test_svg_escapes_labels_and_leaves_gaps() -> None:
    svg = line_chart("<b>&", ["a", "b", "c"], {"x<y": [0.1, None, 0.3]})
    assert "<b>" not in svg.replace("<svg", "") and "&lt;b&gt;&amp;" in svg
    assert "<polyline" not in svg  # no two consecutive points: nothing to join


# -- through the review queue and the CLI --------------------------------------------------------------


def test_records_from_the_queue_match_the_queue_metrics(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    stream = make_stream(weeks=2, per_week=15, seed=4, open_last_week=3)
    swapped = stream[0].model_copy(
        update={
            "codes": (
                _code("I10", "replaced", description="Essential (primary) hypertension", replaced_by="I15.9"),
                _code("I15.9", origin="added", proposed_status=None, replaces="I10", description="x"),
                _code("E78.5", "accepted", description="Hyperlipidemia, unspecified"),
            )
        }
    )
    ids = populate_queue(settings, [swapped, *stream[1:]])
    with ReviewQueue(settings) as queue:
        records = load_records(queue)
        metrics = queue.metrics()
    assert len(records) == len(stream) and [r.chart_id for r in records] == sorted(ids.values())
    assert records[0].final_codes == ["I15.9", "E78.5"]  # the replacement stands where I10 stood
    assert records[0].created_at == stream[0].created_at
    ours = rate_group(records)
    assert ours.as_dict() == metrics.overall.as_dict()
    assert sum(1 for r in records if not r.finalised) == 3


def test_monitor_cli_report_and_cdi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings(data_dir=data_dir)
    populate_queue(settings, make_stream(weeks=8, per_week=60, seed=3, shift_week=6))
    args = ["--data-dir", str(data_dir), "monitor"]
    assert main([*args, "report", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kpis"]["charts"] == 480 and data["drift"]["status"] == "alert"
    assert data["recorded_alerts"] == len(data["drift"]["alerts"]) > 0
    with AuditLog(settings) as log:
        assert len(log.records(event_type=ALERT_EVENT)) == data["recorded_alerts"]
    assert main([*args, "report"]) == 0
    text = capsys.readouterr().out
    assert "drift: ALERT" in text and "code_mix_psi" in text and "0 new alert(s) recorded" in text
    assert "confidence vs coders: mean confidence" in text
    assert main([*args, "report", "--html", str(tmp_path / "kpi.html"), "--no-record"]) == 0
    assert "<svg" in (tmp_path / "kpi.html").read_text(encoding="utf-8")
    assert main([*args, "cdi", "--out", str(tmp_path / "cdi"), "--by", "provider_id"]) == 0
    assert (tmp_path / "cdi" / "cdi.csv").is_file() and (tmp_path / "cdi" / "cdi.html").is_file()
    assert main([*args, "report", "--window", "fortnight"]) == 2
    # Audited gold replaces final codes: an audit that empties every chart makes every machine code a false positive.
    with ReviewQueue(settings) as queue:
        ids = [c.chart_id for c in queue.iter_charts()]
    gold = tmp_path / "gold.jsonl"
    capsys.readouterr()
    gold.write_text("".join(json.dumps({"chart_id": i, "codes": []}) + "\n" for i in ids), encoding="utf-8")
    assert main([*args, "report", "--json", "--no-record", "--gold", str(gold)]) == 0
    audited = json.loads(capsys.readouterr().out)["kpis"]["accuracy"]
    assert audited["tp"] == 0 and audited["claims"] == 480 and audited["precision"] == 0.0
    gold.write_text('{"chart": 1}\n', encoding="utf-8")
    assert main([*args, "report", "--gold", str(gold)]) == 2


def test_the_cli_offers_every_grouping() -> None:
    from medcode.monitoring import GROUP_BY
    from medcode.monitoring import cli as monitor_cli

    assert monitor_cli._GROUP_BY == GROUP_BY  # the CLI keeps its own copy so that `medcode --help` stays light
