"""Provenance of record versions, as a predicate over a resident's records will use it (``issued_versions``).

Issued versions are re-verified from what is stored, so a row that claims a
signature it does not carry never counts as issuer-verified; revoked keys are
reported; and after a resident's erasure nothing links an issuer's key to them.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from crypto import issuer
from vault.consent import consent
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.content import encode_content
from vault.core.errors import InvalidInput
from vault.identity import issuer_keys, principals
from vault.records import records
from vault.records.provenance import IssuerSignature, issued_versions, statement
from vault.rights import erasure
from vault.storage.models import Event, IssuerKey, RecordVersion

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
INCOME = {"type": "income-statement", "gross_annual": {"amount": 31200, "currency": "EUR"}}


def _principal(vault_, role, name):
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role=role, name=name, now=NOW)
    return Caller(id=info.id, role=role)


@pytest.fixture
def cast(vault_):
    tomasz = _principal(vault_, "resident", "Tomasz")
    agency = _principal(vault_, "agency", "Northside Payroll Services")
    key = issuer.IssuerKey.generate()
    with vault_.transaction() as session:
        key_id = issuer_keys.register_key(
            session, vault_.keys, agency, public_key=key.public_key, proof=key.prove_possession(agency.id), now=NOW
        ).id
        consent.create_grant(
            session,
            tomasz,
            grantee_id=agency.id,
            categories=["tenancy.income"],
            purpose="tenancy-screening",
            actions=["write"],
            expires_at=NOW + timedelta(days=30),
            limits=ConsentLimits(),
            now=NOW,
        )
    return tomasz, agency, key, key_id


def _signature(key, key_id, tomasz, agency, content, issued_at="2026-11-25T09:00:00Z"):
    signed = statement(
        subject_id=tomasz.id,
        category="tenancy.income",
        body=encode_content(content),
        issued_at=issued_at,
        issuer_id=agency.id,
        key_id=key_id,
    )
    return IssuerSignature(key_id=key_id, issued_at=issued_at, value=issuer.sign_record(key, signed))


def _issue(vault_, cast, content=INCOME, record_id=None):
    tomasz, agency, key, key_id = cast
    with vault_.transaction() as session:
        signature = _signature(key, key_id, tomasz, agency, content)
        if record_id is None:
            return records.create_record(
                session,
                vault_.keys,
                agency,
                subject_id=tomasz.id,
                category="tenancy.income",
                content=content,
                purpose="tenancy-screening",
                signature=signature,
                now=NOW,
            ).id
        records.add_version(
            session,
            vault_.keys,
            agency,
            record_id,
            content=content,
            purpose="tenancy-screening",
            signature=signature,
            now=NOW,
        )
        return record_id


def test_issued_versions_lists_every_version_with_its_provenance_re_verified(vault_, cast):
    tomasz, agency, _, key_id = cast
    issued = _issue(vault_, cast)
    _issue(vault_, cast, {**INCOME, "tax_year": 2026}, record_id=issued)
    with vault_.transaction() as session:
        own = records.create_record(
            session,
            vault_.keys,
            tomasz,
            subject_id=tomasz.id,
            category="tenancy.income",
            content={"x": 1},
            now=NOW + timedelta(minutes=1),  # records are listed oldest first
        ).id
        found = issued_versions(session, vault_.keys, subject_id=tomasz.id, category="tenancy.income")
        current = issued_versions(
            session, vault_.keys, subject_id=tomasz.id, category="tenancy.income", current_only=True
        )
        other = issued_versions(session, vault_.keys, subject_id=tomasz.id, category="tenancy.lease")
    assert [(v.record_id, v.version, v.kind, v.verified, v.current) for v in found] == [
        (issued, 1, "issued", True, False),
        (issued, 2, "issued", True, True),
        (own, 1, "self-asserted", False, True),
    ]
    assert {(v.issuer_id, v.key_id, v.revoked) for v in found if v.kind == "issued"} == {(agency.id, key_id, False)}
    assert [(v.record_id, v.version) for v in current] == [(issued, 2), (own, 1)]
    assert other == []
    with vault_.transaction() as session, pytest.raises(InvalidInput):
        issued_versions(session, vault_.keys, subject_id=tomasz.id, category="tenancy.*")


def test_a_revoked_key_is_reported_and_what_it_signed_still_verifies(vault_, cast):
    tomasz, agency, _, key_id = cast
    _issue(vault_, cast)
    with vault_.transaction() as session:
        issuer_keys.revoke_key(session, vault_.keys, agency, key_id, now=NOW + timedelta(days=2))
        (version,) = issued_versions(session, vault_.keys, subject_id=tomasz.id, category="tenancy.income")
    assert version.revoked and version.key_revoked_at == NOW + timedelta(days=2) and version.verified


def test_a_stored_row_that_claims_a_signature_it_does_not_carry_is_not_verified(vault_, cast):
    """Tampering with the rows (a database writer without the keys) can only turn issued into unverified."""
    tomasz, agency, key, key_id = cast
    first = _issue(vault_, cast)
    second = _issue(vault_, cast, {**INCOME, "gross_annual": {"amount": 99999, "currency": "EUR"}})
    with vault_.transaction() as session:
        # the issuer's time moved: the signature no longer covers the statement
        session.execute(
            update(RecordVersion).where(RecordVersion.record_id == first).values(issued_at=NOW - timedelta(days=400))
        )
        # a self-asserted version made to claim a key
        own = records.create_record(
            session, vault_.keys, tomasz, subject_id=tomasz.id, category="tenancy.income", content=INCOME, now=NOW
        ).id
        session.execute(update(RecordVersion).where(RecordVersion.record_id == own).values(issuer_key_id=key_id))
    with vault_.transaction() as session:
        found = {
            v.record_id: v
            for v in issued_versions(session, vault_.keys, subject_id=tomasz.id, category="tenancy.income")
        }
    assert not found[first].verified and found[second].verified and not found[own].verified


def test_after_erasure_nothing_links_the_issuer_to_the_resident(vault_, cast):
    tomasz, agency, _, key_id = cast
    _issue(vault_, cast)
    erasure.erase(vault_, None, tomasz.id)
    with vault_.read_transaction() as session:
        assert session.scalars(select(RecordVersion)).all() == []
        # the key stays (the issuer's, not the resident's); no event names the resident with it
        assert session.get(IssuerKey, key_id) is not None
        events = session.scalars(select(Event)).all()
        assert not [e for e in events if tomasz.id in (e.subject_id or "", e.data, e.body.decode("utf-8", "replace"))]
        written = [e for e in events if e.kind == "record.created"]
        assert written and all(e.erased_by is not None and e.data == "{}" and e.body == b"" for e in written)
        assert not [e for e in events if "signature_sha256" in e.data or "issuer_key_id" in e.data]


def test_verify_finds_a_version_that_gained_or_lost_its_issuer_after_it_was_written(vault_, cast):
    from vault.core.errors import LedgerIntegrityError
    from vault.verification.verify import verify

    tomasz, _, _, key_id = cast
    issued = _issue(vault_, cast)
    with vault_.transaction() as session:
        own = records.create_record(
            session, vault_.keys, tomasz, subject_id=tomasz.id, category="tenancy.income", content=INCOME, now=NOW
        ).id
    with vault_.read_transaction() as session:
        verify(session)
    for record_id, value in ((issued, None), (own, key_id)):
        with vault_.transaction() as session:
            before = session.scalar(select(RecordVersion.issuer_key_id).where(RecordVersion.record_id == record_id))
            session.execute(
                update(RecordVersion).where(RecordVersion.record_id == record_id).values(issuer_key_id=value)
            )
        with vault_.read_transaction() as session, pytest.raises(LedgerIntegrityError, match="another issuer key"):
            verify(session)
        with vault_.transaction() as session:
            session.execute(
                update(RecordVersion).where(RecordVersion.record_id == record_id).values(issuer_key_id=before)
            )
