"""A real single-node Slurm cluster for tests: Debian's slurm-wlm and munge, started by the test and stopped after.

Installs the packages when they are missing and the test runs as root (they install in seconds); where that
cannot be done, `SlurmUnavailable` says why and the test is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


class SlurmUnavailable(Exception):
    pass


def _run(*command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, **kwargs)


def _install() -> None:
    if all(shutil.which(tool) for tool in ("sbatch", "slurmctld", "slurmd", "munged")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable("Slurm is not installed, and installing it needs root and apt-get")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
    if subprocess.run(install, capture_output=True, env=environment).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=environment)
        result = subprocess.run(install, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            raise SlurmUnavailable(f"apt-get could not install slurm-wlm and munge: {result.stderr[-300:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_munge() -> None:
    if _run("munge", "-n", check=False).returncode == 0:
        return  # a munged is already answering
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    Path("/var/log/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/var/log/munge", "munge", "munge")
    _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
    for _ in range(50):
        if _run("munge", "-n", check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise SlurmUnavailable("munged did not start")


@contextmanager
def slurm_cluster():
    """Yields the environment (SLURM_CONF set) in which sbatch talks to a fresh one-node cluster."""
    _install()
    _start_munge()
    host = socket.gethostname().split(".")[0]
    root = Path(tempfile.mkdtemp(prefix="medrecipe-slurm-"))
    root.chmod(0o755)
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    memory_mb = min(16000, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 2000)
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=medrecipe-test
SlurmctldHost={host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
DependencyParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName={host} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    environment = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [
        subprocess.Popen(["slurmctld", "-D", "-c", "-f", str(conf)], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["slurmd", "-D", "-c", "-f", str(conf)], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        for _ in range(150):
            state = _run("sinfo", "-h", "-o", "%T", check=False, env=environment)
            if state.returncode == 0 and state.stdout.strip() in ("idle", "mixed"):
                break
            time.sleep(0.2)
        else:
            log = (root / "slurmctld.log").read_text(errors="replace")[-800:] if (root / "slurmctld.log").exists() else ""
            raise SlurmUnavailable(f"the Slurm node did not become idle: {log}")
        yield environment
    finally:
        # A job still running when the daemons stop leaves its slurmstepd processes behind (found running an hour
        # after a test that left one queued): cancel every job first and give the steps time to end.
        _run("scancel", "--partition", "debug", check=False, env=environment)
        for _ in range(100):
            queued = _run("squeue", "-h", check=False, env=environment)
            if queued.returncode != 0 or not queued.stdout.strip():
                break
            time.sleep(0.2)
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(root, ignore_errors=True)
