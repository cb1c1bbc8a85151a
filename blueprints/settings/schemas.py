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


def _type_checked(param):
    def validate(value):
        if message := settings.type_error(param, value):
            raise ma.ValidationError(message)

    return validate


class _ServerParamsUpdate(Schema):
    """Registry keys are dotted (`runs.maxConcurrent`), and marshmallow reads a dot in an attribute
    name as a path into nested dicts; so fields get dot-free attribute names, mapped back here."""

    @ma.post_load
    def registry_keys(self, data, **kwargs):
        return {self.fields[attribute].data_key: value for attribute, value in data.items()}


# The PUT body: one optional member per registry key, `null` resetting it. Each value is checked
# strictly against its param's type here, so unknown keys and wrong types come back in one 422.
ServerParamsUpdateArgs = _ServerParamsUpdate.from_dict(
    {
        param.key.replace(".", "__"): ma.fields.Raw(
            data_key=param.key,
            allow_none=True,
            validate=_type_checked(param),
            metadata={
                "type": _OPENAPI_TYPES[param.type],
                "nullable": True,
                "description": param.description + (" (secret: write-only)" if param.secret else ""),
                **({"minimum": param.minimum} if param.minimum is not None else {}),
                **({"minLength": 1} if param.secret else {}),
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
