"""A local OpenAI-compatible chat endpoint on 127.0.0.1 standing in for HealthBench's judge model.

It grades each rubric item by a rule on the item's text alone (so a test knows the scores whatever the model
wrote): the items of tests/fixtures/benchmarks/healthbench that mention emergency services, reassurance, or
aspirin for a child are met, the others are not. The first request gets a malformed reply, which the grader
must retry. Every request is recorded (path, Authorization header, JSON body).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MET = ("emergency services", "Reassures", "aspirin to the child")


class JudgeServer:
    def __init__(self):
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
                    first = len(server.requests) == 1
                item = body["messages"][0]["content"].split("# Rubric item\n", 1)[1].split("\n", 1)[0]
                verdict = {"explanation": "graded by rule", "criteria_met": any(word in item for word in MET)}
                content = "I think it is met?" if first else "```json\n" + json.dumps(verdict) + "\n```"
                reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

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
