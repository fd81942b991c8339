"""A record's content as people read it: labelled fields, never a JSON dump.

``readable(content)`` turns a record's JSON into a ``Readable``: a heading
(what kind of record it is) and a list of ``Field`` (a label and either a
line of text or nested fields). FHIR R4 resources the vault holds
(AllergyIntolerance, MedicationStatement, Condition, Observation,
Immunization, ...) get their human text picked out (a coding's ``display``,
a concept's ``text``, a quantity with its unit); tenancy documents and any
other shape get every field labelled from its key, with amounts shown with
their currency. The templates render fields as definition lists.
"""

import re
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 6
MAX_ITEMS = 200


@dataclass(frozen=True)
class Field:
    label: str
    text: str | None = None  # a line of text, or
    children: list["Field"] = field(default_factory=list)  # nested fields (a list's items are numbered)


@dataclass(frozen=True)
class Readable:
    kind: str  # "Allergy or intolerance", "Lease", "Note", ...
    fields: list[Field]
    note: str | None = None  # the text of a plain note


RESOURCE_KINDS = {
    "AllergyIntolerance": "Allergy or intolerance",
    "MedicationStatement": "Medication",
    "MedicationRequest": "Prescription",
    "Condition": "Condition",
    "Observation": "Observation or test result",
    "Immunization": "Immunization",
    "Procedure": "Procedure",
    "DiagnosticReport": "Diagnostic report",
    "DocumentReference": "Document",
    "ImagingStudy": "Imaging study",
    "Patient": "Patient details",
}
DOCUMENT_KINDS = {
    "residential-lease": "Lease",
    "income-statement": "Income statement",
    "reference": "Reference",
    "deposit": "Deposit",
    "note": "Note",
}

# Keys that name the resource or point at the patient: shown by the heading, or not at all.
SKIPPED = {"resourceType", "id", "meta", "patient", "subject", "text", "type", "contained"}

# Friendlier labels for FHIR element names and common tenancy keys.
LABELS = {
    "clinicalStatus": "Clinical status",
    "verificationStatus": "Verification",
    "code": "What",
    "criticality": "Criticality",
    "category": "Category",
    "reaction": "Reactions",
    "manifestation": "Reaction",
    "severity": "Severity",
    "onsetDateTime": "Since",
    "recordedDate": "Recorded",
    "medicationCodeableConcept": "Medication",
    "dosage": "Dosage",
    "effectiveDateTime": "When",
    "effectivePeriod": "Period",
    "valueQuantity": "Result",
    "valueString": "Result",
    "valueCodeableConcept": "Result",
    "referenceRange": "Normal range",
    "interpretation": "Interpretation",
    "vaccineCode": "Vaccine",
    "occurrenceDateTime": "Given on",
    "lotNumber": "Lot number",
    "performer": "Given by",
    "note": "Notes",
    "status": "Status",
    "abatementDateTime": "Resolved on",
    "bodySite": "Body site",
    "monthly_rent": "Monthly rent",
    "gross_annual": "Gross annual income",
    "net_monthly": "Net monthly income",
    "tax_year": "Tax year",
    "verified_by": "Verified by",
}

CODE_WORDS = {
    "active": "Active",
    "inactive": "Inactive",
    "resolved": "Resolved",
    "confirmed": "Confirmed",
    "unconfirmed": "Unconfirmed",
    "refuted": "Refuted",
    "completed": "Completed",
    "final": "Final",
    "high": "High",
    "low": "Low",
    "severe": "Severe",
    "moderate": "Moderate",
    "mild": "Mild",
}


def label_of(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:].lower() if words else key


def _is_concept(value: dict) -> bool:
    return "coding" in value or ("text" in value and set(value) <= {"text", "coding"})


def _concept_text(value: dict) -> str:
    """A CodeableConcept's human text: its text, else its codings' displays, else their codes."""
    if isinstance(value.get("text"), str) and value["text"].strip():
        return value["text"]
    codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
    shown = [str(c["display"]) for c in codings if c.get("display")]
    if shown:
        return "; ".join(shown)
    codes = [str(c["code"]) for c in codings if c.get("code")]
    return "; ".join(CODE_WORDS.get(c, c) for c in codes) or "—"


def _quantity_text(value: dict) -> str | None:
    if "value" in value and ("unit" in value or "code" in value) and set(value) <= {"value", "unit", "code", "system"}:
        return f"{value['value']} {value.get('unit') or value.get('code')}"
    if "amount" in value and "currency" in value and set(value) <= {"amount", "currency"}:
        return f"{value['amount']:,} {value['currency']}" if isinstance(value["amount"], int) else _amount(value)
    if "reference" in value and set(value) <= {"reference", "display", "type"}:
        return str(value.get("display") or value["reference"])
    if set(value) <= {"start", "end"} and value:
        return " to ".join(str(value[k]) for k in ("start", "end") if k in value)
    return None


def _amount(value: dict) -> str:
    return f"{value['amount']} {value['currency']}"


def _scalar(value: Any) -> str:
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if value is None:
        return "—"
    if isinstance(value, str):
        return CODE_WORDS.get(value, value)
    return str(value)


def _line(value: Any) -> str | None:
    """One line of text for ``value`` when it has one (a scalar, a concept, a quantity, a list of such)."""
    if not isinstance(value, (dict, list)):
        return _scalar(value)
    if isinstance(value, dict):
        if _is_concept(value):
            return _concept_text(value)
        quantity = _quantity_text(value)
        if quantity is not None:
            return quantity
        if set(value) == {"text"} or ("text" in value and isinstance(value["text"], str) and len(value) <= 2):
            return str(value["text"])
        return None
    lines = [_line(v) for v in value]
    if all(line is not None for line in lines):
        return "; ".join(line for line in lines if line) or "—"
    return None


def _fields(value: dict, depth: int, *, skip: set[str] | frozenset[str] = frozenset()) -> list[Field]:
    found = []
    for key, item in list(value.items())[:MAX_ITEMS]:
        if key in skip:
            continue
        found.append(_field(label_of(str(key)), item, depth))
    return found


def _field(label: str, value: Any, depth: int) -> Field:
    line = _line(value)
    if line is not None or depth >= MAX_DEPTH:
        return Field(label=label, text=line if line is not None else "(more detail not shown)")
    if isinstance(value, dict):
        return Field(label=label, children=_fields(value, depth + 1))
    items = list(value)[:MAX_ITEMS]
    if len(items) == 1:
        return _field(label, items[0], depth)
    return Field(label=label, children=[_field(f"{n}", item, depth + 1) for n, item in enumerate(items, 1)])


def readable(content: Any) -> Readable:
    """A record's content as a heading and labelled fields."""
    if not isinstance(content, dict):
        line = _line(content)
        if line is not None:
            return Readable(kind="Record", fields=[Field(label="Content", text=line)])
        return Readable(kind="Record", fields=[_field("Content", content, 0)])
    resource = content.get("resourceType")
    if isinstance(resource, str):
        kind = RESOURCE_KINDS.get(resource, label_of(resource))
        narrative = content.get("text")
        fields = _fields(content, 0, skip=SKIPPED)
        if isinstance(narrative, dict) and isinstance(narrative.get("div"), str):
            # A FHIR narrative is XHTML: shown as its text, never as markup.
            plain = re.sub(r"<[^>]*>", " ", narrative["div"])
            fields.insert(0, Field(label="Summary", text=" ".join(plain.split())))
        return Readable(kind=kind, fields=fields)
    document = content.get("type")
    if document == "note" and isinstance(content.get("text"), str):
        rest = {k: v for k, v in content.items() if k not in ("type", "text")}
        return Readable(kind="Note", fields=_fields(rest, 0), note=content["text"])
    kind = DOCUMENT_KINDS.get(document, label_of(document)) if isinstance(document, str) else "Record"
    return Readable(kind=kind, fields=_fields(content, 0, skip={"type"} if isinstance(document, str) else set()))
