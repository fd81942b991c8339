"""A realistic demo data set: residents, a clinic, a landlord, an agency, officers, records.

Every principal gets a login and a generated password for the pages, and
the roles that must use TOTP an enabled secret, printed as text once (and
saved with the tokens, for the demo only).

Health records are FHIR R4-shaped resources (AllergyIntolerance,
MedicationStatement, Condition); tenancy records are a lease and income
statements, one of them issued and signed by the agency, a payroll service
(docs/attestations.md), whose private key the demo keeps with its tokens.
Every name and number is invented.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto.issuer import IssuerKey, format_issued_at, sign_record
from vault.attestations import attest
from vault.consent import access_requests, consent
from vault.core.caller import Caller
from vault.core.config import DEFAULT_ATTESTATION_VALID_DAYS, ConsentLimits
from vault.core.content import encode_content
from vault.identity import issuer_keys, logins, passwords, principals, totp
from vault.keys.attestation_key import AttestationKey
from vault.keys.keys import KeyStore
from vault.records import records
from vault.records.provenance import IssuerSignature, statement
from vault.storage.models import Principal

PEOPLE = (
    ("resident", "Amina Yusuf"),
    ("resident", "Tomasz Nowak"),
    ("resident", "Grace Okafor"),
    ("clinic", "Riverside Community Clinic"),
    ("landlord", "Harbour Housing Association"),
    ("compliance", "Dana Whitfield (Compliance)"),
    ("admin", "City Data Operator"),
    ("agency", "Northside Payroll Services"),
)
# Their logins for the pages (a second demo load in the same vault gets "amina-2", ...).
LOGINS = {
    "Amina Yusuf": "amina",
    "Tomasz Nowak": "tomasz",
    "Grace Okafor": "grace",
    "Riverside Community Clinic": "riverside",
    "Harbour Housing Association": "harbour",
    "Dana Whitfield (Compliance)": "compliance",
    "City Data Operator": "operator",
    "Northside Payroll Services": "northside",
}


def _allergy(patient: str, substance: str, code: str, reaction: str) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}
            ]
        },
        "category": ["medication"],
        "criticality": "high",
        "code": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": substance}]
        },
        "patient": {"reference": f"Patient/{patient}"},
        "reaction": [{"manifestation": [{"text": reaction}], "severity": "severe"}],
    }


def _medication(patient: str, drug: str, code: str, dose: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": drug}]
        },
        "subject": {"reference": f"Patient/{patient}"},
        "dosage": [{"text": dose}],
    }


def _condition(patient: str, text: str, snomed: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed, "display": text}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def _lease(tenant: str, address: str, rent: int, start: str) -> dict[str, Any]:
    return {
        "type": "residential-lease",
        "tenant": tenant,
        "landlord": "Harbour Housing Association",
        "address": address,
        "monthly_rent": {"amount": rent, "currency": "EUR"},
        "deposit": {"amount": rent * 2, "currency": "EUR"},
        "term": {"start": start, "months": 12, "renewal": "automatic"},
    }


def _income(name: str, employer: str, annual: int, year: int, verified_by: str = "payroll letter") -> dict[str, Any]:
    return {
        "type": "income-statement",
        "person": name,
        "tax_year": year,
        "employer": employer,
        "gross_annual": {"amount": annual, "currency": "EUR"},
        "net_monthly": {"amount": round(annual * 0.68 / 12), "currency": "EUR"},
        "verified_by": verified_by,
    }


def _free_login(session: Session, keys: KeyStore, wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``, ... when an earlier demo load took it."""
    candidate, n = wanted, 1
    while logins.find_principal(session, keys, candidate) is not None:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _sign_in(
    session: Session, keys: KeyStore, principal_id: str, role: str, name: str, *, now: datetime
) -> dict[str, str]:
    """A login, a generated password and, for the roles that need it, an enabled TOTP secret.

    The demo plays the person's authenticator app once: it confirms the
    enrolment with the code of the previous 30-second step, so the code an
    app shows now is still unused for the first sign-in.
    """
    login = logins.set_login(session, keys, principal_id, _free_login(session, keys, LOGINS[name]))
    password = secrets.token_urlsafe(12)
    passwords.set_password(session, keys, principal_id, password, now=now)
    found = {"login": login, "password": password}
    if totp.required_for(role):
        enrolment = totp.enrol(session, keys, principal_id)
        code = pyotp.TOTP(enrolment.secret).at(now - timedelta(seconds=totp.STEP_SECONDS))
        if not totp.confirm_enrolment(session, keys, principal_id, code, now=now):
            raise RuntimeError("the demo's TOTP enrolment did not confirm")
        found["totp_secret"] = enrolment.secret
    return found


def has_data(session: Session) -> bool:
    return session.scalar(select(Principal.id).limit(1)) is not None


def load(
    session: Session,
    keys: KeyStore,
    *,
    now: datetime,
    limits: ConsentLimits | None = None,
    attestation_key: AttestationKey | None = None,
    attestation_valid_days: int = DEFAULT_ATTESTATION_VALID_DAYS,
) -> tuple[list[dict[str, str]], list[str]]:
    """Create the demo principals, records and consent story.

    Returns each principal with its token, login, password (and TOTP secret
    for the roles that need one), and the story as lines of text. With the
    vault's ``attestation_key``, the story ends with the landlord obtaining
    an attestation about Tomasz's issued income statement.
    """
    created: list[dict[str, str]] = []
    for role, name in PEOPLE:
        info, token = principals.create_principal(session, keys, role=role, name=name, now=now)
        created.append(
            {
                "id": info.id,
                "role": role,
                "name": name,
                "token": token,
                **_sign_in(session, keys, info.id, role, name, now=now),
            }
        )
    amina, tomasz, grace = (p for p in created if p["role"] == "resident")
    for person, data in (
        (
            amina,
            [
                (
                    "health.allergies",
                    "Penicillin allergy",
                    _allergy(amina["id"], "Penicillin G", "7980", "Anaphylaxis"),
                ),
                (
                    "health.medications",
                    "Metformin",
                    _medication(amina["id"], "Metformin 500 MG Oral Tablet", "861007", "500 mg twice daily with meals"),
                ),
                (
                    "health.conditions",
                    "Type 2 diabetes",
                    _condition(amina["id"], "Type 2 diabetes mellitus", "44054006"),
                ),
                (
                    "tenancy.lease",
                    "Lease, Quay Street",
                    _lease("Amina Yusuf", "12 Quay Street, Flat 3", 940, "2026-02-01"),
                ),
                ("tenancy.income", "Income statement 2025", _income("Amina Yusuf", "Northgate Logistics", 41200, 2025)),
            ],
        ),
        (
            tomasz,
            [
                ("health.allergies", "Peanut allergy", _allergy(tomasz["id"], "Peanut", "1191", "Hives and swelling")),
                ("tenancy.income", "Income statement 2025", _income("Tomasz Nowak", "Riverside Bakery", 29800, 2025)),
            ],
        ),
        (
            grace,
            [
                (
                    "health.medications",
                    "Salbutamol inhaler",
                    _medication(grace["id"], "Albuterol 0.09 MG/ACTUAT inhaler", "745679", "2 puffs as needed"),
                ),
                ("tenancy.lease", "Lease, Mill Lane", _lease("Grace Okafor", "4 Mill Lane", 780, "2025-09-01")),
            ],
        ),
    ):
        caller = Caller(id=person["id"], role="resident")
        for category, title, content in data:
            records.create_record(
                session, keys, caller, subject_id=person["id"], category=category, content=content, title=title, now=now
            )
    story = _story(session, keys, created, now=now, limits=limits or ConsentLimits())
    if attestation_key is not None:
        story.extend(
            _screening(
                session,
                keys,
                created,
                now=now,
                limits=limits or ConsentLimits(),
                key=attestation_key,
                valid_days=attestation_valid_days,
            )
        )
    return created, story


def _story(
    session: Session, keys: KeyStore, people: list[dict[str, str]], *, now: datetime, limits: ConsentLimits
) -> list[str]:
    """The consent story: a grant, a request approved, a grant revoked."""
    by_role: dict[str, list[Caller]] = {}
    for person in people:
        by_role.setdefault(person["role"], []).append(Caller(id=person["id"], role=person["role"]))
    (amina, tomasz, grace), clinic, landlord = by_role["resident"], by_role["clinic"][0], by_role["landlord"][0]
    story: list[str] = []

    treatment = consent.create_grant(
        session,
        amina,
        grantee_id=clinic.id,
        categories=["health.*"],
        purpose="treatment",
        actions=["read"],
        expires_at=now + timedelta(days=90),
        limits=limits,
        now=now,
    )
    story.append(
        f"Amina Yusuf grants Riverside Community Clinic health.* for treatment until {treatment.expires_at:%Y-%m-%d} "
        f"({treatment.id})"
    )
    allergy = records.list_records(
        session, keys, clinic, subject_id=amina.id, category="health.allergies", purpose="treatment", now=now
    )[0]
    records.read_record(session, keys, clinic, allergy.id, purpose="treatment", now=now)
    story.append(f"Riverside Community Clinic reads Amina's allergy record for treatment ({allergy.id})")

    request = access_requests.create_request(
        session,
        keys,
        landlord,
        subject_id=amina.id,
        categories=["tenancy.income"],
        purpose="tenancy-screening",
        reason="Tenancy application for 7 Harbour Row, flat 2",
        expires_at=now + timedelta(days=14),
        limits=limits,
        now=now,
    )
    story.append(f"Harbour Housing Association requests tenancy.income for tenancy-screening ({request.id})")
    approved = access_requests.approve_request(session, keys, amina, request.id, max_uses=3, limits=limits, now=now)
    story.append(f"Amina approves it: grant {approved.grant_id}, valid 14 days, at most 3 reads")

    lease_grant = consent.create_grant(
        session,
        grace,
        grantee_id=landlord.id,
        categories=["tenancy.lease"],
        purpose="tenancy-management",
        actions=["read"],
        expires_at=now + timedelta(days=30),
        limits=limits,
        now=now,
    )
    consent.revoke_grant(session, grace, lease_grant.id, now=now)
    story.append(f"Grace Okafor grants Harbour Housing tenancy.lease, then revokes it ({lease_grant.id})")
    story.extend(_issued_income(session, keys, people, tomasz, by_role["agency"][0], now=now, limits=limits))
    return story


def _issued_income(
    session: Session,
    keys: KeyStore,
    people: list[dict[str, str]],
    tomasz: Caller,
    agency: Caller,
    *,
    now: datetime,
    limits: ConsentLimits,
) -> list[str]:
    """The agency registers a key and, under Tomasz's write grant, issues his income statement signed.

    The private key is kept with the agency's demo credentials (``issuer_key_pem``), so that
    ``civicvault issuer sign`` can sign more with it.
    """
    key = IssuerKey.generate()
    registered = issuer_keys.register_key(
        session, keys, agency, public_key=key.public_key, proof=key.prove_possession(agency.id), now=now
    )
    entry = next(p for p in people if p["id"] == agency.id)
    entry["issuer_key_id"], entry["issuer_key_pem"] = registered.id, key.to_pem().decode("ascii")
    grant = consent.create_grant(
        session,
        tomasz,
        grantee_id=agency.id,
        categories=["tenancy.income"],
        purpose="tenancy-screening",
        actions=["write"],
        expires_at=now + timedelta(days=90),
        limits=limits,
        now=now,
    )
    content = _income("Tomasz Nowak", "Riverside Bakery", 31200, 2025, verified_by="Northside Payroll Services")
    issued_at = format_issued_at(now)
    signed = statement(
        subject_id=tomasz.id,
        category="tenancy.income",
        body=encode_content(content),
        issued_at=issued_at,
        issuer_id=agency.id,
        key_id=registered.id,
    )
    record = records.create_record(
        session,
        keys,
        agency,
        subject_id=tomasz.id,
        category="tenancy.income",
        content=content,
        title="Income statement 2025 (payroll)",
        purpose="tenancy-screening",
        signature=IssuerSignature(key_id=registered.id, issued_at=issued_at, value=sign_record(key, signed)),
        now=now,
    )
    return [
        f"Tomasz Nowak grants Northside Payroll Services write on tenancy.income for tenancy-screening ({grant.id})",
        f"Northside Payroll Services registers issuer key {registered.id} and issues Tomasz's income statement, "
        f"signed ({record.id})",
    ]


# Harbour Row, flat 5: 850 EUR a month. Tomasz's issued 2025 statement (31,200 EUR) is at least 3 x 10,200.
SCREENING_RENT = 850 * 12


def _screening(
    session: Session,
    keys: KeyStore,
    people: list[dict[str, str]],
    *,
    now: datetime,
    limits: ConsentLimits,
    key: AttestationKey,
    valid_days: int,
) -> list[str]:
    """Harbour Housing asks Tomasz for signed answers only; he approves; it obtains one attestation."""
    tomasz = next(Caller(id=p["id"], role="resident") for p in people if p["name"] == "Tomasz Nowak")
    landlord = next(Caller(id=p["id"], role="landlord") for p in people if p["role"] == "landlord")
    request = access_requests.create_request(
        session,
        keys,
        landlord,
        subject_id=tomasz.id,
        categories=["tenancy.income"],
        purpose="tenancy-screening",
        actions=["attest"],
        reason="Tenancy application for 5 Harbour Row: is your income at least 3 times the rent?",
        expires_at=now + timedelta(days=14),
        limits=limits,
        now=now,
    )
    approved = access_requests.approve_request(session, keys, tomasz, request.id, max_uses=3, limits=limits, now=now)
    issued = attest.attest(
        session,
        keys,
        landlord,
        tomasz.id,
        predicate_name="income_at_least",
        parameters={"multiple": 3, "annual_rent": SCREENING_RENT, "currency": "EUR"},
        purpose="tenancy-screening",
        now=now,
        valid_days=valid_days,
        signing_key=key,
    )
    answer = "true" if issued.credential["credentialSubject"]["result"] else "false"
    return [
        f"Harbour Housing asks Tomasz Nowak for signed answers only (attest) on tenancy.income ({request.id}); "
        f"he approves: grant {approved.grant_id}, at most 3 answers",
        f"Harbour Housing obtains an attestation: annual income at least 3x an annual rent of {SCREENING_RENT} EUR "
        f"= {answer}, from the issued statement, without the figure ({issued.credential['id']})",
    ]
