"""Settings bodies: server params (typed registry) and agent providers."""
import marshmallow as ma

from runner import providers, settings
from runner.api import Schema, StrictBoolean, UtcDateTime

_OPENAPI_TYPES = {"boolean": "boolean", "integer": "integer", "string": "string"}


class ServerParamSchema(Schema):
    key = ma.fields.String()
    type = ma.fields.String(metadata={"enum": sorted(_OPENAPI_TYPES)})
    value = ma.fields.Raw(allow_none=True, metadata={"description": "Secrets show '••••' when set"})
    default = ma.fields.Raw(allow_none=True)
    secret = ma.fields.Boolean()
    is_set = ma.fields.Boolean()
    source = ma.fields.String(metadata={"enum": ["stored", "environment", "default"]})
    description = ma.fields.String()


class ServerParamListSchema(Schema):
    data = ma.fields.List(ma.fields.Nested(ServerParamSchema))


# The PUT body: one optional member per registry key, `null` resetting it. The keys are the
# registry's own (dotted camelCase). Types are checked strictly by runner.settings.update.
ServerParamsUpdateArgs = Schema.from_dict(
    {
        param.key: ma.fields.Raw(
            allow_none=True,
            metadata={
                "type": _OPENAPI_TYPES[param.type],
                "nullable": True,
                "description": param.description + (" (secret: write-only)" if param.secret else ""),
            },
        )
        for param in settings.REGISTRY.values()
    },
    name="ServerParamsUpdateArgs",
)


class ProviderSchema(Schema):
    id = ma.fields.Integer()
    key = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String()
    enabled = ma.fields.Boolean()
    available = ma.fields.Function(
        providers.is_available,
        metadata={"type": "boolean", "description": "Its executable is found on this server"},
    )
    command = ma.fields.List(ma.fields.String())
    models = ma.fields.List(ma.fields.String())
    updated_at = UtcDateTime()


class ProviderUpdateArgs(Schema):
    enabled = StrictBoolean()
    command = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=4096)),
        validate=ma.validate.Length(max=100),
        metadata={"description": "argv list; `{prompt}` and `{model}` are replaced per run"},
    )
    models = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=200)), validate=ma.validate.Length(max=100)
    )
