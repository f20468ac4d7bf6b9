"""A generate step's data stage against the OpenAI-compatible stub (tests/openai_stub.py): its recipe, a stub that
holds chosen requests, and a run killed while one is in flight, for the tests that resume it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

from .openai_stub import StubServer

# One prompt-only source, `questions.jsonl` (columns q, options, answer), completed by one generate step drawing
# `samples` responses; `fields` and `options` add to the source's mapping and the step's settings (", id: id").
GENERATE = """
name: generated
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: questions, path: questions.jsonl, kind: prompts, fields: {{prompt: q, options: options, answer: answer{fields}}}}}
  steps:
    - {{type: generate, model: stub, endpoint: "{url}", samples: {samples}, max_samples: {samples}{options}}}
compute: {{tasks: 1, workers: 1}}
"""
RUN = [sys.executable, "-m", "medrecipe.cli.main", "run", "gen.yaml", "--stage", "data", "--out", "build"]


def write_generate(folder, url: str, fields: str = "", options: str = "", samples: int = 1) -> None:
    """gen.yaml in `folder`: GENERATE asking the stub at `url`."""
    (folder / "gen.yaml").write_text(GENERATE.format(url=url, fields=fields, options=options, samples=samples))


class HoldingServer(StubServer):
    """The stub, holding each generation that `holds(prompt)` names (asked once its answer is made) until released."""

    def __init__(self, holds: Callable[[str], bool]):
        super().__init__()
        self.holds, self.release = holds, threading.Event()

    def answer(self, prompt: str) -> str:
        text = super().answer(prompt)
        if self.holds(prompt):
            self.release.wait(120)
        return text


def killed_mid_request(folder, server: HoldingServer, in_flight: Callable[[], bool]) -> None:
    """`medrecipe run gen.yaml --stage data` started in `folder` and killed (SIGKILL, its whole process group) once
    `in_flight()` holds, 2 s later so that the answers before it reach datatrove's checkpoint and request cache; then
    the server's held requests are released."""
    started = subprocess.Popen(RUN, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not in_flight() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)
    os.killpg(started.pid, signal.SIGKILL)
    started.wait()
    server.release.set()


def rerun(folder) -> subprocess.CompletedProcess:
    """The same command again, which resumes it."""
    return subprocess.run(RUN, cwd=folder, capture_output=True, text=True, timeout=300)
