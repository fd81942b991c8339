"""The controlled vocabularies of the public contract: roles, categories, purposes, break-glass codes.

Categories are ``family.name``; a grant may name a whole family as
``family.*`` (see docs/api.md). Record categories are always exact.
"""

from vault.core.errors import InvalidInput

ROLES = ("resident", "clinic", "landlord", "agency", "compliance", "admin", "witness")

# The roles that issue documents and may sign the records they write (docs/attestations.md): an agency is an
# employer, a tax or benefits office, a registry; like a clinic it writes only under a resident's ``write`` grant.
ISSUER_ROLES = ("clinic", "landlord", "agency")

CATEGORIES = (
    "health.allergies",
    "health.medications",
    "health.conditions",
    "health.immunizations",
    "health.labs",
    "health.notes",
    "health.imaging",
    "tenancy.identity",
    "tenancy.income",
    "tenancy.lease",
    "tenancy.rental-history",
    "tenancy.references",
    "tenancy.deposit",
)

# How reports name each category to a reader.
CATEGORY_LABELS = {
    "health.allergies": "Allergies and adverse reactions",
    "health.medications": "Medications",
    "health.conditions": "Conditions and problems",
    "health.immunizations": "Immunizations",
    "health.labs": "Laboratory results",
    "health.notes": "Clinical notes",
    "health.imaging": "Imaging studies",
    "tenancy.identity": "Identity documents",
    "tenancy.income": "Income and employment",
    "tenancy.lease": "Lease agreement",
    "tenancy.rental-history": "Rental history",
    "tenancy.references": "References",
    "tenancy.deposit": "Deposit",
}

CATEGORY_FAMILIES = tuple(sorted({c.split(".", 1)[0] for c in CATEGORIES}))

PURPOSES = (
    "treatment",
    "payment",
    "operations",
    "research",
    "emergency",
    "tenancy-screening",
    "tenancy-management",
    "legal",
)


# Why a clinic declares an emergency (break-glass): a coded reason beside the sealed free text,
# so that declarations can be counted, filtered and reviewed by kind (docs/consent.md).
BREAK_GLASS_CODES = ("unconscious", "life-threatening", "unable-to-consent", "other")
BREAK_GLASS_CODE_LABELS = {
    "unconscious": "The resident is unconscious",
    "life-threatening": "A life-threatening condition needs the records now",
    "unable-to-consent": "The resident is conscious but unable to consent (confused, sedated, in distress)",
    "other": "Another emergency, described in the text",
}


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; expected one of: {', '.join(ROLES)}.")
    return role


def check_category(category: str) -> str:
    """An exact record category."""
    if category not in CATEGORIES:
        raise InvalidInput(f"Unknown category {category!r}; expected one of: {', '.join(CATEGORIES)}.")
    return category


def check_category_pattern(pattern: str) -> str:
    """An exact category or a family wildcard such as ``health.*``."""
    if pattern.endswith(".*") and pattern[:-2] in CATEGORY_FAMILIES:
        return pattern
    return check_category(pattern)


def category_matches(pattern: str, category: str) -> bool:
    if pattern.endswith(".*"):
        return category.startswith(pattern[:-1])
    return pattern == category


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise InvalidInput(f"Unknown purpose {purpose!r}; expected one of: {', '.join(PURPOSES)}.")
    return purpose


def check_break_glass_code(code: str) -> str:
    if code not in BREAK_GLASS_CODES:
        raise InvalidInput(f"Unknown emergency code {code!r}; expected one of: {', '.join(BREAK_GLASS_CODES)}.")
    return code
