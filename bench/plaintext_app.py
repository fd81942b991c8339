"""The plaintext baseline of the HTTP benchmark: a records API with bearer tokens and nothing else.

Flask and SQLAlchemy Core, with the vault's two hot operations and none of its
promises: no encryption, consent, ledger or events. A token is looked up by
its SHA-256 hash (as the vault does) and compared in constant time; a read
returns the record by id to any live token; a create stores the JSON content
as text under the subject. On SQLite the connections get the vault's
durability (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE`` for writes, the
same busy timeout), so both sides pay the same fsync per commit.

It is served by gunicorn's threaded workers (gthread), as ``civicvault serve``
is, with the same worker and thread counts: ``python -m bench.plaintext_app
--database-url URL --port P --workers W --threads T``. The app is built in
each worker after the fork, from ``BENCH_PLAINTEXT_DATABASE_URL``.
"""

import argparse
import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, create_engine, event, insert, select

URL_ENV = "BENCH_PLAINTEXT_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 5000

metadata = MetaData()
tokens = Table(
    "plain_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("principal_id", String(40), nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)
records = Table(
    "plain_records",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=False, index=True),
    Column("category", String(64), nullable=False),
    Column("title", String(200), nullable=True),
    Column("content", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine with the vault's SQLite durability settings, or a plain pooled one for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.info.get("write") else "BEGIN DEFERRED")

    return engine


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def prepare(url: str, *, content: dict) -> dict:
    """Create the tables, one subject with a token and one record; returns their ids and the token."""
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        subject_id, token = f"p_{uuid.uuid4().hex}", secrets.token_urlsafe(32)
        record_id = f"r_{uuid.uuid4().hex}"
        with engine.connect() as connection:
            connection.info["write"] = True
            with connection.begin():
                connection.execute(insert(tokens).values(token_hash=token_hash(token), principal_id=subject_id))
                connection.execute(
                    insert(records).values(
                        id=record_id,
                        subject_id=subject_id,
                        category="health.labs",
                        title="HbA1c",
                        content=json.dumps(content),
                        created_at=datetime.now(UTC).replace(tzinfo=None),
                    )
                )
    finally:
        engine.dispose()
    return {"subject_id": subject_id, "token": token, "record_id": record_id}


def create_app(url: str | None = None):
    """The Flask app; ``url`` defaults to ``BENCH_PLAINTEXT_DATABASE_URL`` (read when the worker builds it)."""
    from flask import Flask, abort, jsonify, request

    url = url or os.environ.get(URL_ENV)
    if not url:
        raise RuntimeError(f"{URL_ENV} is not set")
    engine = make_engine(url)
    app = Flask("plaintext")

    def principal(connection) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not token or len(token) > 200:
            abort(401)
        digest = token_hash(token)
        row = connection.execute(
            select(tokens.c.token_hash, tokens.c.principal_id, tokens.c.revoked_at).where(tokens.c.token_hash == digest)
        ).first()
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
            abort(401)
        return row.principal_id

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/api/v1/records/<record_id>")
    def read(record_id: str):
        with engine.begin() as connection:
            principal(connection)
            row = connection.execute(select(records).where(records.c.id == record_id)).first()
        if row is None:
            abort(404)
        return jsonify(
            id=row.id,
            subject_id=row.subject_id,
            category=row.category,
            title=row.title,
            content=json.loads(row.content),
            created_at=row.created_at.isoformat(),
        )

    @app.post("/api/v1/subjects/<subject_id>/records")
    def create(subject_id: str):
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("category"), str) or "content" not in body:
            abort(400)
        record_id, now = f"r_{uuid.uuid4().hex}", datetime.now(UTC).replace(tzinfo=None)
        with engine.connect() as connection:
            connection.info["write"] = True
            with connection.begin():
                if principal(connection) != subject_id:
                    abort(404)
                connection.execute(
                    insert(records).values(
                        id=record_id,
                        subject_id=subject_id,
                        category=body["category"],
                        title=body.get("title"),
                        content=json.dumps(body["content"]),
                        created_at=now,
                    )
                )
        return jsonify(id=record_id, subject_id=subject_id, category=body["category"]), 201

    return app


def serve(*, url: str, host: str, port: int, workers: int, threads: int) -> None:
    """Serve under gunicorn with gthread workers, the app built in each worker (no preload), as the vault is."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.util import import_app

    os.environ[URL_ENV] = url

    class _Server(BaseApplication):
        def load_config(self):
            for key, value in {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "preload_app": False,
                "timeout": 60,
                "keepalive": 5,
                "accesslog": "-",  # the vault logs each request too; the bench discards both
                "control_socket_disable": True,
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return import_app("bench.plaintext_app:create_app()")

    _Server().run()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plaintext_app")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args(argv)
    serve(url=args.database_url, host=args.host, port=args.port, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
