"""Migration 0004 back-fills the search columns of events written before it, and can be undone."""

import json
import os
import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.bulk_events import generate, make_cast
from vault.ledger import ledger
from vault.ledger.events import encode
from vault.storage import audit_index, schema
from vault.storage.models import Base

OLD_EVENTS = sa.table(
    "events",
    sa.column("ledger_index", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("occurred_at", sa.DateTime()),
    sa.column("actor_id", sa.String()),
    sa.column("subject_id", sa.String()),
    sa.column("data", sa.String()),
    sa.column("salt", sa.LargeBinary()),
    sa.column("body", sa.LargeBinary()),
)


def _alembic(engine, verb: str, revision: str) -> None:
    config = schema._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)


def test_upgrade_backfills_and_downgrade_removes(vault_):
    engine = vault_.engine
    _alembic(engine, "downgrade", "0003")
    with engine.connect() as connection:
        assert "event_categories" not in sa.inspect(connection).get_table_names()
    rng = random.Random(4)
    events = generate(
        rng,
        make_cast(rng, residents=4, clinics=2, landlords=2),
        2500,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        span=timedelta(days=5),
    )
    rows = []
    for index, event in enumerate(events):
        data_json = encode(event.data)
        body = ledger.canonical_body(
            kind=event.kind,
            occurred_at=event.occurred_at,
            actor_id=event.actor_id,
            subject_id=event.subject_id,
            data=json.loads(data_json),
        )
        rows.append(
            {
                "ledger_index": index,
                "kind": event.kind,
                "occurred_at": event.occurred_at.replace(tzinfo=None),
                "actor_id": event.actor_id,
                "subject_id": event.subject_id,
                "data": data_json,
                "salt": os.urandom(32),
                "body": body,
            }
        )
    with engine.begin() as connection:
        connection.execute(sa.insert(OLD_EVENTS), rows)

    schema.upgrade(engine)  # 0003 -> 0004, in batches of 2000
    with engine.connect() as connection:
        stored = {
            r.ledger_index: r for r in connection.execute(sa.text("SELECT ledger_index, outcome, purpose FROM events"))
        }
        categories: dict[int, list[str]] = {}
        for index, category in connection.execute(
            sa.text("SELECT ledger_index, category FROM event_categories ORDER BY ledger_index, category")
        ):
            categories.setdefault(index, []).append(category)
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert len(stored) == len(events)
    for index, event in enumerate(events):
        data = json.loads(encode(event.data))
        assert (stored[index].outcome, stored[index].purpose) == (
            audit_index.outcome_of(event.kind),
            audit_index.purpose_of(data),
        )
        assert tuple(categories.get(index, ())) == audit_index.categories_of(data)
    assert sum(len(c) for c in categories.values()) > len(events) // 2
    assert {r.outcome for r in stored.values()} == {None, "permitted", "refused"}
    assert schema.is_current(engine)
