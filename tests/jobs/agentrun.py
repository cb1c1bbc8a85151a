"""Running an agent CLI to the end in the tests, through the real AgentProcess and an adapter."""
import os

from jobs.providers import AgentProcess


def base_env(home):
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def run_agent(adapter, argv, cwd, env, time_limit=120):
    """Run an agent to the end through AgentProcess; return (events, exit code, stderr)."""
    events = []
    with AgentProcess(argv, cwd, env, time_limit=time_limit) as process:
        for line in process.lines():
            events += adapter.parse_line(line)
        code = process.wait()
    return events, code, process.stderr_tail


def of_type(events, event_type):
    return [item for item in events if item["event_type"] == event_type]
