"""What residents see of the trail: access log, accounting of disclosures, export."""

import dataclasses
import json

from flask import Response
from flask.views import MethodView

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas_trail import AccessLogOut, AccessLogQuery, DisclosureQuery, DisclosureReportOut
from vault.rights import export, trail

blp = Blueprint("trail", __name__, url_prefix="/api/v1", description="Residents' access log, disclosures and export")
blp.before_request(authenticate_request)


@blp.route("/subjects/<subject_id>/access-log")
class AccessLog(MethodView):
    @blp.arguments(AccessLogQuery, location="query")
    @blp.response(200, AccessLogOut)
    def get(self, query, subject_id):
        """Every access and attempt concerning the resident, newest first (the resident, a delegate, compliance)"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return trail.access_log(session, vault.keys, caller(), subject_id=subject_id, now=vault.now(), **query)


@blp.route("/subjects/<subject_id>/disclosures")
class Disclosures(MethodView):
    @blp.arguments(DisclosureQuery, location="query")
    @blp.response(200, DisclosureReportOut)
    @blp.alt_response(200, description="The same lines as CSV with format=csv", content_type="text/csv", success=True)
    def get(self, query, subject_id):
        """Accounting of disclosures of the last six years (HIPAA 45 CFR 164.528), as JSON or CSV"""
        vault = current_vault()
        with vault.read_transaction() as session:
            report = trail.disclosures(session, vault.keys, caller(), subject_id=subject_id, now=vault.now())
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
    @blp.response(200, description="Everything held about the resident (format civicvault-export-v1)")
    def get(self, subject_id):
        """Everything held about the resident, with their health records as a FHIR R4 Bundle (the resident only)"""
        vault = current_vault()
        with vault.transaction() as session:
            document = export.export(session, vault.keys, caller(), subject_id=subject_id, now=vault.now())
        # Only after the export's ledger event committed does the document leave the server.
        return Response(
            json.dumps(document, ensure_ascii=False),
            mimetype="application/json",
            headers={"Content-Disposition": f'attachment; filename="civicvault-export-{subject_id}.json"'},
        )
