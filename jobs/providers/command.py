"""A configured argv as an agent provider: stdout lines are `log` events, the exit code decides success."""
from jobs.providers.base import Adapter


class CommandAdapter(Adapter):
    kind = "command"
