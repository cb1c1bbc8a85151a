"""Auth bodies: token requests, elevation, the calling user."""
import marshmallow as ma

from runner import policies
from runner.api import Schema, UtcDateTime


def _known_pattern(value):
    if not policies.is_valid_pattern(value):
        raise ma.ValidationError(
            f"Unknown ability '{value}'; use one of {', '.join(policies.ABILITIES)}, 'group:*' or '*'."
        )


# What POST /api/auth/token may grant: each ability and `group:*` short of the elevated ones.
_GRANTABLE_BY_TOKEN = [
    pattern
    for pattern in (*policies.ABILITIES, *dict.fromkeys(a.split(":")[0] + ":*" for a in policies.ABILITIES))
    if not policies.grants_elevated(pattern)
]


class TokenArgs(Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=254))
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=1024))
    device_name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    abilities = ma.fields.List(
        # The enum documents what may be asked for; the validators explain why anything else is refused.
        ma.fields.String(validate=_known_pattern, metadata={"enum": _GRANTABLE_BY_TOKEN}),
        validate=ma.validate.Length(min=1, max=len(policies.ABILITIES)),
        metadata={"description": "Default: " + ", ".join(policies.DEFAULT_MOBILE)},
    )

    @ma.validates("abilities")
    def _not_elevated(self, value, **kwargs):
        elevated = [pattern for pattern in value if policies.grants_elevated(pattern)]
        if elevated:
            raise ma.ValidationError(
                f"{', '.join(elevated)} would grant {' or '.join(policies.ELEVATED)}, "
                "which only POST /api/auth/elevate grants."
            )


class TokenSchema(Schema):
    token = ma.fields.String(metadata={"description": "`<id>|<secret>`; shown once"})
    abilities = ma.fields.List(ma.fields.String())
    expires_at = UtcDateTime(allow_none=True)


class ElevateArgs(Schema):
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=1024))
    abilities = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(policies.ELEVATED)),
        required=True,
        validate=ma.validate.Length(min=1),
    )


class TokenInfoSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    last_used_at = UtcDateTime(allow_none=True)
    expires_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()


class UserSchema(Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    name = ma.fields.String()
    is_admin = ma.fields.Boolean()
    created_at = UtcDateTime()
    abilities = ma.fields.List(ma.fields.String(), metadata={"description": "Of the calling token"})
    token = ma.fields.Nested(TokenInfoSchema, metadata={"description": "The calling token"})


class StreamTokenSchema(Schema):
    stream_token = ma.fields.String(metadata={"description": "Pass as `?streamToken=` to a stream"})
    expires_at = UtcDateTime()
