"""Service health (``GET /healthz``)."""

import marshmallow as ma
from marshmallow import fields


class HealthOut(ma.Schema):
    status = fields.String(required=True, metadata={"enum": ["ok"]})


HEALTH_EXAMPLE = {"status": "ok"}
