"""What every context's schemas share: strict input, RFC 3339 output, problems, receipts, paging.

Also the cast of the OpenAPI examples: one resident, clinic, landlord,
compliance officer and witness with ids shaped like the real ones, so that
examples across operations tell one consistent story.
"""

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from vault.core.bounds import MAX_PAGE
from vault.core.clock import rfc3339
from vault.core.ids import MAX_ID_LENGTH
from vault.core.vocabulary import CATEGORIES, CATEGORY_FAMILIES

HEX = {"description": "lowercase hex"}
TIME = {"description": "RFC 3339 with a time zone, e.g. 2026-12-31T23:59:59Z"}
CATEGORY_PATTERNS = list(CATEGORIES) + [f"{family}.*" for family in CATEGORY_FAMILIES]


class Strict(ma.Schema):
    """Input: unknown fields are refused (400), in bodies and query strings alike."""

    class Meta:
        unknown = ma.RAISE


class Timestamp(fields.Field):
    """Output-only RFC 3339 UTC timestamp, e.g. ``2026-11-25T09:30:00.000Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)


def id_field(description: str, **kwargs: Any) -> fields.String:
    """An optional id in a query string: bounded before it reaches a query."""
    return fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_ID_LENGTH),
        metadata={"description": description},
        **kwargs,
    )


class Page(Strict):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))


class ProblemOut(ma.Schema):
    """RFC 9457 problem details, the body of every error response."""

    type = fields.String(
        required=True,
        metadata={
            "description": "urn:civicvault:problem:<code> for the vault's own errors; about:blank for plain HTTP ones"
        },
    )
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "Field -> messages, for invalid input."})
    reason = fields.String(metadata={"description": "Reason code of a consent denial."})


class ReceiptOut(ma.Schema):
    leaf_index = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "0-based index of the event's entry in the ledger; null while the entry is still "
            "pending (GET /api/v1/ledger/entries/{leaf_hash} gives it once sequenced)"
        },
    )
    leaf_hash = fields.String(required=True, metadata={"description": "RFC 9162 leaf hash of the entry, lowercase hex"})
    status = fields.String(
        required=True,
        metadata={
            "enum": ["sequenced", "pending"],
            "description": "sequenced: the entry has its index; pending: the event is committed and waits for "
            "the sequencer (docs/ledger-format.md, Sequencing)",
        },
    )


# --- the cast of the examples (ids as vault.core.ids makes them) ---------------------------------

AMINA = "p-seytgdvtc3czy56kuyxdtjhdne"  # a resident
CHIDI = "p-rlskoc3yggezgye4zpxtqnn2by"  # her delegate, another resident
CLINIC = "p-omtmrarydwz7gsxa3xahwqskoa"  # Riverside Clinic
LANDLORD = "p-n6yilbmg6f3gqbut2j5mmmbwku"  # Harbour Housing
COMPLIANCE = "p-qqzf664w727hmjzrkwu7vcyfim"  # Dana Whitfield
WITNESS = "p-2cxoshrbpp55lb2tu3j5d7gcki"  # County Witness
AGENCY = "p-vq3xk7hm2lzfbwae5tjd4oyrcu"  # Northside Payroll Services, an issuer
ISSUER_KEY = "k-m4ryq2xwdbh7fzjc6vtlke3usa"  # its Ed25519 key
RECORD = "r-yudur2wv7l6umhtutmxayhs4pu"
TENANCY_RECORD = "r-5qaaqc5ez4qihffwitu5qhrpwi"
REQUEST = "q-egesl5min77g26wffhj5vvezbq"
GRANT = "g-smqig2zxrzjlmleq7vclucpmsa"
DELEGATION = "d-dtynerapf5yr2iizs3d63s5ofa"
BREAK_GLASS = "b-fjeq2k35fszrj3yfstg2zps56u"
ERASURE = "e-i5ukyiexl3o3ox4q7aryenwi7u"
LEAF_HASH = "e9c381bf91b7e0ab06bce54cadfd713bba159bdac9c67f8e6e7d3a1cacc26017"
ROOT_HASH = "b31d6d351a253ed5ff8434d4959a9914131f57bb1451438271017c822cbf7c5c"
PATH = [
    "6bde574c565dbccefbda5cb78fdca71964df321ef89288bae77a739121f696b1",
    "cb07fc80f0db84b544eaa81554bf7180d22f0bc5375a44f94e2d73b5f08de0b2",
    "058eb62b4a96dd12242a45b37ecb7a45cd64c76ebdf66e6495d4ebf00fb0372b",
]
RECEIPT = {"leaf_index": 41, "leaf_hash": LEAF_HASH, "status": "sequenced"}
