"""A credential from the API verifies three ways, and every forgery, alteration or replay fails all three.

The three verifiers: the vault's own (``vault.attestations.credential.verify``),
``civicvault attest verify`` offline (``--key``, no home, no database), and
the independent verifier written from docs/attestations.md alone
(tests/vault/attestations/independent_verifier.py).
"""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from crypto import data_integrity
from tests.api.conftest import T0
from tests.api.test_attestations import QUESTION, add_income, approved_request, ask, issued_by_agency  # noqa: F401
from tests.vault.attestations import independent_verifier
from vault.attestations import credential as vc
from vault.cli.main import cli
from vault.keys import attestation_key


@pytest.fixture
def issued(client, cast, clock, vault_, make_actor, issued_by_agency):  # noqa: F811
    """Two credentials for the landlord (about Amina and about Tomasz), one about Amina for another landlord."""
    other = make_actor("landlord", "Quayside Lettings")
    for resident in (cast.amina, cast.tomasz):
        add_income(client, resident)
        approved_request(client, resident, cast.landlord)
    approved_request(client, cast.amina, other)
    amina = ask(client, cast.landlord, cast.amina).get_json()["credential"]
    tomasz = ask(client, cast.landlord, cast.tomasz, parameters={"amount": 1000, "currency": "EUR"}).get_json()
    elsewhere = ask(client, other, cast.amina).get_json()["credential"]
    return {
        "credential": amina,
        "tomasz": tomasz["credential"],
        "elsewhere": elsewhere,
        "did": attestation_key.read(vault_.settings.attestation_key_file).did,
        "landlord": cast.landlord.id,
        "other": other.id,
    }


AT = T0 + timedelta(days=1)


def _cli(credential, tmp_path, *options: str):
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(credential))
    return CliRunner().invoke(cli, ["attest", "verify", str(path), *options])


def test_a_credential_from_the_api_verifies_three_ways(issued, tmp_path):
    credential, did, landlord = issued["credential"], issued["did"], issued["landlord"]
    claims = vc.verify(credential, key=did, at=AT, requester=landlord)
    assert claims.result is True
    assert independent_verifier.verify(credential, did, at=AT, requester=landlord, pseudonym=claims.pseudonym) is True
    result = _cli(credential, tmp_path, "--key", did, "--requester", landlord, "--at", "2026-11-26T10:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f'valid: income_at_least {{"annual_rent":14400,"currency":"EUR","multiple":3}} = true for {claims.pseudonym}\n'
    )
    # A saved API answer ({credential, pseudonym, receipt}) is read as its credential.
    answer = {"credential": credential, "pseudonym": claims.pseudonym}
    assert _cli(answer, tmp_path, "--key", did, "--at", "2026-11-26T10:00:00Z").exit_code == 0


def _set(path: str, value):
    def mutate(credential: dict, issued: dict) -> dict:
        changed = copy.deepcopy(credential)
        *parents, last = path.split(".")
        target = changed
        for name in parents:
            target = target[name] if not name.isdigit() else target[int(name)]
        target[last] = value(issued) if callable(value) else value
        return changed

    return mutate


def _resigned_by_another_key(credential: dict, issued: dict) -> dict:
    seed = data_integrity.new_seed()
    body = {k: v for k, v in credential.items() if k != "proof"}
    body["issuer"] = data_integrity.did_key(data_integrity.public_key(seed))
    return vc.sign(body, seed, now=T0)


def _proof_of(other: str):
    def mutate(credential: dict, issued: dict) -> dict:
        return {**copy.deepcopy(credential), "proof": copy.deepcopy(issued[other]["proof"])}

    return mutate


def _without(name: str):
    def mutate(credential: dict, issued: dict) -> dict:
        return {k: v for k, v in credential.items() if k != name}

    return mutate


MUTATIONS = {
    "changed result": _set("credentialSubject.result", False),
    "changed parameters": _set("credentialSubject.parameters.annual_rent", 9000),
    "changed multiple": _set("credentialSubject.parameters.multiple", 2.0),
    "changed predicate": _set("credentialSubject.predicate", "adult"),
    "changed counted": _set("credentialSubject.counted", "issuer-verified and self-asserted"),
    "another subject's pseudonym": _set("credentialSubject.id", lambda i: i["tomasz"]["credentialSubject"]["id"]),
    "another requester named": _set("requester", lambda i: i["other"]),
    "validity extended": _set("validUntil", "2027-11-25T10:00:00Z"),
    "another ledger event": _set("evidence.0.ledgerEvent", "00" * 32),
    "another issuer listed": _set("evidence.0.issuers", [{"id": "p-aaaaaaaaaaaaaaaaaaaaaaaaaa"}]),
    "re-signed by a key that is not the vault's": _resigned_by_another_key,
    "a proof moved from another credential": _proof_of("tomasz"),
    "a proof moved from the same resident's credential for another landlord": _proof_of("elsewhere"),
    "no proof": _without("proof"),
    "a flipped signature": _set("proof.proofValue", lambda i: "z" + "1" * 86),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutation_fails_every_verifier(issued, tmp_path, name):
    forged = MUTATIONS[name](issued["credential"], issued)
    did = issued["did"]
    with pytest.raises(vc.InvalidAttestation):
        vc.verify(forged, key=did, at=AT)
    with pytest.raises(independent_verifier.Rejected):
        independent_verifier.verify(forged, did, at=AT)
    result = _cli(forged, tmp_path, "--key", did, "--at", "2026-11-26T10:00:00Z")
    assert result.exit_code == 1 and result.output.startswith("Error: Not a valid attestation"), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_genuine_credential_shown_by_someone_else_or_out_of_time_or_under_another_key(issued, tmp_path):
    credential, did = issued["credential"], issued["did"]
    other_did = data_integrity.did_key(data_integrity.public_key(data_integrity.new_seed()))
    until = datetime.fromisoformat(credential["validUntil"].replace("Z", "+00:00"))
    cases = [
        ({"key": did, "at": AT, "requester": issued["other"]}, ["--key", did, "--requester", issued["other"]]),
        ({"key": did, "at": until}, ["--key", did, "--at", credential["validUntil"]]),
        ({"key": did, "at": T0 - timedelta(seconds=1)}, ["--key", did, "--at", "2026-11-25T09:59:59Z"]),
        ({"key": other_did, "at": AT}, ["--key", other_did]),
    ]
    for options, flags in cases:
        with pytest.raises(vc.InvalidAttestation):
            vc.verify(credential, **options)
        with pytest.raises(independent_verifier.Rejected):
            independent_verifier.verify(
                credential, options["key"], at=options["at"], requester=options.get("requester")
            )
        if "--at" not in flags:
            flags = [*flags, "--at", "2026-11-26T10:00:00Z"]
        result = _cli(credential, tmp_path, *flags)
        assert result.exit_code == 1, (flags, result.output)
    # Someone who knows Amina's pseudonym sees that Tomasz's credential is about someone else.
    with pytest.raises(independent_verifier.Rejected):
        independent_verifier.verify(
            issued["tomasz"], did, at=AT, pseudonym=issued["credential"]["credentialSubject"]["id"]
        )
    assert datetime(2026, 12, 25, 10, tzinfo=UTC) == until
