"""Records endpoints: create, list, read, add a version."""

from typing import Any

from flask import url_for
from flask.views import MethodView

from api.context import Body, Created, Query, authenticate_request, writing
from api.openapi import Blueprint
from api.schemas.records import (
    RECORD_CREATE_EXAMPLE,
    RECORD_EXAMPLE,
    RECORD_LIST_EXAMPLE,
    RECORD_META_EXAMPLE,
    RECORD_UPDATE_EXAMPLE,
    RECORD_UPDATED_EXAMPLE,
    RecordCreateIn,
    RecordListOut,
    RecordListQuery,
    RecordMetaOut,
    RecordOut,
    RecordReadQuery,
    RecordUpdateIn,
)
from vault.records import records
from vault.records.provenance import IssuerSignature
from vault.records.records import RecordContent, RecordMeta

blp = Blueprint("records", __name__, url_prefix="/api/v1", description="Encrypted records of residents")
blp.before_request(authenticate_request)


def _signature(given: dict[str, str] | None) -> IssuerSignature | None:
    """The parsed ``signature`` object (its form already checked by the schema), or None."""
    if given is None:
        return None
    return IssuerSignature(key_id=given["key_id"], issued_at=given["issued_at"], value=bytes.fromhex(given["value"]))


@blp.route("/subjects/<subject_id>/records")
class SubjectRecords(MethodView):
    @blp.arguments(RecordListQuery, location="query")
    @blp.response(200, RecordListOut, example=RECORD_LIST_EXAMPLE)
    @blp.problems(400, 401, 403, 404)
    def get(self, query: Query, subject_id: str) -> dict[str, Any]:
        """Metadata of the records the caller may see"""
        # A writing transaction: listing another resident's records is an access, recorded in the ledger.
        with writing() as call:
            items = records.list_records(
                call.session, call.keys, call.caller, subject_id=subject_id, now=call.now, **query
            )
        return {"items": items, "total": len(items)}

    @blp.arguments(RecordCreateIn, example=RECORD_CREATE_EXAMPLE)
    @blp.response(201, RecordMetaOut, example=RECORD_META_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body, subject_id: str) -> Created:
        """Store a new record, sealed at rest"""
        with writing() as call:
            meta = records.create_record(
                call.session,
                call.keys,
                call.caller,
                subject_id=subject_id,
                category=body["category"],
                content=body["content"],
                title=body["title"],
                purpose=body["purpose"],
                signature=_signature(body["signature"]),
                now=call.now,
            )
        return meta, 201, {"Location": url_for("records.Record", record_id=meta.id)}


@blp.route("/records/<record_id>")
class Record(MethodView):
    @blp.arguments(RecordReadQuery, location="query")
    @blp.response(200, RecordOut, example=RECORD_EXAMPLE)
    @blp.problems(400, 401, 403, 404)
    def get(self, query: Query, record_id: str) -> RecordContent:
        """Read a record's content (current version, or ?version=N)"""
        with writing() as call:
            result = records.read_record(
                call.session,
                call.keys,
                call.caller,
                record_id,
                purpose=query["purpose"],
                version=query["version"],
                now=call.now,
            )
        # Only after the commit succeeded does content leave the server.
        return result

    @blp.arguments(RecordUpdateIn, example=RECORD_UPDATE_EXAMPLE)
    @blp.response(200, RecordMetaOut, example=RECORD_UPDATED_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def put(self, body: Body, record_id: str) -> RecordMeta:
        """Add a new version; earlier versions stay"""
        with writing() as call:
            return records.add_version(
                call.session,
                call.keys,
                call.caller,
                record_id,
                content=body["content"],
                title=body.get("title", records.KEEP),
                expected_version=body["expected_version"],
                purpose=body["purpose"],
                signature=_signature(body["signature"]),
                now=call.now,
            )
