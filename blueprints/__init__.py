"""HTTP layer: one package per resource group (`routes.py` + `schemas.py`), registered in order."""
import importlib

# Explicit and ordered: the OpenAPI document lists groups in this order.
MODULES = (
    "blueprints.health.routes",
    "blueprints.auth.routes",
    "blueprints.projects.routes",
    "blueprints.knowledge.routes",
    "blueprints.snapshots.routes",
    "blueprints.runs.routes",
    "blueprints.settings.routes",
    "blueprints.devices.routes",
    "blueprints.notifications.routes",
)


def register_blueprints(api):
    for name in MODULES:
        api.register_blueprint(importlib.import_module(name).blp)
