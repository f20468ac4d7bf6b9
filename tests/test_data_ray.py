"""The data stage on Ray, with a real Ray started by the run itself (in a temporary folder of its own): a rank whose
process is killed mid-request, and the endpoint keys that Ray's workers must have."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

from .conftest import REPO
from .generate_runs import HoldingServer, write_generate
from .openai_stub import StubServer
from .ray_cluster import stop_head
from .test_data_llm_steps import write_jsonl
from .test_data_stage import descendants, running

pytest.importorskip("ray")


class SameAnswers(HoldingServer):
    """The holding stub whose answer depends on the prompt alone (the stub's counts its calls into its answer), so a
    resumed run and an unbroken one write the same records."""

    def answer(self, prompt: str) -> str:
        super().answer(prompt)
        return f"<think>\nAbout {prompt[-12:]}.\n</think>\n\nThe answer is \\boxed{{A}}."


@contextlib.contextmanager
def ray_environment():
    """This environment for a run that starts Ray itself: Ray's files in a short temporary folder of its own (its
    socket paths must stay short; another Ray on this machine is neither joined nor disturbed)."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    try:
        yield {**environment, "RAY_TMPDIR": temp, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    finally:
        end_processes_of(f"RAY_TMPDIR={temp}")
        shutil.rmtree(temp, ignore_errors=True)


def end_processes_of(marker: str) -> None:
    """SIGKILL what still runs with `marker` (a variable naming a folder of this test's own) in its environment: a
    process that outlived its parent is no longer found below the run."""
    for process in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if marker.encode() in (process / "environ").read_bytes().split(b"\0") and int(process.name) != os.getpid():
                os.kill(int(process.name), signal.SIGKILL)


def run_data(folder: Path, environment: dict, *extra: str) -> list[str]:
    return [sys.executable, "-m", "medrecipe.cli.main", "run", str(folder / "gen.yaml"), "--stage", "data", "--out",
            str(folder / "build"), *extra]


def output(folder: Path) -> list[dict]:
    work = Layout((folder / "build").resolve(), load_recipe(folder / "gen.yaml").recipe).work_dir("data")
    return [row for file in sorted((work / "output").glob("*.parquet")) for row in pq.read_table(file).to_pylist()]


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


def rank_processes(driver: int) -> list[int]:
    """The processes that run a rank under `driver`: forked by datatrove's Pool (ray.py:74) in a RankWorker actor,
    whose title they share."""
    found = descendants(driver)
    return [pid for pid in found if cmdline(pid).startswith("ray::RankWorker")
            and cmdline(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])).startswith("ray::RankWorker")]


def test_a_rank_process_killed_on_ray_fails_the_stage_and_a_rerun_resumes(tmp_path):
    """Found by review: datatrove's Ray actor runs a rank in a multiprocess Pool, which replaces a killed worker but
    never gives its task back, and the driver waited in ray.wait forever without a word. Killed (SIGKILL, as the
    out-of-memory killer does) while its request is in flight, the rank now fails the stage, which says so and that
    a rerun resumes; the rerun writes what an unbroken run writes."""
    questions = [{"q": f"Which option is right for case {i}?", "options": ["first", "second"], "answer": "A"} for i in range(3)]
    for folder in ("killed", "unbroken"):
        (tmp_path / folder).mkdir()
        write_jsonl(tmp_path / folder / "questions.jsonl", questions)
    with SameAnswers(holds=lambda prompt: True) as server, ray_environment() as environment:
        for folder in ("killed", "unbroken"):
            write_generate(tmp_path / folder, server.url)
        command = run_data(tmp_path / "killed", environment, "--executor", "ray", "--workers", "1")
        driver = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
        started: set[int] = set()
        try:
            deadline = time.monotonic() + 300
            while not (server.requests and (ranks := rank_processes(driver.pid))) and time.monotonic() < deadline:
                assert driver.poll() is None, driver.communicate()
                time.sleep(0.2)
            assert server.requests and ranks, "a rank's request is in flight"
            started = descendants(driver.pid)
            os.kill(ranks[0], signal.SIGKILL)
            _, err = driver.communicate(timeout=300)  # before the fix: no end
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
            server.release.set()
            for pid in started:  # the run's Ray ends with it; what would not is ended here
                if running(pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
        assert driver.returncode == 2 and "Traceback" not in err, err[-3000:]
        assert f"pid {ranks[0]}) was killed by SIGKILL" in err and "while the stage ran" in err, err[-3000:]
        assert "data stage segment-0 failed" in err and "rerun the same command to resume" in " ".join(err.split())
        resumed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        unbroken = subprocess.run(run_data(tmp_path / "unbroken", environment), cwd=tmp_path, env=environment,
                                  capture_output=True, text=True, timeout=600)
        assert unbroken.returncode == 0, unbroken.stderr[-3000:]
    assert len(output(tmp_path / "killed")) == 3
    assert output(tmp_path / "killed") == output(tmp_path / "unbroken")


JUDGE = """
name: ray-judge
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources:
    - {{name: answers, path: answers.jsonl, fields: {{prompt: q, response: r, answer: ref}}}}
  steps:
    - {{type: judge_filter, model: stub, endpoint: "{url}", api_key_env: STUB_KEY}}
compute: {{tasks: 1}}
"""


@contextlib.contextmanager
def ray_head(environment: dict):
    """A one-node Ray cluster (`ray start --head`) started with `environment`, in a temporary folder of its own; yields
    (its GCS address, that folder, kept for the caller to read and remove); stopped after with every process it
    started."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=2", "--num-gpus=0", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             f"--temp-dir={temp}"], env={**environment, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": temp},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        said = []
        for line in head.stdout:  # --block: it says so once the head runs, then waits
            said.append(line)
            if "Ray runtime started" in line:
                break
        assert head.poll() is None, "".join(said)[-3000:]
        yield f"127.0.0.1:{port}", Path(temp)
    finally:
        stop_head(head)
        head.stdout.close()
        end_processes_of(f"RAY_TMPDIR={temp}")


def holding(root: Path, secret: bytes) -> list[Path]:
    """The files under `root` that hold `secret`."""
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()
            and secret in path.read_bytes()]


def test_an_endpoint_key_missing_on_the_ray_cluster_is_refused_before_any_task_runs(tmp_path):
    """Found by review: Ray's workers take their node's environment (`ray start`), not the driver's, so a key exported
    only where `medrecipe run` ran never reached them: every request went out with the stand-in key, the endpoint
    refused it, and the failure said a rerun would resume. The key is not sent through Ray (its runtime-env agent logs
    a runtime_env whole); a node without it is found up front and the remedy named. A cluster started with the key
    runs the stage with it; the key is in no file of the build or of Ray's session, logs included."""
    key = "sk-ray-" + os.urandom(8).hex()
    write_jsonl(tmp_path / "answers.jsonl", [{"q": f"Treat patient {i}?", "r": ("GOOD " if i % 2 else "weak ") + str(i),
                                              "ref": "reference"} for i in range(4)])
    bare = {name: value for name, value in os.environ.items() if name not in ("RAY_ADDRESS", "STUB_KEY")}
    # on 127.0.0.1 alone, without Ray's token (Ray 2.60 turns it on for a new cluster, from a file other runs share)
    bare.update(PYTHONPATH=str(REPO), RAY_AUTH_MODE="disabled")
    with StubServer(key=key) as server:
        (tmp_path / "judge.yaml").write_text(JUDGE.format(url=server.url))
        for cluster_has_key in (False, True):
            with ray_head({**bare, **({"STUB_KEY": key} if cluster_has_key else {})}) as (address, ray_files):
                out = tmp_path / f"build-{cluster_has_key}"
                result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(tmp_path / "judge.yaml"),
                                         "--stage", "data", "--out", str(out), "--executor", "ray", "--set",
                                         f"compute.ray.address={address}"], cwd=tmp_path, env={**bare, "STUB_KEY": key},
                                        capture_output=True, text=True, timeout=600)
                if cluster_has_key:
                    assert result.returncode == 0, result.stderr[-3000:]
                else:
                    told = " ".join(result.stderr.split())
                    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
                    assert re.search(r"\$STUB_KEY, the key of an LLM step's endpoint, is not set on the Ray node \S+, where", told), told
                    assert "export STUB_KEY=... before `ray start` on every node of the Ray cluster" in told, told
                    assert not server.requests, "refused before any task ran"
            # after the cluster stopped, its logs complete
            assert not holding(ray_files, key.encode()), "Ray's session files"
            assert not holding(out, key.encode())
            shutil.rmtree(ray_files, ignore_errors=True)
        assert server.requests and all(authorization == f"Bearer {key}" for _, _, authorization in server.seen)
    assert json.loads(next((tmp_path / "build-True").glob("data/*/stats.json")).read_text())["output"]["records"] == 2
