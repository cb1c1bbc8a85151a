"""Device bodies: APNs registrations."""
import marshmallow as ma

from runner.api import Schema, UtcDateTime

ENVIRONMENTS = ("sandbox", "production")


class DeviceArgs(Schema):
    token = ma.fields.String(
        required=True,
        # \Z, not $: `$` also matches before a trailing newline, which would be stored and sent.
        validate=ma.validate.Regexp(
            r"^(?:[0-9a-fA-F]{2}){32,100}\Z",
            error="An APNs device token is hexadecimal: an even number of 64 to 200 hex digits.",
        ),
        # The document's patterns are ECMA-262, which has no \Z and whose `$` is the very end.
        metadata={"pattern": r"^(?:[0-9a-fA-F]{2}){32,100}$"},
    )
    environment = ma.fields.String(required=True, validate=ma.validate.OneOf(ENVIRONMENTS))
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200), allow_none=True)


class DeviceSchema(Schema):
    id = ma.fields.Integer()
    token = ma.fields.String()
    environment = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean()
    disabled_reason = ma.fields.String(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
