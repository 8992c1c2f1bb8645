"""Response schemas of the activity API (the request's is intake.activity's)."""

from marshmallow import Schema, fields


class ActivityAcceptedSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"description": "Rows written."})
