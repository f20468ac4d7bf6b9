"""A local OpenAI-compatible chat endpoint on 127.0.0.1 standing in for HealthBench's judge model.

It grades each rubric item by a rule on the item's text alone (so a test knows the scores whatever the model
wrote): the items of tests/fixtures/benchmarks/healthbench that mention emergency services, reassurance, or
aspirin for a child are met, the others are not. The first request gets a malformed reply, which the grader
must retry. Every request is recorded (path, Authorization header, JSON body). GET /v1/models lists its models
to the right key, as OpenAI's API and vLLM's server do (preflight asks for it); each such request is recorded
in `listings` (path, Authorization header).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .openai_stub import send_json

MET = ("emergency services", "Reassures", "aspirin to the child")


class JudgeServer:
    def __init__(self, key: str | None = None, models: tuple[str, ...] = ("rubric-judge",)):
        """`key`: the API key GET /v1/models requires (None: any); `models`: what it lists."""
        self.requests: list[dict] = []
        self.listings: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
                    first = len(server.requests) == 1
                item = body["messages"][-1]["content"].split("# Rubric item\n", 1)[1].split("\n", 1)[0]
                verdict = {"explanation": "graded by rule", "criteria_met": any(word in item for word in MET)}
                content = "I think it is met?" if first else "```json\n" + json.dumps(verdict) + "\n```"
                send_json(self, {"choices": [{"message": {"role": "assistant", "content": content}}]})

            def do_GET(self):  # the model listing preflight asks for
                with server._lock:
                    server.listings.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                if self.path.rstrip("/") != "/v1/models":
                    self.send_error(404)
                    return
                if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
                    send_json(self, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, 401)
                else:
                    send_json(self, {"object": "list", "data": [{"id": name, "object": "model"} for name in models]})

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
