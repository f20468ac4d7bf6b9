"""The data stage on Ray, with a real Ray started by the run itself (in a temporary folder of its own): a rank whose
process is killed mid-request."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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
        shutil.rmtree(temp, ignore_errors=True)


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
        assert f"pid {ranks[0]}) was killed by SIGKILL" in err and "while it ran a task" in err, err[-3000:]
        assert "data stage segment-0 failed" in err and "rerun the same command to resume" in " ".join(err.split())
        resumed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        unbroken = subprocess.run(run_data(tmp_path / "unbroken", environment), cwd=tmp_path, env=environment,
                                  capture_output=True, text=True, timeout=600)
        assert unbroken.returncode == 0, unbroken.stderr[-3000:]
    assert len(output(tmp_path / "killed")) == 3
    assert output(tmp_path / "killed") == output(tmp_path / "unbroken")

