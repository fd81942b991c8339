"""Restoring a database backup taken before an erasure, with the current subject-secret store.

The restore procedure of docs/operations.md ("Restoring", "A backup older
than an erasure"): the main database comes back from a backup taken with
SQLite's online backup API, the subject-secret store stays the live one (in
which the erased resident's secret is gone). The vault must start, and after
``civicvault replay-erasures`` the resident is erased in every respect: their
token is refused (401), grantees' reads of their records answer the 404 of an
unknown id (never a 500 "record unreadable", which reads like tampering),
their grants are gone, the ledger holds a ``subject.erased`` entry again with
their events blanked, and ``civicvault verify`` is green.
"""

import base64
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from api import create_app
from tests.conftest import new_master_key
from tests.faults.server import cli
from vault.cli import demo
from vault.core.caller import Caller
from vault.core.config import Settings
from vault.identity import principals
from vault.rights.erasure import erase
from vault.runtime import Vault, init_home
from vault.storage.models import ApiToken, Event, Grant, Principal, Record

pytestmark = pytest.mark.slow

NEWEST_CHECKED = 50  # Vault.check_subject_secrets looks at the newest 50 bound subject keys first


def sqlite_backup(live: Path, copy: Path) -> None:
    """The documented backup: SQLite's online backup API, a consistent copy while the vault serves."""
    src, dst = sqlite3.connect(live), sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def restore(backup: Path, live: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, live)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'vault.db'}", master_key=new_master_key())
    init_home(settings)
    vault = Vault.open(settings)
    try:
        with vault.transaction() as session:
            people, _story = demo.load(session, vault.keys, now=vault.now())
        # Some activity on the erased resident's records before the backup: the clinic reads under its grant.
        amina = next(p for p in people if p["name"] == "Amina Yusuf")
        with vault.read_transaction() as session:
            record_ids = {
                category: record_id
                for record_id, category in session.execute(
                    select(Record.id, Record.category).where(Record.subject_id == amina["id"])
                )
            }
    finally:
        vault.close()
    return settings, {p["name"]: p for p in people}, record_ids


def bearer(person: dict) -> dict:
    return {"Authorization": f"Bearer {person['token']}"}


def env_of(settings: Settings) -> dict:
    env = {
        **os.environ,
        "CIVICVAULT_HOME": str(settings.home),
        "CIVICVAULT_DATABASE_URL": settings.database_url,
        "CIVICVAULT_MASTER_KEY": settings.master_key or "",
    }
    env.pop("CIVICVAULT_SECRETS_DATABASE_URL", None)
    return env


def test_a_restored_pre_erasure_backup_leaves_the_resident_erased(home, tmp_path):
    settings, people, record_ids = home
    amina, tomasz = people["Amina Yusuf"], people["Tomasz Nowak"]
    clinic = next(p for p in people.values() if p["role"] == "clinic")
    landlord = next(p for p in people.values() if p["role"] == "landlord")
    live = settings.home / "vault.db"

    # Before: the clinic reads Amina's allergy record under her grant.
    vault = Vault.open(settings)
    client = create_app(vault=vault).test_client()
    allergy = f"/api/v1/records/{record_ids['health.allergies']}?purpose=treatment"
    assert client.get(allergy, headers=bearer(clinic)).status_code == 200
    backup = tmp_path / "vault-backup.db"
    sqlite_backup(live, backup)

    # Amina erases herself; the live secret store loses her secret.
    answer = client.post(f"/api/v1/subjects/{amina['id']}/erasure", json={"confirm": True}, headers=bearer(amina))
    assert answer.status_code == 200, answer.get_json()
    vault.close()

    # Restore the database backup; keep the live secret store (as docs/operations.md says).
    restore(backup, live)
    cli(env_of(settings), "init")  # the restore procedure's first step; it must not refuse
    replayed = json.loads(cli(env_of(settings), "replay-erasures", "--yes", "--json").stdout)
    assert replayed["erased"] == 1 and len(replayed["receipts"]) == 1

    vault = Vault.open(settings)  # the vault starts
    try:
        client = create_app(vault=vault).test_client()
        # Her token is refused, as before the restore.
        assert client.get("/api/v1/me", headers=bearer(amina)).status_code == 401
        # Grantees get the answer an unknown id gets: no 500, no content.
        unknown = client.get("/api/v1/records/r-00000000000000000000000000?purpose=treatment", headers=bearer(clinic))
        for path, who in (
            (allergy, clinic),
            (f"/api/v1/records/{record_ids['tenancy.income']}?purpose=tenancy-screening", landlord),
        ):
            answer = client.get(path, headers=bearer(who))
            assert answer.status_code == 404, (path, answer.status_code, answer.get_json())
            assert answer.get_json() == unknown.get_json()
        # Everyone else is untouched.
        assert client.get("/api/v1/me", headers=bearer(tomasz)).status_code == 200
        assert client.get("/api/v1/me", headers=bearer(clinic)).status_code == 200
        with vault.read_transaction() as session:
            row = session.get(Principal, amina["id"])
            assert row is not None and row.erased_at is not None and row.name_sealed == b""
            assert session.scalar(select(func.count()).select_from(Grant).where(Grant.subject_id == amina["id"])) == 0
            assert session.scalar(select(func.count()).select_from(Record).where(Record.subject_id == amina["id"])) == 0
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(ApiToken)
                    .where(ApiToken.principal_id == amina["id"], ApiToken.revoked_at.is_(None))
                )
                == 0
            )
            assert session.scalar(select(func.count()).select_from(Event).where(Event.subject_id == amina["id"])) == 0
            erasures = session.scalars(select(Event.data).where(Event.kind == "subject.erased")).all()
            assert len(erasures) == 1 and json.loads(erasures[0])["requested_by"] == "operator"
            assert amina["id"] not in erasures[0]
        # Erasure is the principal's state: a token row brought back live (restored from elsewhere, edited by
        # hand) still does not authenticate an erased resident.
        with vault.transaction() as session:
            session.execute(update(ApiToken).where(ApiToken.principal_id == amina["id"]).values(revoked_at=None))
        assert client.get("/api/v1/me", headers=bearer(amina)).status_code == 401
        # A second replay finds nothing left to do.
        assert json.loads(cli(env_of(settings), "replay-erasures", "--yes", "--json").stdout)["erased"] == 0
    finally:
        vault.close()
    done = cli(env_of(settings), "verify", "--workers", "1")
    assert "ledger intact" in done.stdout


def test_the_vault_starts_when_the_newest_residents_were_erased_after_the_backup(home, tmp_path):
    """The start-up check of the secret store looks at the newest residents first; all erased is not a wrong store."""
    settings, people, _record_ids = home
    vault = Vault.open(settings)
    try:
        with vault.transaction() as session:
            newest = [
                principals.create_principal(session, vault.keys, role="resident", name=f"Resident {n}", now=vault.now())
                for n in range(NEWEST_CHECKED + 5)
            ]
        live = settings.home / "vault.db"
        backup = tmp_path / "vault-backup.db"
        sqlite_backup(live, backup)
        for info, _token in newest:  # erased after the backup: in the live store, their secrets are gone
            erase(vault, Caller(id=info.id, role="resident"), info.id)
    finally:
        vault.close()
    restore(backup, live)

    done = cli(env_of(settings), "init")  # the restore procedure's first step says what is left to do
    assert f"{len(newest)} resident(s)" in done.stdout and "civicvault replay-erasures" in done.stdout
    Vault.open(settings).close()  # starts
    replayed = json.loads(cli(env_of(settings), "replay-erasures", "--yes", "--json").stdout)
    assert replayed["erased"] == len(newest)
    assert sorted(r["subject_id"] for r in replayed["receipts"]) == sorted(info.id for info, _ in newest)
    vault = Vault.open(settings)
    try:
        client = create_app(vault=vault).test_client()
        amina = people["Amina Yusuf"]
        assert client.get("/api/v1/me", headers=bearer(amina)).status_code == 200  # the others are untouched
        for _info, token in newest[:3]:
            assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        vault.close()
    assert "ledger intact" in cli(env_of(settings), "verify", "--workers", "1").stdout


def test_verify_says_the_restored_ledger_is_behind_the_checkpoint_a_witness_holds(home, tmp_path):
    """Cosignatures live in the database and go with the restore; the witness's own state still shows the gap."""
    settings, people, record_ids = home
    env = env_of(settings)
    early = tmp_path / "early.note"
    early.write_text(cli(env, "checkpoint").stdout)  # within what the backup holds
    live = settings.home / "vault.db"
    backup = tmp_path / "vault-backup.db"
    sqlite_backup(live, backup)

    vault = Vault.open(settings)  # life goes on after the backup: reads, then a checkpoint a witness cosigns
    try:
        client = create_app(vault=vault).test_client()
        clinic = next(p for p in people.values() if p["role"] == "clinic")
        for _ in range(3):
            path = f"/api/v1/records/{record_ids['health.allergies']}?purpose=treatment"
            assert client.get(path, headers=bearer(clinic)).status_code == 200
    finally:
        vault.close()
    note = tmp_path / "cosigned.note"
    note.write_text(cli(env, "checkpoint").stdout)
    origin, size, root = note.read_text().split("\n")[:3]
    state = tmp_path / "state.json"  # what the witness keeps: the last size and root it cosigned
    state.write_text(json.dumps({"tree_size": int(size), "root_hash": base64.b64decode(root).hex()}) + "\n")
    for held in (note, state):
        assert "extends" in cli(env, "verify", "--workers", "1", "--against-checkpoint", str(held)).stdout

    restore(backup, live)
    cli(env, "init")
    intact = cli(env, "verify", "--workers", "1")  # on its own, the restored ledger is intact: nothing says behind
    assert "ledger intact" in intact.stdout
    restored_size = int(intact.stdout.split("ledger intact: ")[1].split(" ")[0])
    assert restored_size < int(size)
    for held in (note, state):
        done = cli(env, "verify", "--workers", "1", "--against-checkpoint", str(held), check=False)
        assert done.returncode == 1, done.stdout + done.stderr
        assert (
            "The ledger is behind" in done.stderr
            and f"it holds {restored_size} entries, that checkpoint {size}" in (" ".join(done.stderr.split()))
        )
        assert "Traceback" not in done.stderr
    done = cli(env, "verify", "--workers", "1", "--against-checkpoint", str(early))
    assert "extends the checkpoint signed in" in done.stdout

    # Same size, another root: not behind, but not the same history either.
    forged = tmp_path / "forged.json"
    early_size = int(early.read_text().split("\n")[1])
    forged.write_text(json.dumps({"tree_size": early_size, "root_hash": "00" * 32}))
    done = cli(env, "verify", "--workers", "1", "--against-checkpoint", str(forged), check=False)
    assert done.returncode == 1 and "does not extend" in done.stderr
    # A note not signed by this vault's ledger key is refused, in one sentence.
    unsigned = tmp_path / "unsigned.note"
    unsigned.write_text(f"{origin}\n{size}\n{root}\n")
    done = cli(env, "verify", "--workers", "1", "--against-checkpoint", str(unsigned), check=False)
    assert done.returncode == 1 and "is not a checkpoint signed by this vault's ledger key" in done.stderr
    assert "Traceback" not in done.stderr
