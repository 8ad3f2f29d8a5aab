"""FHIR R4 in and out: a ``DocumentReference`` (or a ``Bundle`` holding one) becomes a ``Note``; a
``CodingResult`` becomes a ``Bundle`` with a draft ``Claim``, a ``Provenance`` and an ``OperationOutcome``.

Models and validation come from ``fhir.resources`` (the optional ``fhir`` extra), release line 8, sub-package
``R4B``: FHIR 4.3.0. R4 proper (4.0.1) ships only in ``fhir.resources`` 6.x, which needs pydantic 1, and 7.x/8.x
default to R5, whose ``DocumentReference`` and ``Encounter`` differ (no ``context.encounter``, ``Encounter.class``
a list of CodeableConcepts). R4B is R4 with changes to resources medcode does not use (medication definitions,
evidence, subscriptions): the elements read and written here are the same in both.

In (``note_from_fhir``): the note is the first ``content[].attachment`` with content type ``text/plain`` and
inline base64 ``data`` (UTF-8; a ``url`` is never fetched). ``subject`` (Patient: ``gender`` gives the sex,
``birthDate`` the age at the date of service) and ``context.encounter`` (Encounter: ``period.start`` is the date
of service, ``class`` the setting, see ``data/fhir.json``) are read when the Bundle (or the DocumentReference's
``contained``) holds them; a reference the Bundle does not resolve is an error. Every error is a ``FHIRError``
whose ``path`` names the element, FHIRPath-like.

Out (``result_to_fhir``): see the README's "FHIR R4" section (and ``data/fhir.json``) for every element and extension.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from medcode.agent._coder import CodedCode, CodingResult
from medcode.agent._note import FHIRReference, FHIRSource, Note, NoteMetadata
from medcode.errors import FHIRError, InputError, MissingDependencyError, NoteError

__all__ = [
    "CHART_ID_SYSTEM",
    "DIAGNOSIS_EXTENSION",
    "FHIR_MEDIA_TYPE",
    "ICD10CM_SYSTEM",
    "NOTE_ID_SYSTEM",
    "ROUTING_EXTENSION",
    "RULE_SYSTEM",
    "VERSION_SYSTEM",
    "error_to_fhir",
    "fhir_note_id",
    "is_fhir_resource",
    "looks_like_fhir",
    "mappings_version",
    "note_from_fhir",
    "operation_outcome",
    "parse_fhir_json",
    "require_fhir",
    "result_to_fhir",
]

FHIR_MEDIA_TYPE = "application/fhir+json"
_BASE = "https://medcode.dev/fhir"
DIAGNOSIS_EXTENSION = f"{_BASE}/StructureDefinition/coded-diagnosis"
ROUTING_EXTENSION = f"{_BASE}/StructureDefinition/routing"
RULE_SYSTEM = f"{_BASE}/CodeSystem/rule"
VERSION_SYSTEM = f"{_BASE}/CodeSystem/version"
NOTE_ID_SYSTEM = f"{_BASE}/sid/note-id"
CHART_ID_SYSTEM = f"{_BASE}/sid/chart-id"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
_DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_INPUT_TYPES = ("DocumentReference", "Bundle")
_UTF8 = ("utf-8", "utf8", "us-ascii", "ascii")


# -- the optional dependency --------------------------------------------------------------------


def _r4b() -> Any:
    """The ``fhir.resources.R4B`` package, or ``MissingDependencyError`` naming the extra."""
    try:
        import fhir.resources.R4B as r4b
    except ImportError:
        raise MissingDependencyError(
            "FHIR input and output need the 'fhir' extra: pip install 'medcode[fhir]' (or scripts/install --fhir)"
        ) from None
    return r4b


def _model(name: str) -> Any:
    """An R4B model class by resource name (``Bundle``); ``None`` for a name that is not an R4B resource."""
    r4b = _r4b()
    from fhir.resources.R4B.resource import Resource

    try:
        cls = r4b.get_fhir_model_class(name)
    except (ValueError, KeyError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, Resource) else None


@cache
def _mappings_bytes() -> bytes:
    return resources.files("medcode.agent").joinpath("data/fhir.json").read_bytes()


@cache
def _mappings() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_mappings_bytes())
    return data


def mappings_version() -> str:
    """``fhir-map+<12 hex>``: the digest of ``data/fhir.json`` (a result read from FHIR carries it in
    ``versions``). Raises ``FileNotFoundError`` for a broken install."""
    return f"fhir-map+{hashlib.sha256(_mappings_bytes()).hexdigest()[:12]}"


# -- detecting and reading ----------------------------------------------------------------------


def is_fhir_resource(value: object) -> bool:
    """True for a JSON object with a ``resourceType`` (what ``code``, ``code-batch`` and the API take as FHIR)."""
    return isinstance(value, Mapping) and "resourceType" in value


def require_fhir() -> None:
    """Raise ``MissingDependencyError`` (naming the ``fhir`` extra) unless FHIR support is installed."""
    _r4b()


def looks_like_fhir(text: str) -> bool:
    """True for text that is a JSON object with a ``resourceType`` (or one that names a resourceType but does not
    parse: reading it as FHIR then says why), so ``medcode code`` reads it as FHIR rather than as a note."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith("{"):
        return False
    try:
        return is_fhir_resource(json.loads(stripped))
    except json.JSONDecodeError:
        return '"resourceType"' in stripped[:10_000]


def parse_fhir_json(text: str, *, where: str = "input") -> dict[str, Any]:
    """A FHIR JSON document as a dict. Raises ``FHIRError`` for JSON that does not parse or is not an object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FHIRError("", f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise FHIRError("", f"{where} is not a JSON object (a FHIR resource)")
    return value


def _path(root: str, loc: tuple[int | str, ...]) -> str:
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(error: Mapping[str, Any]) -> str:
    """A validation error's message; base64Binary's decoding errors all say "not valid base64"."""
    message = str(error["msg"])
    if "base64" in message.lower():
        return "not valid base64"
    return message


def _validation_problem(root: str, exc: ValidationError) -> FHIRError:
    errors = exc.errors()
    first = errors[0]
    path = _path(root, tuple(first["loc"]))
    problem = _message(first)
    others = [f"{_path(root, tuple(e['loc']))}: {_message(e)}" for e in errors[1:3]]
    if others:
        problem += "; also " + "; ".join(others)
    if len(errors) > 3:
        problem += f" (+{len(errors) - 3} more)"
    return FHIRError(path, problem)


def _check_resource_types(resource: Mapping[str, Any], path: str) -> None:
    """Name the first unknown ``resourceType`` of a resource, its ``contained`` resources or its Bundle entries
    (``fhir.resources`` fails on one with a bare ``KeyError``)."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or _model(kind) is None:
        raise FHIRError(f"{path}.resourceType", "is not an R4 resource type")
    contained = resource.get("contained")
    for i, inner in enumerate(contained if isinstance(contained, list) else []):
        if isinstance(inner, Mapping):
            _check_resource_types(inner, f"{path}.contained[{i}]")
    entries = resource.get("entry") if kind == "Bundle" else None
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            inner = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(inner, Mapping):
                _check_resource_types(inner, f"{path}.entry[{i}].resource")


def _validated(resource: Mapping[str, Any]) -> Any:
    kind = resource.get("resourceType")
    if kind not in _INPUT_TYPES:
        shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
        raise FHIRError("resourceType", f"expected DocumentReference or Bundle, got {shown!r}")
    assert isinstance(kind, str)
    _check_resource_types(resource, kind)
    try:
        return _model(kind).model_validate(dict(resource))
    except ValidationError as exc:
        raise _validation_problem(kind, exc) from None
    except (KeyError, ValueError, TypeError) as exc:  # fhir.resources' own failures outside pydantic's errors
        raise FHIRError(kind, f"is not a valid FHIR R4 {kind} ({type(exc).__name__})") from None


class _Index:
    """The resources a DocumentReference's references can point to: its ``contained`` resources, and the
    Bundle's entries by ``fullUrl`` and by ``Type/id``."""

    def __init__(self, bundle: Any | None, document: Any, document_path: str) -> None:
        self.in_bundle = bundle is not None
        self.by_url: dict[str, tuple[str, Any]] = {}
        self.contained: dict[str, tuple[str, Any]] = {}
        for i, inner in enumerate(document.contained or []):
            if inner.id:
                self.contained[inner.id] = (f"{document_path}.contained[{i}]", inner)
        for i, entry in enumerate((bundle.entry or []) if bundle is not None else []):
            if entry.resource is None:
                continue
            item = (f"Bundle.entry[{i}].resource", entry.resource)
            if entry.fullUrl:
                self.by_url.setdefault(str(entry.fullUrl), item)
            if entry.resource.id:
                self.by_url.setdefault(f"{entry.resource.get_resource_type()}/{entry.resource.id}", item)

    def resolve(self, reference: Any, path: str, wanted: str) -> tuple[str, Any] | None:
        """The resource a Reference points to, with its path; None when it cannot be looked up here (no literal
        reference, or a server reference on a DocumentReference sent alone) or is not a ``wanted``."""
        literal = reference.reference if reference is not None else None
        if not literal:
            return None
        found: tuple[str, Any] | None
        if literal.startswith("#"):
            found = self.contained.get(literal[1:])
            if found is None:
                raise FHIRError(f"{path}.reference", f"points to #{literal[1:40]}, which is not a contained resource")
        elif not self.in_bundle:
            return None  # a server's resource; nothing to read it from
        else:
            found = self.by_url.get(literal)
            if found is None and "/" in literal and not literal.startswith("urn:"):
                found = self.by_url.get("/".join(literal.rstrip("/").split("/")[-2:]))  # an absolute URL
            if found is None:
                raise FHIRError(
                    f"{path}.reference",
                    f"{literal[:120]!r} is not in the Bundle (no entry with that fullUrl or Type/id); "
                    f"include the {wanted} or leave the reference out",
                )
        return found if found[1].get_resource_type() == wanted else None


def _document(root: Any) -> tuple[Any, str, Any | None]:
    """The DocumentReference, its path and the Bundle (None when sent alone)."""
    if root.get_resource_type() == "DocumentReference":
        return root, "DocumentReference", None
    found = [
        (i, entry.resource)
        for i, entry in enumerate(root.entry or [])
        if entry.resource is not None and entry.resource.get_resource_type() == "DocumentReference"
    ]
    if not found:
        raise FHIRError("Bundle.entry", "holds no DocumentReference (the note goes in one, as a text/plain attachment)")
    if len(found) > 1:
        which = ", ".join(str(i) for i, _ in found[:5])
        raise FHIRError(
            "Bundle.entry",
            f"holds {len(found)} DocumentReferences (entries {which}); send one note per request "
            "(code-batch: one per line)",
        )
    index, document = found[0]
    return document, f"Bundle.entry[{index}].resource", root


def _note_text(document: Any, path: str) -> tuple[str, str]:
    """The text of the first text/plain attachment with inline data, and the path of its data."""
    contents = document.content or []
    if not contents:
        raise FHIRError(f"{path}.content", "is empty: the note goes in a text/plain attachment")
    plain: list[tuple[str, Any]] = []
    seen: list[str] = []
    for i, content in enumerate(contents):
        attachment = content.attachment
        where = f"{path}.content[{i}].attachment"
        media = (attachment.contentType or "").split(";")[0].strip().lower() if attachment else ""
        seen.append(media or "no contentType")
        if media == "text/plain":
            plain.append((where, attachment))
    if not plain:
        raise FHIRError(
            f"{path}.content", f"has no text/plain attachment (found: {', '.join(sorted(set(seen)))[:200]})"
        )
    for where, attachment in plain:
        if attachment.data is not None:
            return _decoded(attachment, where), f"{where}.data"
    where, attachment = plain[0]
    if attachment.url:
        raise FHIRError(
            f"{where}.url",
            "medcode reads only inline attachment data (it works offline and fetches nothing): put the note "
            "in attachment.data, base64-encoded UTF-8",
        )
    raise FHIRError(f"{where}.data", "is missing: the text/plain attachment has neither data nor url")


def _decoded(attachment: Any, where: str) -> str:
    params = [p.strip() for p in (attachment.contentType or "").split(";")[1:]]
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            raise FHIRError(f"{where}.contentType", "names a charset other than UTF-8; send the note as UTF-8")
    data = attachment.data
    if isinstance(data, str):  # fhir.resources decodes base64Binary to bytes; be safe if a release does not
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise FHIRError(f"{where}.data", "not valid base64") from None
    try:
        text: str = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FHIRError(
            f"{where}.data", f"is not UTF-8 text (bad byte at offset {exc.start} of the decoded data)"
        ) from None
    if not text.strip():
        raise FHIRError(f"{where}.data", "is empty: the note has no text")
    return text


def _full_date(value: Any, path: str) -> dt.date | None:
    """A FHIR date or dateTime as a date (the date as written, in its own time zone)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise FHIRError(path, "needs a full date (YYYY-MM-DD) to pick the code-set release")


def _age(birth: Any, on: dt.date, path: str) -> int | None:
    """Age in whole years on a date. A partial birthDate (a year, or a year and month) gives an age only
    when every day it allows gives the same age; otherwise the age is unknown (None)."""

    def years(born: dt.date) -> int:
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    if isinstance(birth, dt.datetime):
        birth = birth.date()
    if isinstance(birth, dt.date):
        earliest = latest = birth
    else:
        parts = [int(p) for p in str(birth).split("-")]
        if len(parts) == 1:
            earliest, latest = dt.date(parts[0], 1, 1), dt.date(parts[0], 12, 31)
        else:
            earliest = dt.date(parts[0], parts[1], 1)
            latest = (earliest.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    if earliest > on:
        raise FHIRError(path, f"is after the date the age is computed on ({on.isoformat()})")
    oldest, youngest = years(earliest), years(min(latest, on))
    if oldest > 130:
        raise FHIRError(path, "gives an age over 130 years")
    return oldest if oldest == youngest else None


def _outside_reference(reference: Any, resource: Any) -> FHIRReference | None:
    """How the output can cite a resource of the input: ``Type/id`` when it has an id (a contained resource's id
    is local to its container: not used), the literal reference when it is a server's (not a Bundle-local
    ``urn:`` or contained ``#``), and its first identifier."""
    literal = reference.reference if reference is not None else None
    contained = bool(literal and literal.startswith("#"))
    ref: str | None = None
    if resource is not None and resource.id and not contained:
        ref = f"{resource.get_resource_type()}/{resource.id}"
    elif literal and not literal.startswith(("urn:", "#")):
        ref = literal
    identifiers = list(getattr(resource, "identifier", None) or []) if resource is not None else []
    if reference is not None and reference.identifier is not None:
        identifiers.append(reference.identifier)
    ident = next((i for i in identifiers if i.value), None)
    if ref is None and ident is None:
        return None
    return FHIRReference(
        reference=ref,
        system=str(ident.system) if ident is not None and ident.system else None,
        value=ident.value if ident is not None else None,
    )


def fhir_note_id(resource: object) -> str | None:
    """The note id ``note_from_fhir`` gives a raw (unvalidated) DocumentReference or Bundle, or None when it has
    none (or is not one): for ``code-batch`` to skip notes already done before reading them."""
    if not isinstance(resource, Mapping):
        return None
    if resource.get("resourceType") == "Bundle":
        entries = resource.get("entry")
        documents = [
            e["resource"]
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, Mapping)
            and isinstance(e.get("resource"), Mapping)
            and e["resource"].get("resourceType") == "DocumentReference"
        ]
        return fhir_note_id(documents[0]) if len(documents) == 1 else None
    if resource.get("resourceType") != "DocumentReference":
        return None
    master = resource.get("masterIdentifier")
    candidates = [resource.get("id"), master.get("value") if isinstance(master, Mapping) else None]
    identifiers = resource.get("identifier")
    candidates += [
        i.get("value") for i in (identifiers if isinstance(identifiers, list) else []) if isinstance(i, Mapping)
    ]
    return next((str(c) for c in candidates if isinstance(c, str) and c), None)


def _note_id(document: Any) -> str | None:
    if document.id:
        return str(document.id)
    if document.masterIdentifier is not None and document.masterIdentifier.value:
        return str(document.masterIdentifier.value)
    return next((str(i.value) for i in document.identifier or [] if i.value), None)


def _note_type(document: Any) -> str | None:
    mapping: dict[str, str] = _mappings()["document_type_note_type"]
    system = _mappings()["loinc_system"]
    codings = document.type.coding if document.type is not None else None
    for coding in codings or []:
        if coding.system == system and coding.code in mapping:
            return mapping[coding.code]
    return None


def _setting(encounter: Any, path: str) -> str | None:
    coding = encounter.class_fhir
    if coding is None or not coding.code:
        return None
    table: dict[str, str] = _mappings()["encounter_class_setting"]
    system = _mappings()["encounter_class_system"]
    if coding.system not in (None, system) or coding.code not in table:
        inpatient = ", ".join(k for k, v in table.items() if v == "inpatient")
        outpatient = ", ".join(k for k, v in table.items() if v == "outpatient")
        raise FHIRError(
            f"{path}.class",
            f"code {str(coding.code)[:20]!r} is not one medcode maps to a setting (v3 ActCode; inpatient: "
            f"{inpatient}; outpatient: {outpatient}); give the setting (medcode code --setting, or ?setting= on POST /v1/code)",
        )
    return table[coding.code]


def note_from_fhir(
    resource: object,
    max_chars: int,
    *,
    default_setting: str = "outpatient",
    default_note_type: str = "outpatient_visit",
    today: dt.date | None = None,
    **overrides: Any,
) -> Note:
    """The note a FHIR R4 ``DocumentReference``, or a ``Bundle`` holding exactly one, carries.

    Read: the text (first ``text/plain`` attachment with inline base64 UTF-8 ``data``), the note id
    (``id``, else ``masterIdentifier``, else the first ``identifier``), the note type (``type``: LOINC 18842-5
    discharge summary, 34111-5 ED note), the Patient's sex (``gender`` male/female; other and unknown give none)
    and age (from ``birthDate`` at the date of service, else at ``DocumentReference.date``, else ``today``), the
    Encounter's date of service (``period.start``, else the DocumentReference's ``context.period.start``) and
    setting (``class``, ``data/fhir.json``). Given ``overrides`` (``id``, ``setting``, ``note_type``, ``age``,
    ``sex``, ``date_of_service``, ``metadata``: the caller's own) win; a None override is ignored.

    Raises ``FHIRError`` naming the element for invalid FHIR or an unusable resource (not a DocumentReference
    or Bundle, no text/plain attachment, bad base64 or UTF-8, a url-only attachment, a reference the Bundle does
    not resolve, an unmapped Encounter class without a setting override, a birthDate after the service date),
    ``MissingDependencyError`` without the ``fhir`` extra.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if not isinstance(resource, Mapping):
        raise FHIRError("", "expected a FHIR resource (a JSON object with resourceType)")
    root = _validated(resource)
    document, path, bundle = _document(root)
    text, data_path = _note_text(document, path)
    index = _Index(bundle, document, path)

    patient_at = index.resolve(document.subject, f"{path}.subject", "Patient")
    encounter_ref = next(iter(document.context.encounter or []), None) if document.context is not None else None
    encounter_at = index.resolve(encounter_ref, f"{path}.context.encounter[0]", "Encounter")

    fields: dict[str, Any] = {"setting": default_setting, "note_type": _note_type(document) or default_note_type}
    note_id = _note_id(document)
    if note_id is not None:
        fields["id"] = note_id
    service: dt.date | None = None
    encounter_class: str | None = None
    if encounter_at is not None:
        enc_path, encounter = encounter_at
        if encounter.period is not None:
            service = _full_date(encounter.period.start, f"{enc_path}.period.start")
        if "setting" not in given:
            fields["setting"] = _setting(encounter, enc_path) or default_setting
        encounter_class = encounter.class_fhir.code if encounter.class_fhir is not None else None
    if service is None and document.context is not None and document.context.period is not None:
        service = _full_date(document.context.period.start, f"{path}.context.period.start")
    if service is not None:
        fields["date_of_service"] = service
    metadata = NoteMetadata(encounter_date=service)
    if patient_at is not None:
        pat_path, patient = patient_at
        if patient.gender is not None and patient.gender not in ("male", "female", "other", "unknown"):
            raise FHIRError(f"{pat_path}.gender", "is not male, female, other or unknown (AdministrativeGender)")
        fields["sex"] = {"female": "F", "male": "M"}.get(str(patient.gender or ""))
        if patient.birthDate is not None and "age" not in given:
            on = given.get("date_of_service") or service
            if on is None and document.date is not None:
                on = document.date.date() if isinstance(document.date, dt.datetime) else None
            fields["age"] = _age(patient.birthDate, on or today or dt.date.today(), f"{pat_path}.birthDate")
    if isinstance(given.get("metadata"), NoteMetadata):
        explicit = given.pop("metadata").model_dump(exclude_none=True)
        metadata = metadata.model_copy(update=explicit)
    fields["metadata"] = metadata
    fields["fhir"] = FHIRSource(
        document=_outside_reference(None, document),
        patient=_outside_reference(document.subject, patient_at[1] if patient_at else None),
        encounter=_outside_reference(encounter_ref, encounter_at[1] if encounter_at else None),
        encounter_class=encounter_class,
        mappings_version=mappings_version(),
    )
    fields.update(given)
    try:
        return Note.checked(text, max_chars, **fields)
    except NoteError as exc:
        raise FHIRError(data_path, str(exc)) from None
    except InputError as exc:
        raise FHIRError(path, str(exc)) from None


# -- out ----------------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _absent() -> dict[str, Any]:
    """A required element medcode does not know (FHIR's data-absent-reason extension)."""
    return {"extension": [{"url": _DATA_ABSENT, "valueCode": "unknown"}]}


def _diagnosis_extension(code: CodedCode, *, rejected: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if rejected:
        parts.append({"url": "code", "valueCoding": _coding(ICD10CM_SYSTEM, code.code, code.description)})
    if code.confidence is not None:
        parts.append({"url": "confidence", "valueDecimal": round(code.confidence, 4)})
    spans = [*code.evidence, *(code.rejected_evidence if rejected else [])]
    for span in spans:
        if span.start is None or span.end is None:
            continue
        parts.append(
            {
                "url": "evidence",
                "extension": [{"url": "start", "valueInteger": span.start}, {"url": "end", "valueInteger": span.end}],
            }
        )
    parts += [{"url": "rule", "valueCode": rule} for rule in code.rules]
    parts += [{"url": "warning", "valueCode": w.rule} for w in code.warnings]
    return {"url": DIAGNOSIS_EXTENSION, "extension": parts}


def _claim(result: CodingResult, created: str) -> dict[str, Any]:
    context = result.context
    source = context.fhir if context is not None else None
    inpatient = context is not None and context.setting == "inpatient"
    routing: list[dict[str, Any]] = [{"url": "decision", "valueCode": result.routing.decision}]
    routing += [{"url": "reason", "valueString": reason} for reason in result.routing.reasons]
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "extension": [{"url": ROUTING_EXTENSION, "extension": routing}],
        "status": "draft",
        "type": {
            "coding": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/claim-type", "institutional" if inpatient else "professional"
                )
            ]
        },
        "use": "claim",
        "patient": source.patient.to_fhir() if source is not None and source.patient is not None else _absent(),
        "created": created,
        "provider": _absent(),
        "priority": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal")]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": _absent()}],
    }
    if result.chart_id is not None:
        claim["identifier"] = [{"system": CHART_ID_SYSTEM, "value": str(result.chart_id)}]
    if context is not None and context.date_of_service is not None:
        claim["billablePeriod"] = {"start": context.date_of_service.isoformat()}
    diagnoses: list[dict[str, Any]] = []
    for code in (c for c in result.codes if c.status == "accepted"):
        diagnoses.append(
            {
                "extension": [_diagnosis_extension(code, rejected=False)],
                "sequence": len(diagnoses) + 1,
                "diagnosisCodeableConcept": {"coding": [_coding(ICD10CM_SYSTEM, code.code, code.description)]},
            }
        )
    if diagnoses:
        claim["diagnosis"] = diagnoses
    return claim


def _outcome(result: CodingResult) -> dict[str, Any] | None:
    issues: list[dict[str, Any]] = []
    for code in (c for c in result.codes if c.status == "rejected"):
        reasons = "; ".join(
            f"{r.rule}: {r.reason}" + (f" (replace with {', '.join(r.replace_with[:5])})" if r.replace_with else "")
            for r in code.reasons
        )
        issues.append(
            {
                "extension": [_diagnosis_extension(code, rejected=True)],
                "severity": "warning",
                "code": "business-rule",
                "details": {
                    "coding": [_coding(RULE_SYSTEM, rule) for rule in code.rules],
                    "text": f"{code.code} rejected by the validators; not on the claim",
                },
                **({"diagnostics": reasons} if reasons else {}),
            }
        )
    for error in result.errors:
        issues.append({"severity": "warning", "code": "exception", "diagnostics": error})
    return {"resourceType": "OperationOutcome", "issue": issues} if issues else None


def _provenance(result: CodingResult, targets: list[str], created: str) -> dict[str, Any]:
    versions = [
        {"type": {"coding": [_coding(VERSION_SYSTEM, key)]}, "value": value}
        for key, value in result.versions.items()
        if value
    ]
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "contained": [
            {
                "resourceType": "Device",
                "id": "medcode",
                "deviceName": [{"name": "medcode", "type": "user-friendly-name"}],
                "type": {"text": "ICD-10-CM coding software (medcode)"},
                "version": versions,
            }
        ],
        "target": [{"reference": target} for target in targets],
        "recorded": created,
        "activity": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE")]},
        "agent": [
            {
                "type": {
                    "coding": [_coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author")]
                },
                "who": {"reference": "#medcode"},
            }
        ],
    }
    source = result.context.fhir if result.context is not None else None
    if source is not None and source.document is not None:
        provenance["entity"] = [{"role": "source", "what": source.document.to_fhir()}]
    return provenance


def _canonical(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle validated by ``fhir.resources`` and serialised by it (what a FHIR reader gets back)."""
    model = _model("Bundle").model_validate(bundle)
    out: dict[str, Any] = json.loads(model.model_dump_json())
    return out


def result_to_fhir(result: CodingResult, *, created: dt.datetime | None = None) -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (type collection) of a coding result: a draft ``Claim`` whose ``diagnosis`` lists the
    accepted codes, an ``OperationOutcome`` with the rejected codes and run errors (when there are any), and a
    ``Provenance`` naming medcode and every version. ``Bundle.identifier`` is the note id. The layout and the
    extensions are in the README's "FHIR R4" section. Raises ``MissingDependencyError`` without the ``fhir`` extra.
    """
    when = (created or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    claim_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [{"fullUrl": claim_url, "resource": _claim(result, when)}]
    outcome = _outcome(result)
    targets = [claim_url]
    if outcome is not None:
        outcome_url = f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": outcome_url, "resource": outcome})
        targets.append(outcome_url)
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": _provenance(result, targets, when)})
    return _canonical(
        {
            "resourceType": "Bundle",
            "identifier": {"system": NOTE_ID_SYSTEM, "value": result.note_id},
            "type": "collection",
            "timestamp": when,
            "entry": entries,
        }
    )


def operation_outcome(exc: Exception) -> dict[str, Any]:
    """An ``OperationOutcome`` with one error issue saying why a note could not be coded: the error's class and
    message; a ``FHIRError``'s path is the issue's ``expression``. Raises ``MissingDependencyError`` without the
    ``fhir`` extra."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": "invalid" if isinstance(exc, InputError) else "exception",
        "details": {"text": type(exc).__name__},
        "diagnostics": str(exc),
    }
    if isinstance(exc, FHIRError) and exc.path:
        issue["expression"] = [exc.path]
    outcome: dict[str, Any] = json.loads(
        _model("OperationOutcome")
        .model_validate({"resourceType": "OperationOutcome", "issue": [issue]})
        .model_dump_json()
    )
    return outcome


def error_to_fhir(note_id: str, exc: Exception, *, created: dt.datetime | None = None) -> dict[str, Any]:
    """A Bundle (identifier: the note id) holding the ``operation_outcome`` of ``exc``: ``code-batch --format
    fhir``'s line for a failed note."""
    when = (created or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    return _canonical(
        {
            "resourceType": "Bundle",
            "identifier": {"system": NOTE_ID_SYSTEM, "value": note_id},
            "type": "collection",
            "timestamp": when,
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": operation_outcome(exc)}],
        }
    )
