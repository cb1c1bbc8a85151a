"""Health and readiness bodies."""
import marshmallow as ma

from runner.api import Schema


class HealthSchema(Schema):
    status = ma.fields.String()


class ReadySchema(Schema):
    status = ma.fields.String()
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
