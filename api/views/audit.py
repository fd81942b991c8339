"""Compliance endpoints: search the trail (JSON pages or CSV), review break-glass use, flags."""

from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from flask.views import MethodView

from api.context import Body, Query, authenticate_request, current_vault, reading, writing
from api.openapi import Blueprint
from api.schemas.audit import (
    ACKNOWLEDGE_IN_EXAMPLE,
    EVENT_PAGE_EXAMPLE,
    EVENTS_CSV_EXAMPLE,
    FLAG_LIST_EXAMPLE,
    REVIEW_ACKNOWLEDGED_EXAMPLE,
    REVIEW_EXAMPLE,
    REVIEW_LIST_EXAMPLE,
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
from vault.compliance.break_glass_review import Review
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
    @blp.response(200, EventPageOut, example=EVENT_PAGE_EXAMPLE)
    @blp.alt_response(
        200,
        description="Every match as CSV, with format=csv or Accept: text/csv; the ledger size it is pinned to "
        "is in the X-CivicVault-As-Of header",
        content_type=CSV,
        example=EVENTS_CSV_EXAMPLE,
        success=True,
    )
    @blp.problems(400, 401, 403)
    def get(self, query: Query) -> Response | dict[str, Any]:
        """Search every event by resident, actor, kind, outcome, purpose, category and time (compliance)"""
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
            with writing() as call:  # the export's trail.searched event is committed before any line streams
                flt, as_of = audit_search.begin_export(
                    call.session, call.caller, flt, as_of=query["as_of"], now=call.now
                )
            # The batches are read as the response streams, each in a read-only transaction of its own.
            batches = audit_search.export_batches(
                current_vault().read_transaction, flt, as_of=as_of, after=query["after"]
            )
            return Response(
                audit_csv.stream(batches),
                mimetype=CSV,
                headers={
                    "Content-Disposition": 'attachment; filename="civicvault-events.csv"',
                    "X-CivicVault-As-Of": str(as_of),
                },
            )
        with writing() as call:  # the search is logged (trail.searched) in its own transaction
            page = audit_search.logged_search(
                call.session,
                call.caller,
                flt,
                limit=query["limit"],
                after=query["after"],
                as_of=query["as_of"],
                now=call.now,
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
    @blp.response(200, ReviewListOut, example=REVIEW_LIST_EXAMPLE)
    @blp.problems(400, 401, 403)
    def get(self, query: Query) -> dict[str, Any]:
        """Emergency accesses waiting for review (status=pending, the default) or already acknowledged"""
        with writing() as call:  # showing reasons and notes appends text.opened events
            items, total = break_glass_review.queue(call.session, call.keys, call.caller, now=call.now, **query)
        return {"items": items, "total": total}


@blp.route("/break-glass/<break_glass_id>")
class BreakGlassReview(MethodView):
    @blp.response(200, ReviewOut, example=REVIEW_EXAMPLE)
    @blp.problems(401, 403, 404)
    def get(self, break_glass_id: str) -> Review:
        """One emergency access and its review"""
        with writing() as call:  # showing the reason and note appends a text.opened event
            return break_glass_review.get(call.session, call.keys, call.caller, break_glass_id, now=call.now)


@blp.route("/break-glass/<break_glass_id>/acknowledge")
class AcknowledgeBreakGlass(MethodView):
    @blp.arguments(AcknowledgeIn, example=ACKNOWLEDGE_IN_EXAMPLE)
    @blp.response(200, ReviewOut, example=REVIEW_ACKNOWLEDGED_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body, break_glass_id: str) -> Review:
        """Acknowledge an emergency access with a note (sealed); recorded in the ledger; once only (409 after)"""
        with writing() as call:
            return break_glass_review.acknowledge(
                call.session, call.keys, call.caller, break_glass_id, note=body["note"], now=call.now
            )


@blp.route("/flags")
class Flags(MethodView):
    @blp.arguments(FlagQuery, location="query")
    @blp.response(200, FlagListOut, example=FLAG_LIST_EXAMPLE)
    @blp.problems(400, 401, 403)
    def get(self, query: Query) -> dict[str, Any]:
        """Flags over a time range.

        Break-glass use, refusal bursts, unusual read volume, reads near or after grant expiry.
        """
        with reading() as call:
            since, until, flags = audit_flags.compute(
                call.session,
                call.caller,
                since=query["since"],
                until=query["until"],
                limits=call.settings.flags,
                now=call.now,
                rules=tuple(query["rule"]),
            )
            thresholds = call.settings.flags
        return {"since": since, "until": until, "thresholds": thresholds, "items": flags, "total": len(flags)}
