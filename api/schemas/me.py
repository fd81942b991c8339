"""The calling principal (``GET /api/v1/me``)."""

import marshmallow as ma
from marshmallow import fields

from api.schemas.common import AMINA, Timestamp
from vault.core.vocabulary import ROLES


class PrincipalOut(ma.Schema):
    id = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": list(ROLES)})
    name = fields.String(required=True)
    created_at = Timestamp(required=True)


PRINCIPAL_EXAMPLE = {"id": AMINA, "role": "resident", "name": "Amina Yusuf", "created_at": "2026-11-02T08:15:04.512Z"}
