"""A real one-node Ray cluster for tests: `ray start --head --block` from medrecipe's own environment (the `ray`
extra), its dashboard (where jobs are submitted) on 127.0.0.1 and token authentication on (`RAY_AUTH_MODE=token`);
started by the test and stopped after, with every process it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path


# The job that shows the cluster ready. Under load a submission can time out here after the cluster took it, and the
# next one is then a second job: tests list their jobs without this entrypoint's.
READINESS_PROBE = "true"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def ray_cluster(num_cpus: int = 2):
    """Yields the dashboard's address and what a client adds to its environment to be let in ($RAY_AUTH_MODE and
    $RAY_AUTH_TOKEN). The head inherits this process's environment: a job sees the cluster's environment, not the
    submitting shell's."""
    ray = Path(sys.executable).with_name("ray")
    token = secrets.token_hex(16)
    dashboard = f"http://127.0.0.1:{_free_port()}"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    client = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    environment = {**os.environ, **client, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={_free_port()}", f"--num-cpus={num_cpus}", "--num-gpus=0",
         "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard.rsplit(':', 1)[1]}",
         "--include-dashboard=true", f"--temp-dir={temp}"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if head.poll() is not None:
                raise RuntimeError(f"ray start exited with {head.returncode}: {head.stdout.read()[-3000:]}")
            # Ready when it takes a job: the dashboard answers before the node's agent, which runs the jobs, has joined
            # ("No available agent to submit job" on a loaded machine).
            request = urllib.request.Request(f"{dashboard}/api/jobs/", data=json.dumps({"entrypoint": READINESS_PROBE}).encode(),
                                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        _remove_when_done(dashboard, token, json.load(answer)["submission_id"], deadline)
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray cluster took no job within 180 s")
            time.sleep(1)
        yield dashboard, client
    finally:
        stop_head(head)
        shutil.rmtree(temp, ignore_errors=True)


def stop_head(head: subprocess.Popen) -> None:
    """End a `ray start --head --block` process (started in a session of its own): the head stops the cluster's
    processes as it exits; one that does not exit within a minute has its process group killed."""
    head.terminate()
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def _remove_when_done(dashboard: str, token: str, job: str, deadline: float) -> None:
    """Delete the job that showed the cluster ready, once it has ended, so that the tests see only theirs."""
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(urllib.request.Request(f"{dashboard}/api/jobs/{job}", headers=headers), timeout=5) as answer:
            if json.load(answer)["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                break
        time.sleep(0.5)
    urllib.request.urlopen(urllib.request.Request(f"{dashboard}/api/jobs/{job}", headers=headers, method="DELETE"), timeout=5).close()
