"""Authentication joins the request's transaction (api/context.py).

A granted read is one transaction on the main database, the token lookup its
first statement; a token revoked (or a principal erased) by a transaction that
committed before the next request is refused by that request; every refusal
is a 401 problem counted by the throttle, including those only found once the
request failed to parse; ``current_caller()`` outside a transaction still
authenticates, in a read transaction of its own.
"""

import dataclasses

import pytest
from sqlalchemy import event

from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.core.clock import utcnow
from vault.core.config import RateLimits, Settings
from vault.identity import principals
from vault.ledger import ledger

FAILED_AUTH_LIMIT = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    limits = RateLimits(
        failed_auth=f"{FAILED_AUTH_LIMIT}/minute",
        break_glass="1000/hour",
        access_requests="1000/hour",
        erasure="1000/hour",
    )
    return dataclasses.replace(settings, rate_limits=limits)


@pytest.fixture
def granted(client, cast, clock):
    """A record of Amina's and the clinic's grant on it: (record id, read URL)."""
    record_id = add_record(client, cast.amina, "health.labs", {"hba1c": 6.1}, title="HbA1c")
    grant(client, cast.amina, cast.clinic, clock)
    return record_id, f"/api/v1/records/{record_id}?purpose=treatment"


# On PostgreSQL the request that committed pending events may then run the sequencer batch that gives
# them (and others') their indices (docs/ledger-format.md section 10): a transaction of the ledger's,
# begun with the sequencer lock and shared by whoever's events it takes, not part of the action.


class Transactions:
    """Transactions begun, and statements run, on the vault's main database (sequencer batches apart)."""

    def __init__(self, engine) -> None:
        self.all: list[list[str]] = []
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._statement)

    def _begin(self, _conn) -> None:
        self.all.append([])

    def _statement(self, _conn, _cursor, statement, *_args) -> None:
        # BEGIN, and a SQLite writer's savepoint in its batch (vault/ledger/group_commit.py), frame the work.
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT")):
            if not self.all:  # the driver-level statements of a transaction begun before listening
                self.all.append([])
            self.all[-1].append(" ".join(statement.split()))

    @staticmethod
    def _batch(statements: list[str]) -> bool:
        return bool(statements) and any("advisory_xact_lock" in s for s in statements[:1])

    @property
    def actions(self) -> list[list[str]]:
        return [t for t in self.all if not self._batch(t)]

    @property
    def begun(self) -> int:
        """Transactions of the request itself (not sequencer batches)."""
        return len(self.actions)

    @property
    def statements(self) -> list[str]:
        return [s for t in self.actions for s in t]


def ledger_size(vault_) -> int:
    with vault_.read_transaction() as session:
        return ledger.size(session)


def test_a_granted_read_is_one_transaction_with_the_token_lookup_first(client, vault_, cast, granted):
    _, url = granted
    seen = Transactions(vault_.engine)
    response = client.get(url, headers=cast.clinic.auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["content"] == {"hba1c": 6.1}
    assert seen.begun == 1, seen.statements
    assert "api_tokens" in seen.statements[0]
    assert sum("api_tokens" in s for s in seen.statements) == 1


def test_a_token_revoked_in_another_transaction_is_refused_on_the_very_next_request(
    client, vault_, cast, granted, clock
):
    _, url = granted
    assert client.get(url, headers=cast.clinic.auth).status_code == 200
    with vault_.transaction() as session:
        assert principals.revoke_tokens(session, cast.clinic.id, now=clock.now) == 1
    size = ledger_size(vault_)
    response = client.get(url, headers=cast.clinic.auth)
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in body["detail"]
    assert ledger_size(vault_) == size  # nothing was read, and nothing was recorded as read
    # Every route that authenticates refuses it too, in a transaction or not.
    assert_problem(client.get("/api/v1/me", headers=cast.clinic.auth), 401)
    assert_problem(client.get(f"/api/v1/subjects/{cast.amina.id}/records", headers=cast.clinic.auth), 401)
    # A new token works at once.
    with vault_.transaction() as session:
        fresh = principals.issue_token(session, cast.clinic.id, now=clock.now)
    assert client.get(url, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_revocation_between_two_requests_of_one_client_on_a_kept_app_context(client, app, vault_, cast, granted):
    """Nothing of an earlier request's authentication carries over, even in one app context."""
    _, url = granted
    with app.app_context():
        assert client.get(url, headers=cast.clinic.auth).status_code == 200
        with vault_.transaction() as session:
            principals.revoke_tokens(session, cast.clinic.id, now=utcnow())
        assert_problem(client.get(url, headers=cast.clinic.auth), 401)
        assert_problem(client.get(url), 401)


def test_an_erased_residents_token_is_refused_by_a_writing_request(client, cast):
    confirm = {"confirm": True}
    response = client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json=confirm, headers=cast.amina.auth)
    assert response.status_code == 200, response.get_json()
    assert_problem(client.get(f"/api/v1/subjects/{cast.amina.id}/records", headers=cast.amina.auth), 401)


def test_current_caller_outside_a_transaction_refuses_a_revoked_token(client, vault_, cast):
    """The erasure view asks for the caller before any transaction: a read transaction of its own."""
    with vault_.transaction() as session:
        principals.revoke_tokens(session, cast.amina.id, now=utcnow())
    url = f"/api/v1/subjects/{cast.amina.id}/erasure"
    assert_problem(client.post(url, json={"confirm": True}, headers=cast.amina.auth), 401)
    # Amina was not erased: her records' owner still exists for a fresh token.
    with vault_.transaction() as session:
        fresh = principals.issue_token(session, cast.amina.id, now=utcnow())
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_a_bad_token_on_a_request_that_fails_to_parse_is_401_not_400(client, cast, granted):
    """The token was not looked up before parsing failed: it is looked up before the answer leaves."""
    record_id, _ = granted
    bad = {"Authorization": "Bearer cvt_" + "B" * 43}
    assert_problem(client.get(f"/api/v1/records/{record_id}?purpose=treatment&bogus=1", headers=bad), 401)
    assert_problem(client.get(f"/api/v1/records/{record_id}?purpose=not-a-purpose", headers=bad), 401)
    response = client.put(f"/api/v1/records/{record_id}", data="{", headers={**bad, "Content-Type": "application/json"})
    assert_problem(response, 401)
    # With a good token the same requests are the parse errors they are.
    assert_problem(client.get(f"/api/v1/records/{record_id}?purpose=treatment&bogus=1", headers=cast.clinic.auth), 400)


def test_every_refused_lookup_counts_against_the_address(client, vault_, cast, granted):
    """Refusals found in the request's transaction, outside one, and after a parse error are all counted."""
    record_id, url = granted
    bad = {"Authorization": "Bearer cvt_" + "C" * 43}
    answers = [
        client.get(url, headers=bad).status_code,  # in writing()
        client.get("/api/v1/me", headers=bad).status_code,  # in reading()
        client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json={}, headers=bad).status_code,  # no transaction
        client.get(f"{url}&bogus=1", headers=bad).status_code,  # a parse error first
    ]
    assert answers == [401] * FAILED_AUTH_LIMIT
    response = client.get(url, headers=bad)
    assert_problem(response, 429)
    assert response.headers["Retry-After"].isdigit()
    # A valid token from the same address still reads.
    assert client.get(url, headers=cast.clinic.auth).status_code == 200


def test_a_token_is_looked_up_once_per_request(client, vault_, cast, granted):
    """A view that asks for the caller again inside its transaction does not query the token twice."""
    _, url = granted
    seen = Transactions(vault_.engine)
    assert (
        client.get(f"/api/v1/subjects/{cast.amina.id}/records?purpose=treatment", headers=cast.clinic.auth).status_code
        == 200
    )
    assert sum("api_tokens" in s for s in seen.statements) == 1
    assert seen.begun == 1


def test_a_granted_read_reads_each_of_its_tables_once(client, vault_, cast, granted):
    """Token, record, consent facts (one query for all three kinds), version, key row: once each; one secret read."""
    _, url = granted
    main, store = Transactions(vault_.engine), Transactions(vault_.keys.secrets.engine)
    assert client.get(url, headers=cast.clinic.auth).status_code == 200
    reads = [s for s in main.statements if s.upper().startswith("SELECT")]

    def reading(table: str) -> list[str]:
        return [s for s in reads if f"FROM {table} " in s + " " or f"JOIN {table} " in s]

    for table in ("api_tokens", "records", "record_versions", "subject_keys", "grants", "delegations", "break_glass"):
        assert len(reading(table)) == 1, (table, reads)
    assert reading("grants") == reading("delegations") == reading("break_glass")
    assert len(store.statements) == 1 and store.begun == 1
    assert main.begun == 1
