"""FHIR R4 in and out: DocumentReference/Bundle -> Note, CodingResult -> Bundle (draft Claim, Provenance).

The readers run on the shipped fixtures (tests/fixtures/fhir/) and mutations of them; the round trips run
the real pipeline (small real index, retrieval proposer) through ``medcode code``, ``code-batch`` and the
copilot API, and validate every Bundle that comes out with ``fhir.resources``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from shared_data import own_data_dir

from medcode.agent import (
    DIAGNOSIS_EXTENSION,
    FHIR_MEDIA_TYPE,
    ROUTING_EXTENSION,
    CodedCode,
    CodingResult,
    RoutingDecision,
    Usage,
    error_to_fhir,
    note_from_fhir,
    result_to_fhir,
)
from medcode.cli import main
from medcode.config import Settings
from medcode.copilot import create_app
from medcode.errors import FHIRError, NoteError
from medcode.validators import Evidence

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_CHARS = 100_000


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def attachment_text(resource: dict[str, Any]) -> str:
    """The note text of a fixture, decoded independently of medcode."""
    document = resource
    if resource["resourceType"] == "Bundle":
        document = next(
            e["resource"] for e in resource["entry"] if e["resource"]["resourceType"] == "DocumentReference"
        )
    plain = next(c["attachment"] for c in document["content"] if c["attachment"]["contentType"].startswith("text/"))
    return base64.b64decode(plain["data"]).decode("utf-8")


def fhir_error(resource: object, **overrides: Any) -> FHIRError:
    with pytest.raises(FHIRError) as caught:
        note_from_fhir(resource, MAX_CHARS, **overrides)
    return caught.value


# -- in ---------------------------------------------------------------------------------------------------------


def test_bundle_gives_text_id_age_sex_date_and_setting() -> None:
    bundle = fixture("bundle_in.json")
    note = note_from_fhir(bundle, MAX_CHARS, default_setting="inpatient")
    assert note.text == attachment_text(bundle)
    assert note.id == "note-2026-0001"
    assert note.sex == "M"
    assert note.date_of_service == dt.date(2026, 5, 4)  # Encounter.period.start, in its own time zone
    assert note.age == 58  # born 1967-09-14: 58 on 2026-05-04
    assert note.setting == "outpatient"  # Encounter.class AMB wins over the default
    assert note.metadata.encounter_date == dt.date(2026, 5, 4)
    assert note.fhir is not None
    assert note.fhir.patient is not None and note.fhir.patient.reference == "Patient/pat-1"
    assert note.fhir.patient.value == "MRN-0001"
    assert note.fhir.encounter_class == "AMB"


@pytest.mark.parametrize(("code", "setting"), [("IMP", "inpatient"), ("EMER", "outpatient"), ("AMB", "outpatient")])
def test_encounter_class_gives_the_setting(code: str, setting: str) -> None:
    bundle = fixture("bundle_in.json")
    bundle["entry"][1]["resource"]["class"]["code"] = code
    other = "inpatient" if setting == "outpatient" else "outpatient"
    assert note_from_fhir(bundle, MAX_CHARS, default_setting=other).setting == setting


def test_age_is_taken_at_the_encounter_not_today() -> None:
    bundle = fixture("bundle_in.json")
    bundle["entry"][1]["resource"]["period"]["start"] = "2026-09-13"  # the day before the 59th birthday
    assert note_from_fhir(bundle, MAX_CHARS).age == 58
    bundle["entry"][1]["resource"]["period"]["start"] = "2026-09-14"
    assert note_from_fhir(bundle, MAX_CHARS).age == 59


def test_document_alone_with_contained_patient_and_encounter() -> None:
    document = fixture("document_inpatient.json")
    note = note_from_fhir(document, MAX_CHARS)
    assert note.text == attachment_text(document)  # the text/plain attachment, not the PDF url before it
    assert (note.setting, note.note_type, note.sex) == ("inpatient", "discharge_summary", "F")
    assert note.age == 71  # birthDate 1954-11: 71 on 2026-05-10 whatever the day
    assert note.date_of_service == dt.date(2026, 5, 10)
    assert note.fhir is not None and note.fhir.patient is None  # a contained id means nothing outside it


def test_caller_overrides_win_over_the_resource() -> None:
    note = note_from_fhir(fixture("bundle_in.json"), MAX_CHARS, setting="inpatient", age=40, id="mine", sex=None)
    assert (note.setting, note.age, note.id, note.sex) == ("inpatient", 40, "mine", "M")


BAD_BUNDLES: list[tuple[str, str, Any, str, str]] = [
    # (what, element to change as a dotted path into bundle_in.json, new value, path named, words in the message)
    ("bad gender", "entry.0.resource.gender", "boy", "Bundle.entry[0].resource.gender", "AdministrativeGender"),
    ("born after visit", "entry.0.resource.birthDate", "2027-01-01", "Bundle.entry[0].resource.birthDate", "after"),
    ("unmapped class", "entry.1.resource.class.code", "XYZ", "Bundle.entry[1].resource.class", "setting"),
    ("bad date", "entry.1.resource.period.start", "May 4th", "Bundle.entry[1].resource.period.start", "DateTime"),
    ("partial date", "entry.1.resource.period.start", "2026-05", "Bundle.entry[1].resource.period.start", "full"),
    (
        "dangling ref",
        "entry.2.resource.context.encounter.0.reference",
        "Encounter/elsewhere",
        "Bundle.entry[2].resource.context.encounter[0].reference",
        "not in the Bundle",
    ),
    ("unknown type", "entry.0.resource.resourceType", "Patiant", "Bundle.entry[0].resource.resourceType", "R4"),
    (
        "not base64",
        "entry.2.resource.content.0.attachment.data",
        "Type 2 diabetes!",
        "Bundle.entry[2].resource.content[0].attachment.data",
        "not valid base64",
    ),
    (
        "not UTF-8",
        "entry.2.resource.content.0.attachment.data",
        base64.b64encode("f\u00fchlt".encode("latin-1")).decode(),
        "Bundle.entry[2].resource.content[0].attachment.data",
        "not UTF-8",
    ),
    (
        "not text",
        "entry.2.resource.content.0.attachment.contentType",
        "application/pdf",
        "Bundle.entry[2].resource.content",
        "no text/plain attachment",
    ),
    ("unknown element", "entry.2.resource.colour", "red", "Bundle.entry[2].resource.colour", "not permitted"),
]


@pytest.mark.parametrize(("what", "where", "value", "path", "words"), BAD_BUNDLES, ids=[b[0] for b in BAD_BUNDLES])
def test_bad_fhir_names_the_element(what: str, where: str, value: Any, path: str, words: str) -> None:
    bundle = fixture("bundle_in.json")
    node: Any = bundle
    *parents, last = where.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    error = fhir_error(bundle)
    assert error.path == path
    assert str(error).startswith(f"{path}: ")
    assert words in str(error)
    if where.endswith("attachment.data"):
        assert value not in str(error)  # the note (PHI) is never echoed


def test_bad_fhir_without_the_bundle() -> None:
    error = fhir_error(fixture("bad_base64.json"))
    assert str(error) == "DocumentReference.content[0].attachment.data: not valid base64"
    assert "Chest pain" not in str(error)

    document = fixture("document_inpatient.json")
    del document["content"][1]
    assert "found: application/pdf" in str(fhir_error(document))
    document["content"][0]["attachment"]["contentType"] = "text/plain"
    assert fhir_error(document).path == "DocumentReference.content[0].attachment.url"  # fetches nothing
    document["content"] = []
    assert fhir_error(document).path == "DocumentReference.content"
    assert fhir_error({"resourceType": "Patient"}).path == "resourceType"
    assert fhir_error([1, 2]).path == ""

    bundle = fixture("bundle_in.json")
    bundle["entry"].append(copy.deepcopy(bundle["entry"][2]))
    assert "2 DocumentReferences" in str(fhir_error(bundle))
    del bundle["entry"][2:]
    assert "no DocumentReference" in str(fhir_error(bundle))


# -- out, without the pipeline ----------------------------------------------------------------------------------


def documented_extensions() -> dict[str, set[str]]:
    """Extension url -> its sub-extension urls, as agent/data/fhir.json defines them."""
    from importlib import resources

    data = json.loads(resources.files("medcode.agent").joinpath("data/fhir.json").read_text(encoding="utf-8"))
    return {url: set(spec["sub_extensions"]) for url, spec in data["extensions"].items()}


def used_extensions(node: Any, found: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Every medcode extension url in a FHIR document, with the sub-extension urls used in it."""
    found = {} if found is None else found
    if isinstance(node, dict):
        if str(node.get("url", "")).startswith("https://medcode.dev/"):
            found.setdefault(node["url"], set()).update(x["url"] for x in node.get("extension", []))
        for value in node.values():
            used_extensions(value, found)
    elif isinstance(node, list):
        for value in node:
            used_extensions(value, found)
    return found


def test_result_to_fhir_puts_accepted_codes_on_the_claim_and_rejected_ones_aside() -> None:
    text = "Type 2 diabetes. Denies chest pain."
    result = CodingResult(
        note_id="n-1",
        codes=[
            CodedCode(
                code="E11.9",
                description="Type 2 diabetes mellitus without complications",
                confidence=0.91,
                status="accepted",
                evidence=[Evidence(text="Type 2 diabetes", start=0, end=15)],
                warnings=[{"rule": "USE_ADDITIONAL", "reason": "use an additional code"}],
            ),
            CodedCode(
                code="R07.9",
                confidence=0.2,
                status="rejected",
                rejected_evidence=[Evidence(text="chest pain", start=24, end=34)],
                rules=["SPAN_NEGATED"],
                reasons=[{"rule": "SPAN_NEGATED", "reason": "the evidence is negated"}],
            ),
            CodedCode(
                code="I10",
                confidence=0.5,
                status="rejected",
                rules=["COMBINATION_REQUIRED"],
                reasons=[
                    {"rule": "COMBINATION_REQUIRED", "reason": "is coded I12.9", "replace_with": ["I12.9", "I12.0"]}
                ],
            ),
        ],
        routing=RoutingDecision(decision="review", reasons=["CODE_REJECTED:R07.9"]),
        versions={"codeset": "icd10cm-2026-04", "model": None},
        usage=Usage(),
        proposer="retrieval",
        chart_id=7,
        errors=["the LLM was slow"],
    )
    bundle = result_to_fhir(result, created=dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC))
    Bundle.model_validate(bundle)
    resources = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    claim, outcome = resources["Claim"], resources["OperationOutcome"]
    assert claim_codes(resources) == ["E11.9"]
    assert claim["identifier"][0]["value"] == "7"
    assert claim["created"] == "2026-05-04T12:00:00Z"
    assert "reference" not in claim["patient"]  # unknown: the data-absent-reason extension
    (diagnosis,) = claim["diagnosis"]
    parts = diagnosis["extension"][0]["extension"]
    assert {"url": "confidence", "valueDecimal": 0.91} in parts
    assert {"url": "warning", "valueCode": "USE_ADDITIONAL"} in parts
    (span,) = [p["extension"] for p in parts if p["url"] == "evidence"]
    assert text[span[0]["valueInteger"] : span[1]["valueInteger"]] == "Type 2 diabetes"
    rejected, combination, error = outcome["issue"]
    assert rejected["details"]["coding"][0]["code"] == "SPAN_NEGATED"
    assert "R07.9" in rejected["details"]["text"] and "replace with" not in rejected["diagnostics"]
    assert combination["diagnostics"] == "COMBINATION_REQUIRED: is coded I12.9 (replace with I12.9, I12.0)"
    assert error["diagnostics"] == "the LLM was slow"
    targets = {t["reference"] for t in resources["Provenance"]["target"]}
    assert targets == {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] != "Provenance"}
    assert provenance_versions(resources) == {"codeset": "icd10cm-2026-04"}  # None versions are left out
    routing = next(x for x in claim["extension"] if x["url"] == ROUTING_EXTENSION)
    assert {"url": "decision", "valueCode": "review"} in routing["extension"]
    documented = documented_extensions()
    for url, subs in used_extensions(bundle).items():
        assert subs <= documented[url], f"{url} uses undocumented {subs - documented[url]}"


def test_api_status_codes_for_fhir_errors() -> None:
    from medcode.copilot._app import _status_for
    from medcode.errors import MissingDependencyError

    assert _status_for(FHIRError("Bundle.entry", "holds no DocumentReference")) == 422
    assert _status_for(MissingDependencyError("FHIR needs the 'fhir' extra")) == 501


def test_error_to_fhir_names_the_path() -> None:
    bundle = error_to_fhir("n-2", FHIRError("DocumentReference.content[0].attachment.data", "not valid base64"))
    Bundle.model_validate(bundle)
    (issue,) = bundle["entry"][0]["resource"]["issue"]
    assert (issue["code"], issue["expression"]) == ("invalid", ["DocumentReference.content[0].attachment.data"])
    (issue,) = error_to_fhir("n-3", NoteError("the note is empty"))["entry"][0]["resource"]["issue"]
    assert "expression" not in issue and issue["diagnostics"] == "the note is empty"


# -- the real pipeline, in and out ------------------------------------------------------------------------------


def check_bundle(bundle: dict[str, Any], text: str) -> dict[str, Any]:
    """Validate ``bundle`` with fhir.resources and check every coded diagnosis' extension against the note."""
    Bundle.model_validate(bundle)  # raises on anything that is not valid R4(B)
    documented = documented_extensions()
    for url, subs in used_extensions(bundle).items():
        assert subs <= documented[url], f"{url} uses undocumented {subs - documented[url]}"
    resources = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    claim, provenance = resources["Claim"], resources["Provenance"]
    assert claim["status"] == "draft"
    claim_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    assert {"reference": claim_url} in provenance["target"]
    for diagnosis in claim.get("diagnosis", []):
        (ext,) = [x for x in diagnosis["extension"] if x["url"] == DIAGNOSIS_EXTENSION]
        parts = ext["extension"]
        confidence = [p["valueDecimal"] for p in parts if p["url"] == "confidence"]
        assert len(confidence) == 1 and 0 <= confidence[0] <= 1
        spans = [{s["url"]: s["valueInteger"] for s in p["extension"]} for p in parts if p["url"] == "evidence"]
        assert spans, f"{diagnosis['diagnosisCodeableConcept']} has no evidence offsets"
        for span in spans:
            assert 0 <= span["start"] < span["end"] <= len(text)
    return resources


def claim_codes(resources: dict[str, Any]) -> list[str]:
    return [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in resources["Claim"].get("diagnosis", [])]


def provenance_versions(resources: dict[str, Any]) -> dict[str, str]:
    (device,) = resources["Provenance"]["contained"]
    return {v["type"]["coding"][0]["code"]: v["value"] for v in device["version"]}


@pytest.mark.slow
def test_cli_round_trip_bundle_to_claim(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = FIXTURES / "bundle_in.json"
    text = attachment_text(fixture("bundle_in.json"))
    args = ["--data-dir", str(small_index_settings.data_dir), "code", str(source), "--proposer", "retrieval"]
    assert main([*args, "--no-record", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["identifier"]["value"] == "note-2026-0001"
    resources = check_bundle(bundle, text)
    codes = claim_codes(resources)
    assert "E11.9" in codes and "I10" in codes
    (e11,) = [
        d for d in resources["Claim"]["diagnosis"] if d["diagnosisCodeableConcept"]["coding"][0]["code"] == "E11.9"
    ]
    parts = e11["extension"][0]["extension"]
    quoted = [
        text[s["start"] : s["end"]]
        for s in ({x["url"]: x["valueInteger"] for x in p["extension"]} for p in parts if p["url"] == "evidence")
    ]
    assert any("diabetes" in q.lower() for q in quoted)
    assert resources["Claim"]["patient"]["reference"] == "Patient/pat-1"
    assert resources["Claim"]["billablePeriod"]["start"] == "2026-05-04"
    assert resources["Claim"]["type"]["coding"][0]["code"] == "professional"  # AMB: outpatient
    versions = provenance_versions(resources)
    assert versions["codeset"] and versions["index"] and versions["fhir_mappings"].startswith("fhir-map+")
    assert resources["Provenance"]["entity"][0]["what"]["reference"] == "DocumentReference/note-2026-0001"

    # The same note as JSON: the result says what the FHIR input made of it.
    assert main([*args, "--no-record", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["context"]["setting"] == "outpatient" and result["context"]["date_of_service"] == "2026-05-04"
    assert all(result["versions"][key] == value for key, value in versions.items())

    bad = tmp_path / "bad.json"
    bad.write_text((FIXTURES / "bad_base64.json").read_text(encoding="utf-8"), encoding="utf-8")
    assert main([*args[:3], str(bad), "--proposer", "retrieval", "--no-record"]) == 2
    err = capsys.readouterr().err
    assert "DocumentReference.content[0].attachment.data: not valid base64" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_code_batch_reads_and_writes_fhir(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inpatient = fixture("document_inpatient.json")
    rows = [fixture("bundle_in.json"), inpatient, fixture("bad_base64.json")]
    batch = tmp_path / "in.jsonl"
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    cmd = ["--data-dir", str(small_index_settings.data_dir), "code-batch", str(batch), "--out", str(out)]
    cmd += ["--proposer", "retrieval", "--no-record", "--format", "fhir"]
    assert main([*cmd, "--limit", "1"]) == 0
    assert main(cmd) == 1  # the bad line failed; the others are coded
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [b["identifier"]["value"] for b in lines] == ["note-2026-0001", "dc-summary-0002", "bad-base64"]
    for bundle in lines:
        Bundle.model_validate(bundle)
    coded = check_bundle(lines[1], attachment_text(inpatient))
    assert coded["Claim"]["type"]["coding"][0]["code"] == "institutional"  # Encounter.class IMP
    assert any(code.startswith(("J18", "I50")) for code in claim_codes(coded))
    (failed,) = [e["resource"] for e in lines[2]["entry"]]
    assert failed["resourceType"] == "OperationOutcome"
    assert failed["issue"][0]["expression"] == ["DocumentReference.content[0].attachment.data"]
    capsys.readouterr()
    # Resumes: every note is done (the FHIR lines' identifiers are the ids); the bad one still counts as failed.
    assert main(cmd) == 1
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    assert "1 note(s) failed in all" in capsys.readouterr().err
    # --retry-failed knows the OperationOutcome Bundle for an error line: only that note is coded again.
    assert main([*cmd, "--retry-failed"]) == 1
    again = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [b["identifier"]["value"] for b in again] == [*(b["identifier"]["value"] for b in lines), "bad-base64"]
    assert [e["resource"]["resourceType"] for e in again[3]["entry"]] == ["OperationOutcome"]
    assert "coded 0 note(s), 1 failed now, 2 already done" in capsys.readouterr().err


# -- the copilot API --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = own_data_dir(small_index_settings, tmp_path_factory.mktemp("fhir-api") / "data")
    loopback = ("127.0.0.1", 50000)  # the shared token is the bootstrap admin, accepted from loopback only
    with TestClient(create_app(settings, token=TOKEN, proposer="retrieval"), client=loopback) as test_client:
        yield test_client


@pytest.mark.slow
def test_api_codes_a_bundle_and_answers_fhir(client: TestClient) -> None:
    bundle = fixture("bundle_in.json")
    response = client.post(
        "/v1/code?wait=60&format=fhir",
        content=json.dumps(bundle),
        headers={**AUTH, "Content-Type": FHIR_MEDIA_TYPE},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_MEDIA_TYPE)
    resources = check_bundle(response.json(), attachment_text(bundle))
    assert {"E11.9", "I10"} <= set(claim_codes(resources))

    # No wait: a job; its status URL keeps the format, and Accept asks for FHIR as well as ?format does.
    queued = client.post(
        "/v1/code", json=fixture("document_inpatient.json"), headers={**AUTH, "Accept": FHIR_MEDIA_TYPE}
    )
    assert queued.status_code == 202, queued.text
    status_url = queued.json()["status_url"]
    assert status_url.endswith("?format=fhir")
    deadline = time.monotonic() + 120
    while True:
        polled = client.get(status_url, headers=AUTH)
        if polled.json().get("resourceType") == "Bundle" or time.monotonic() > deadline:
            break
        assert polled.json()["status"] in ("queued", "running"), polled.text
        time.sleep(0.2)
    assert polled.headers["content-type"].startswith(FHIR_MEDIA_TYPE)
    coded = check_bundle(polled.json(), attachment_text(fixture("document_inpatient.json")))
    assert coded["Claim"]["type"]["coding"][0]["code"] == "institutional"
    job_id = status_url.split("/")[-1].split("?")[0]
    plain = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()  # JSON stays the default
    assert plain["status"] == "done" and plain["result"]["context"]["setting"] == "inpatient"

    # A plain CodeRequest still works, and ?setting overrides the Encounter's class for a FHIR body.
    assert client.post("/v1/code", json={"text": attachment_text(bundle)}, headers=AUTH).status_code == 202
    bundle["entry"][1]["resource"]["class"]["code"] = "XYZ"
    assert client.post("/v1/code?setting=inpatient", json=bundle, headers=AUTH).status_code == 202


@pytest.mark.slow
def test_api_bad_fhir_is_a_422_naming_the_element(client: TestClient) -> None:
    response = client.post("/v1/code", json=fixture("bad_base64.json"), headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "FHIRError"
    assert error["path"] == "DocumentReference.content[0].attachment.data"
    assert error["message"] == "DocumentReference.content[0].attachment.data: not valid base64"
    assert "Chest pain" not in response.text

    bundle = fixture("bundle_in.json")
    bundle["entry"][1]["resource"]["class"]["code"] = "XYZ"
    response = client.post("/v1/code", json=bundle, headers=AUTH)
    assert response.status_code == 422 and response.json()["error"]["path"] == "Bundle.entry[1].resource.class"

    # A client that speaks FHIR gets an OperationOutcome, the path as the issue's expression.
    response = client.post("/v1/code", content=json.dumps(bundle), headers={**AUTH, "Content-Type": FHIR_MEDIA_TYPE})
    assert response.status_code == 422 and response.headers["content-type"].startswith(FHIR_MEDIA_TYPE)
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["Bundle.entry[1].resource.class"] and issue["code"] == "invalid"

    # Neither a FHIR resource nor a CodeRequest: the request's own validation error, naming the field.
    response = client.post("/v1/code", json={"text": "x", "age": 300}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("age:")
    response = client.post("/v1/code", json={"note": "x"}, headers=AUTH)
    assert response.status_code == 422 and "text" in response.json()["error"]["message"]
