"""A small OpenAI-compatible chat server on 127.0.0.1 for the LLM steps' tests: deterministic answers.

- domain classification prompts: "Medical" when the question mentions a patient, else "Maths." (a synonym the
  recipe has to map);
- judge prompts: "Score: 9" when the graded answer contains GOOD, else "Score: 4";
- anything else is a generation: the prompt's first line names how many wrong answers precede the right
  one ("[wrong=2]"; none: 0); the server answers \\boxed{B} that many times for that prompt, then \\boxed{A}.

`failing` requests are answered 500 first (an outage), `not_found` ones 404, and prompts `refused(prompt)` names 400
(too long). A
generation's reasoning comes in the content as "<think>\n...\n</think>\n\n" unless `reasoning` says otherwise:
"reasoning_content" (vLLM's reasoning parser, DeepSeek's API) or "reasoning" (OpenRouter) return it apart from the
content, "unspaced" in the content as "<think>...</think>\n" (am-deepseek-r1's layout). A refused key is quoted back
in the error, as LiteLLM's proxy does.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def send_json(handler: BaseHTTPRequestHandler, payload: dict, status: int = 200) -> None:
    """Answer a request with `payload` as JSON (the local OpenAI-compatible servers of the tests)."""
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class StubServer:
    """On `host` (127.0.0.1; another loopback address is not localhost to datatrove, which then speaks to it as to a
    hosted API), answering only requests that carry `key` when one is given; `seen` lists (method, path,
    Authorization header) of every request."""

    def __init__(self, host: str = "127.0.0.1", key: str | None = None):
        self.calls: Counter = Counter()
        self.requests: list[dict] = []
        self.seen: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self.failing = 0  # requests still to answer with a 500
        self.not_found = 0  # requests still to answer with a 404 (no such model): an error no retry helps
        self.refused = lambda prompt: False  # prompts answered with a 400
        self.reasoning: str | None = None  # where a generation's reasoning goes (see the module's docstring)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def refused(self) -> bool:
                authorization = self.headers.get("Authorization")
                with stub.lock:
                    stub.seen.append((self.command, self.path, authorization))
                if key is not None and authorization != f"Bearer {key}":
                    presented = (authorization or "").removeprefix("Bearer ")
                    send_json(self, {"error": {"message": f"Authentication Error, Received API Key = {presented}",
                                               "type": "invalid_request_error", "code": "invalid_api_key"}}, 401)
                    return True
                return False

            def do_GET(self):
                if self.refused():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    send_json(self, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
                else:
                    send_json(self, {"error": "not found"}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                if self.refused():
                    return
                with stub.lock:
                    stub.requests.append(request)
                    failing, stub.failing = stub.failing > 0, max(stub.failing - 1, 0)
                    not_found, stub.not_found = stub.not_found > 0, max(stub.not_found - 1, 0)
                if not_found:
                    send_json(self, {"error": {"message": "The model does not exist", "type": "invalid_request_error",
                                               "code": "model_not_found"}}, 404)
                    return
                if failing:
                    send_json(self, {"error": {"message": "The server had an error", "type": "server_error"}}, 500)
                    return
                if stub.refused(request["messages"][-1]["content"]):
                    send_json(self, {"error": {"message": "This model's maximum context length is 8 tokens",
                                               "type": "invalid_request_error", "code": "context_length_exceeded"}}, 400)
                    return
                message = {"role": "assistant", "content": stub.answer(request["messages"][-1]["content"])}
                thought = re.match(r"<think>\n(.*)\n</think>\n\n(.*)", message["content"], re.DOTALL)
                if thought and stub.reasoning == "unspaced":
                    message["content"] = f"<think>{thought[1]}</think>\n{thought[2]}"
                elif thought and stub.reasoning:
                    message.update({"content": thought[2], stub.reasoning: thought[1]})
                send_json(self, {
                    "id": "stub", "object": "chat.completion", "model": request.get("model", "stub"),
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                })

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def answer(self, prompt: str) -> str:
        if prompt.startswith("Classify the domain"):
            return "Medical" if "patient" in prompt.lower() else "Maths."
        if prompt.startswith("You are grading"):
            graded = prompt.split("Answer to grade:", 1)[1]
            return "Score: 9" if "GOOD" in graded else "Score: 4"
        marked = re.search(r"\[wrong=(\d+)\]", prompt)
        wrong = int(marked.group(1)) if marked else 0
        with self.lock:
            self.calls[prompt] += 1
            call = self.calls[prompt]
        letter = "B" if call <= wrong else "A"
        return f"<think>\nLet me think about call {call}.\n</think>\n\nThe answer is \\boxed{{{letter}}}."

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
