"""Shared fixtures: the repository layout, running the CLI in-process, writing recipe files."""

from __future__ import annotations

import contextlib
import io
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """Run `medrecipe ARGS` in this process, as the console script does (its exit code, its streams)."""
    from medrecipe.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["medrecipe", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write(tmp_path, monkeypatch):
    """write("name.yaml", yaml_text) -> path, in a temp folder that is also the working directory."""
    monkeypatch.chdir(tmp_path)

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


_ENV_BUILDS: dict = {}  # environment name -> Future of its interpreter


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: only the tests that will run count
def pytest_collection_modifyitems(session, config, items):
    """The tool environments (Axolotl, OpenRLHF, lighteval) take minutes to build on a fresh machine: when any
    collected test needs one, all are built in the background from the start, and the tests that need them
    run last, so the builds overlap with the rest of the suite."""
    needing = [item for item in items if "tool_python" in getattr(item, "fixturenames", ())]
    if not needing or config.option.collectonly:
        return
    chosen = set(needing)
    items[:] = [item for item in items if item not in chosen] + needing
    from concurrent.futures import ThreadPoolExecutor

    from medrecipe.envs import tools

    pool = ThreadPoolExecutor(len(tools.ENVIRONMENTS), thread_name_prefix="tool-env")
    for name in tools.ENVIRONMENTS:
        _ENV_BUILDS[name] = pool.submit(tools.setup, name, log=lambda line: None)
    pool.shutdown(wait=False)


@pytest.fixture(scope="session")
def tool_python():
    """tool_python("sft" | "rl" | "eval") -> the interpreter of that pinned environment, built once per run."""
    from medrecipe.envs import tools

    def get(name: str) -> Path:
        if name in _ENV_BUILDS:
            return _ENV_BUILDS[name].result()
        return tools.setup(name, log=lambda line: print(line, file=sys.stderr))

    return get


@pytest.fixture
def local_hub(tmp_path):
    """A local Hugging Face Hub on 127.0.0.1 (tests/hub_server.py), started for the test and stopped after it.
    The token `hf_test` belongs to the user `tester`; tests may add tokens to `local_hub.tokens`."""
    from .hub_server import LocalHub

    with LocalHub(tmp_path / "hub-storage", {"hf_test": "tester"}) as hub:
        yield hub


FIXTURE_MODELS = ["Qwen/Qwen3-8B", "Qwen/Qwen3-4B", "meta-llama/Meta-Llama-3-8B", "mistralai/Mistral-7B-v0.1",
                  "HuggingFaceTB/SmolLM2-135M-Instruct", "Qwen/Qwen3-235B-A22B", "Qwen/Qwen2.5-32B-Instruct",
                  "sentence-transformers/all-MiniLM-L6-v2", "TsinghuaC3I/Llama-3-8B-UltraMedical"]
GATED_MODELS = {"meta-llama/Meta-Llama-3-8B"}  # Meta's Llama 3 licence must be accepted on the Hub


@pytest.fixture(scope="session")
def fixture_hub(tmp_path_factory):
    """A local Hub holding every dataset of tests/fixtures/hub/ in its real layout and a stub of every model the
    shipped recipes name; `hf_test` (user tester) has accepted the gated licences, `hf_other` (user other) has not.
    `fixture_hub.home` is a Hugging Face home for client processes."""
    from . import hub_fixtures
    from .hub_server import LocalHub

    root = tmp_path_factory.mktemp("fixture-hub")
    with LocalHub(root / "storage", {"hf_test": "tester", "hf_other": "other"}) as server:
        for repo in hub_fixtures.repos():
            hub_fixtures.seed(server, repo)
        for model in FIXTURE_MODELS:
            server.seed("model", model, {"main": {"config.json": b"{}", "tokenizer_config.json": b"{}"}}, gated=model in GATED_MODELS)
            if model in GATED_MODELS:
                server.repo("model", model).granted.add("tester")
        server.home = root / "home"
        yield server


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name: state, parent pid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
