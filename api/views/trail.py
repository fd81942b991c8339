"""What residents see of the trail: access log, accounting of disclosures, export."""

import dataclasses
import json
from typing import Any

from flask import Response
from flask.views import MethodView

from api.context import Query, authenticate_request, reading, writing
from api.openapi import Blueprint
from api.schemas.trail import (
    ACCESS_LOG_EXAMPLE,
    DISCLOSURES_CSV_EXAMPLE,
    DISCLOSURES_EXAMPLE,
    EXPORT_EXAMPLE,
    AccessLogOut,
    AccessLogQuery,
    DisclosureQuery,
    DisclosureReportOut,
)
from vault.rights import export, trail

blp = Blueprint("trail", __name__, url_prefix="/api/v1", description="Residents' access log, disclosures and export")
blp.before_request(authenticate_request)


@blp.route("/subjects/<subject_id>/access-log")
class AccessLog(MethodView):
    @blp.arguments(AccessLogQuery, location="query")
    @blp.response(200, AccessLogOut, example=ACCESS_LOG_EXAMPLE)
    @blp.problems(400, 401, 404)
    def get(self, query: Query, subject_id: str) -> trail.AccessLog:
        """Every access and attempt concerning the resident, newest first (the resident, a delegate, compliance)"""
        with reading() as call:
            return trail.access_log(call.session, call.keys, call.caller, subject_id=subject_id, now=call.now, **query)


@blp.route("/subjects/<subject_id>/disclosures")
class Disclosures(MethodView):
    @blp.arguments(DisclosureQuery, location="query")
    @blp.response(200, DisclosureReportOut, example=DISCLOSURES_EXAMPLE)
    @blp.alt_response(
        200,
        description="The same lines as CSV with format=csv",
        content_type="text/csv",
        example=DISCLOSURES_CSV_EXAMPLE,
        success=True,
    )
    @blp.problems(400, 401, 404)
    def get(self, query: Query, subject_id: str) -> Response | dict[str, Any]:
        """Accounting of disclosures of the last six years (HIPAA 45 CFR 164.528), as JSON or CSV"""
        with reading() as call:
            report = trail.disclosures(call.session, call.keys, call.caller, subject_id=subject_id, now=call.now)
        if query["format"] == "csv":
            return Response(
                trail.disclosures_csv(report),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="disclosures-{subject_id}.csv"'},
            )
        items = [
            {
                **dataclasses.asdict(item),
                "recipient": item.recipient,
                "proof": trail.proof_reference(item.ledger_index, report.tree_size),
            }
            for item in report.items
        ]
        return {**dataclasses.asdict(report), "items": items, "total": len(items)}


@blp.route("/subjects/<subject_id>/export")
class Export(MethodView):
    @blp.response(
        200, description="Everything held about the resident (format civicvault-export-v1)", example=EXPORT_EXAMPLE
    )
    @blp.problems(401, 404)
    def get(self, subject_id: str) -> Response:
        """Everything held about the resident, with their health records as a FHIR R4 Bundle (the resident only)"""
        with writing() as call:
            document = export.export(call.session, call.keys, call.caller, subject_id=subject_id, now=call.now)
        # Only after the export's ledger event committed does the document leave the server.
        return Response(
            json.dumps(document, ensure_ascii=False),
            mimetype="application/json",
            headers={"Content-Disposition": f'attachment; filename="civicvault-export-{subject_id}.json"'},
        )
