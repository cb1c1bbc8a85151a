"""Scripted model servers on loopback for the real agent CLIs: Anthropic Messages (claude) and
OpenAI Responses (codex), both streaming. A script is a list of turns; the turn answered is the number
of tool results the request already carries, so the CLI's retries and side requests cannot shift it.
Each turn is a callable `turn(workdir) -> ("text", str) | ("tool", name, input)`.
"""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORKDIR = re.compile(r"Primary working directory: ([^\s\"\\]+)|<cwd>([^<]+)</cwd>")


class ScriptedModelServer:
    def __init__(self, script, flavor):
        self.script, self.flavor = script, flavor
        self.requests = []  # (path, body) of every request
        handler = type("Handler", (_Handler,), {"owner": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def turn_for(self, body):
        raw = json.dumps(body)
        found = WORKDIR.search(raw)
        workdir = (found.group(1) or found.group(2)) if found else None
        if self.flavor == "anthropic":
            done = sum(
                1 for message in body.get("messages", []) if isinstance(message.get("content"), list)
                for block in message["content"] if block.get("type") == "tool_result"
            )
        else:
            done = sum(1 for item in body.get("input", []) if item.get("type") == "function_call_output")
        if done >= len(self.script):
            return ("text", "Nothing more to do.")
        return self.script[done](workdir)

    @property
    def main_requests(self):
        """Requests that offered tools (the agent's own turns, not side queries)."""
        return [body for path, body in self.requests if body.get("tools")]


class _Handler(BaseHTTPRequestHandler):
    owner = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._json(404, {"error": {"type": "not_found", "message": self.path}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        self.owner.requests.append((self.path, body))
        path = self.path.split("?")[0]
        if path.endswith("/messages/count_tokens"):
            return self._json(200, {"input_tokens": 100})
        if path.endswith("/messages"):
            return self._anthropic(body)
        if path.endswith("/responses"):
            return self._openai(body)
        return self._json(404, {"error": {"type": "not_found", "message": self.path}})

    def _json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, frames):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for name, data in frames:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True

    # -- Anthropic Messages -------------------------------------------------------------------------
    def _anthropic(self, body):
        turn = self.owner.turn_for(body) if body.get("tools") else ("text", "ok")
        model = body.get("model", "claude-test")
        if turn[0] == "text":
            block, stop = {"type": "text", "text": turn[1]}, "end_turn"
        else:
            block, stop = {"type": "tool_use", "id": f"toolu_{len(self.owner.requests):04d}", "name": turn[1],
                           "input": turn[2]}, "tool_use"
        usage = {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        message = {"id": f"msg_{len(self.owner.requests):04d}", "type": "message", "role": "assistant", "model": model,
                   "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return self._json(200, message)
        start = dict(message, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
        if block["type"] == "text":
            first = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            first = dict(block, input={})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        self._sse([
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": first}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ])

    # -- OpenAI Responses ----------------------------------------------------------------------------
    def _openai(self, body):
        turn = self.owner.turn_for(body) if body.get("tools") else ("text", "ok")
        n = len(self.owner.requests)
        response = {"id": f"resp_{n:04d}", "object": "response", "created_at": 0, "model": body.get("model"),
                    "status": "in_progress", "output": []}
        if turn[0] == "text":
            item = {"type": "message", "id": f"msg_{n:04d}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": turn[1], "annotations": []}]}
        elif turn[1] == "apply_patch" and isinstance(turn[2], str):
            item = {"type": "custom_tool_call", "id": f"ctc_{n:04d}", "call_id": f"call_{n:04d}",
                    "name": "apply_patch", "input": turn[2], "status": "completed"}
        else:
            item = {"type": "function_call", "id": f"fc_{n:04d}", "call_id": f"call_{n:04d}", "name": turn[1],
                    "arguments": json.dumps(turn[2]), "status": "completed"}
        usage = {"input_tokens": 150, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 40,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 190}
        frames = [("response.created", {"type": "response.created", "response": response}),
                  ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item})]
        if item["type"] == "message":
            frames.append(("response.output_text.delta", {"type": "response.output_text.delta", "item_id": item["id"],
                                                          "output_index": 0, "content_index": 0, "delta": turn[1]}))
        frames += [
            ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed",
                                    "response": dict(response, status="completed", output=[item], usage=usage)}),
        ]
        self._sse(frames)
