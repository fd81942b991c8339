"""``civicvault issuer key|list|revoke|sign``: keys made and registered by an operator, signatures the server takes."""

import json
import stat

from .test_cli import assert_one_sentence_error, run, run_process


def _people(home):
    return {p["name"]: p for p in json.loads((home / "demo-tokens.json").read_text())}


def test_issuer_key_writes_a_private_key_0600_and_registers_it(tmp_path):
    home = tmp_path / "home"
    run("init", "--home", home)
    run("demo", "--home", home)
    agency = _people(home)["Northside Payroll Services"]
    out = tmp_path / "northside.pem"
    made = run("issuer", "key", "--principal", agency["id"], "--out", out, "--json", "--home", home)
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    listed = json.loads(run("issuer", "list", "--principal", agency["id"], "--json", "--home", home).stdout)
    assert key["key_id"] in {k["key_id"] for k in listed} and len(listed) == 2  # the demo's key and this one
    # never overwrites a key file; refuses a principal that issues nothing, leaving no file behind
    assert run("issuer", "key", "--principal", agency["id"], "--out", out, "--home", home).exit_code != 0
    resident = _people(home)["Tomasz Nowak"]
    refused = run("issuer", "key", "--principal", resident["id"], "--out", tmp_path / "r.pem", "--home", home)
    assert refused.exit_code != 0 and "Only clinics, landlords and agencies" in refused.output
    assert not (tmp_path / "r.pem").exists()
    revoked = run("issuer", "revoke", key["key_id"], "--home", home)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert run("issuer", "revoke", key["key_id"], "--home", home).exit_code != 0


def test_no_register_prints_the_body_of_the_api_call(tmp_path, client, make_actor):
    agency = make_actor("agency", "Quayside Tax Office")
    out = tmp_path / "q.pem"
    printed = run("issuer", "key", "--principal", agency.id, "--out", out, "--no-register", "--home", tmp_path)
    assert printed.exit_code == 0
    body = json.loads(printed.stdout.splitlines()[0])
    response = client.post("/api/v1/issuer-keys", json=body, headers=agency.auth)
    assert response.status_code == 201, response.get_json()


def test_issuer_sign_makes_the_signature_the_server_accepts(tmp_path, client, make_actor, vault_):
    tomasz = make_actor("resident", "Tomasz Nowak")
    agency = make_actor("agency", "Northside Payroll Services")
    out = tmp_path / "k.pem"
    body = json.loads(
        run("issuer", "key", "--principal", agency.id, "--out", out, "--no-register", "--home", tmp_path).stdout
    )
    key_id = client.post("/api/v1/issuer-keys", json=body, headers=agency.auth).get_json()["id"]
    expires = "2027-01-01T00:00:00Z"
    client.post(
        "/api/v1/consents",
        json={
            "grantee_id": agency.id,
            "categories": ["tenancy.income"],
            "purpose": "tenancy-screening",
            "actions": ["write"],
            "expires_at": expires,
        },
        headers=tomasz.auth,
    )
    content = {"type": "income-statement", "gross_annual": {"amount": 31200, "currency": "EUR"}, "note": "Łódź"}
    content_file = tmp_path / "income.json"
    content_file.write_text(json.dumps(content, indent=2), encoding="utf-8")  # any layout: the digest is canonical
    # Offline: with --key-id and --issuer it needs no vault.
    signed = run(
        "issuer", "sign", "--key", out, "--subject", tomasz.id, "--category", "tenancy.income",
        "--content", content_file, "--key-id", key_id, "--issuer", agency.id, "--home", tmp_path / "nowhere",
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    signature = json.loads(signed.stdout)
    assert set(signature) == {"key_id", "issued_at", "value"} and signature["key_id"] == key_id
    request = {"category": "tenancy.income", "content": content, "purpose": "tenancy-screening", "signature": signature}
    created = client.post(f"/api/v1/subjects/{tomasz.id}/records", json=request, headers=agency.auth)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["provenance"]["kind"] == "issued"
    # Signed for another category: the server refuses it.
    other = run(
        "issuer", "sign", "--key", out, "--subject", tomasz.id, "--category", "tenancy.lease",
        "--content", content_file, "--key-id", key_id, "--issuer", agency.id, "--issued-at", "2026-01-05T10:00:00Z",
    )  # fmt: skip
    assert json.loads(other.stdout)["issued_at"] == "2026-01-05T10:00:00Z"
    request["signature"] = json.loads(other.stdout)
    assert client.post(f"/api/v1/subjects/{tomasz.id}/records", json=request, headers=agency.auth).status_code == 400


def test_issuer_commands_fail_in_one_sentence(tmp_path):
    home = tmp_path / "home"
    assert run_process("init", "--home", home).returncode == 0
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    content = tmp_path / "c.json"
    content.write_text("{not json")
    good_content = tmp_path / "g.json"
    good_content.write_text("{}")
    for args in (
        ("issuer", "key", "--principal", "p-nobody", "--out", tmp_path / "a.pem"),
        ("issuer", "key", "--principal", "not an id", "--out", tmp_path / "b.pem"),
        ("issuer", "revoke", "k-nothing"),
        (
            "issuer",
            "sign",
            "--key",
            not_a_key,
            "--subject",
            "p-x",
            "--category",
            "tenancy.income",
            "--content",
            content,
        ),
        (
            "issuer",
            "sign",
            "--key",
            not_a_key,
            "--subject",
            "p-x",
            "--category",
            "tenancy.x",
            "--content",
            good_content,
        ),
    ):
        assert_one_sentence_error(run_process(*args, "--home", home))
