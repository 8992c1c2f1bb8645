"""The success envelope and its OpenAPI schemas: `{"success": true, "data": ...}`.

Views return `ok(data)`; the response schema documents and serializes the same shape.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema, fields


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


@cache
def envelope(schema: type[Schema]) -> type[Schema]:
    """A schema for `{"success": true, "data": <schema>}`, named after `schema`."""
    name = schema.__name__.removesuffix("Schema") + "Response"
    return Schema.from_dict(
        {"success": fields.Boolean(required=True), "data": fields.Nested(schema, required=True)},
        name=name,
    )


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict(metadata={"description": "What was wrong, by field where it applies"})


class ErrorEnvelopeSchema(Schema):
    success = fields.Boolean(required=True, metadata={"example": False})
    error = fields.Nested(ErrorDetailSchema, required=True)
