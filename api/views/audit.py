"""Compliance endpoints: search the trail (JSON pages or CSV), review break-glass use, flags."""

from urllib.parse import urlencode

from flask import Response, request
from flask.views import MethodView

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas_audit import (
    AcknowledgeIn,
    EventPageOut,
    EventQuery,
    FlagListOut,
    FlagQuery,
    ReviewListOut,
    ReviewOut,
    ReviewQuery,
)
from vault.compliance import audit_csv, audit_flags, audit_search, break_glass_review
from vault.core.errors import InvalidInput

blp = Blueprint(
    "audit", __name__, url_prefix="/api/v1/audit", description="Compliance: the access trail, break-glass review, flags"
)
blp.before_request(authenticate_request)

CSV = "text/csv"


def _wants_csv(fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    # Accept: text/csv (or text/csv preferred over JSON); */* and no Accept header mean JSON.
    return request.accept_mimetypes.best_match(["application/json", CSV]) == CSV


def _next_link(page: audit_search.EventPage) -> str | None:
    if page.next_after is None:
        return None
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("after", "as_of")]
    args += [("as_of", str(page.as_of)), ("after", str(page.next_after))]
    return f"{request.path}?{urlencode(args)}"


@blp.route("/events")
class AuditEvents(MethodView):
    @blp.arguments(EventQuery, location="query")
    @blp.response(200, EventPageOut)
    @blp.doc(responses={"200": {"content": {CSV: {"schema": {"type": "string"}}}}})
    def get(self, query):
        """Search every event by resident, actor, kind, outcome, purpose, category and time (compliance)"""
        vault = current_vault()
        flt = audit_search.EventFilter(
            subject_id=query["subject_id"],
            actor_id=query["actor_id"],
            kinds=tuple(query["kind"]),
            outcome=query["outcome"],
            purpose=query["purpose"],
            category=query["category"],
            since=query["since"],
            until=query["until"],
        )
        if _wants_csv(query["format"]):
            if "limit" in request.args:
                raise InvalidInput("A CSV export holds every match; page with after and as_of instead of limit.")
            with vault.read_transaction() as session:
                flt, as_of = audit_search.begin_export(session, caller(), flt, as_of=query["as_of"])
            batches = audit_search.export_batches(vault.read_transaction, flt, as_of=as_of, after=query["after"])
            return Response(
                audit_csv.stream(batches),
                mimetype=CSV,
                headers={
                    "Content-Disposition": 'attachment; filename="civicvault-events.csv"',
                    "X-CivicVault-As-Of": str(as_of),
                },
            )
        with vault.read_transaction() as session:
            page = audit_search.search(
                session, caller(), flt, limit=query["limit"], after=query["after"], as_of=query["as_of"]
            )
        return {
            "items": page.items,
            "total": page.total,
            "as_of": page.as_of,
            "limit": page.limit,
            "next_after": page.next_after,
            "next": _next_link(page),
        }


@blp.route("/break-glass")
class BreakGlassQueue(MethodView):
    @blp.arguments(ReviewQuery, location="query")
    @blp.response(200, ReviewListOut)
    def get(self, query):
        """Emergency accesses waiting for review (status=pending, the default) or already acknowledged"""
        vault = current_vault()
        with vault.read_transaction() as session:
            items, total = break_glass_review.queue(session, vault.keys, caller(), now=vault.now(), **query)
        return {"items": items, "total": total}


@blp.route("/break-glass/<break_glass_id>")
class BreakGlassReview(MethodView):
    @blp.response(200, ReviewOut)
    def get(self, break_glass_id):
        """One emergency access and its review"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return break_glass_review.get(session, vault.keys, caller(), break_glass_id, now=vault.now())


@blp.route("/break-glass/<break_glass_id>/acknowledge")
class AcknowledgeBreakGlass(MethodView):
    @blp.arguments(AcknowledgeIn)
    @blp.response(200, ReviewOut)
    def post(self, body, break_glass_id):
        """Acknowledge an emergency access with a note (sealed); recorded in the ledger; once only (409 after)"""
        vault = current_vault()
        with vault.transaction() as session:
            return break_glass_review.acknowledge(
                session, vault.keys, caller(), break_glass_id, note=body["note"], now=vault.now()
            )


@blp.route("/flags")
class Flags(MethodView):
    @blp.arguments(FlagQuery, location="query")
    @blp.response(200, FlagListOut)
    def get(self, query):
        """Flags over a time range.

        Break-glass use, refusal bursts, unusual read volume, reads near or after grant expiry.
        """
        vault = current_vault()
        with vault.read_transaction() as session:
            since, until, flags = audit_flags.compute(
                session,
                caller(),
                since=query["since"],
                until=query["until"],
                limits=vault.settings.flags,
                now=vault.now(),
                rules=tuple(query["rule"]),
            )
        return {"since": since, "until": until, "thresholds": vault.settings.flags, "items": flags, "total": len(flags)}
