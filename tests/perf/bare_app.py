"""The baseline of tests/perf/test_bench_api.py: a bare Flask app, served like Runner is."""
from flask import Flask

app = Flask("bare")


@app.get("/api/health")
def health():
    return {"status": "ok"}
