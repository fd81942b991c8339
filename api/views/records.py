"""Records endpoints: create, list, read, add a version."""

from flask import url_for
from flask.views import MethodView

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas import (
    RecordCreateIn,
    RecordListOut,
    RecordListQuery,
    RecordMetaOut,
    RecordOut,
    RecordReadQuery,
    RecordUpdateIn,
)
from vault.records import records

blp = Blueprint("records", __name__, url_prefix="/api/v1", description="Encrypted records of residents")
blp.before_request(authenticate_request)


@blp.route("/subjects/<subject_id>/records")
class SubjectRecords(MethodView):
    @blp.arguments(RecordListQuery, location="query")
    @blp.response(200, RecordListOut)
    def get(self, query, subject_id):
        """Metadata of the records the caller may see"""
        vault = current_vault()
        with vault.transaction() as session:
            items = records.list_records(session, vault.keys, caller(), subject_id=subject_id, now=vault.now(), **query)
        return {"items": items, "total": len(items)}

    @blp.arguments(RecordCreateIn)
    @blp.response(201, RecordMetaOut)
    def post(self, body, subject_id):
        """Store a new record, sealed at rest"""
        vault = current_vault()
        with vault.transaction() as session:
            meta = records.create_record(
                session,
                vault.keys,
                caller(),
                subject_id=subject_id,
                category=body["category"],
                content=body["content"],
                title=body["title"],
                purpose=body["purpose"],
                now=vault.now(),
            )
        return meta, 201, {"Location": url_for("records.Record", record_id=meta.id)}


@blp.route("/records/<record_id>")
class Record(MethodView):
    @blp.arguments(RecordReadQuery, location="query")
    @blp.response(200, RecordOut)
    def get(self, query, record_id):
        """Read a record's content (current version, or ?version=N)"""
        vault = current_vault()
        with vault.transaction() as session:
            result = records.read_record(
                session,
                vault.keys,
                caller(),
                record_id,
                purpose=query["purpose"],
                version=query["version"],
                now=vault.now(),
            )
        # Only after the commit succeeded does content leave the server.
        return result

    @blp.arguments(RecordUpdateIn)
    @blp.response(200, RecordMetaOut)
    def put(self, body, record_id):
        """Add a new version; earlier versions stay"""
        vault = current_vault()
        with vault.transaction() as session:
            return records.add_version(
                session,
                vault.keys,
                caller(),
                record_id,
                content=body["content"],
                title=body.get("title", records.KEEP),
                expected_version=body["expected_version"],
                purpose=body["purpose"],
                now=vault.now(),
            )
