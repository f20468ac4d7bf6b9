"""Starting training and evaluation jobs: a process on this machine, a Slurm batch job with one task per node, or
a job on a running Ray cluster.

Shared by the SFT, RL and eval runners, with the check that their compiled inputs exist. A dry run prints the exact command (or batch script) and starts nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..errors import NotRunnableHere, UserError
from ..recipe import LoadedRecipe
from ..recipe.model import Recipe
from .console import run_logged


@dataclass
class Job:
    """One launch: the command, the environment it adds, and where it runs from."""

    what: str  # e.g. "Axolotl SFT", for messages
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    cwd: Path | None = None

    def shell(self) -> str:
        assignments = [f"{name}={shlex.quote(value)}" for name, value in sorted(self.env.items())]
        return " ".join(assignments + [shlex.join(self.command)])


def compiled(loaded: LoadedRecipe, root: Path, relative: str) -> Path:
    """The compiled file `relative` in the build folder `root`; a clear error when it was never compiled."""
    path = root / relative
    if not path.is_file():
        raise UserError(f"{path} is missing", f"compile first: medrecipe compile {loaded.file} --out {root}")
    return path


def visible_gpus(python: Path) -> int:
    """CUDA devices the tool environment's torch sees (0 on a CPU build or a machine without GPUs)."""
    probe = subprocess.run(
        [str(python), "-c", "import torch; print(torch.cuda.device_count())"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return 0
    return int(probe.stdout.strip().splitlines()[-1])


def machine_gpus() -> int | None:
    """NVIDIA GPUs on this machine, asked before any tool environment exists: those `nvidia-smi -L` lists, as
    CUDA_VISIBLE_DEVICES narrows them (CUDA stops reading that list at its first invalid entry, such as -1). None
    where nvidia-smi cannot say: not there (a container given CUDA without it, a ROCm machine), or failing."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    count = sum(line.startswith("GPU ") for line in listed.stdout.splitlines())
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is None:
        return count
    valid = 0
    for entry in chosen.split(","):
        if not entry.strip() or entry.strip().startswith("-"):
            break
        valid += 1
    return min(count, valid)


@contextlib.contextmanager
def stage_lock(stage: str, log: Path):
    """One local run of a stage in its folder at a time: a second is refused while the first runs (found by review: a
    second run, from another terminal or beside a trainer left running, started its tool in the same folder, where
    both resume from and write the same checkpoints and the model is collected from under the other).
    The lock is the stage's log, held open; yields its descriptor, which the tool holds too (run_local), so that a
    medrecipe killed with -9 still holds it while its tool runs on."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another run of the {stage} stage is running in {log.parent} (it holds {log})",
                            "wait for it to end (or end it), then rerun this command") from None
        except OSError:  # a file system without locks (Lustre without -o flock, NFS without lockd): run as before
            pass
        yield held.fileno()


def run_local(job: Job, hint: str, stage: str, log: Path, verbose: bool = False, lock: int | None = None) -> list[str]:
    """Run in the foreground, the tool's output in `log` and a progress line on the console; a failure raises with
    `hint`. Returns what the tool said it left out of training, for the stage's notes. `lock`: stage_lock's descriptor,
    which the tool holds too."""
    code, notices = run_logged(job.command, job.env, job.cwd, stage, log, verbose, () if lock is None else (lock,))
    if code != 0:
        raise UserError(f"{job.what} failed (exit code {code}); its log: {log}", hint)
    return notices


def show(job: Job) -> None:
    click.echo(f"# {job.what}" + (f" (in {job.cwd})" if job.cwd else ""))
    click.echo(job.shell())


def slurm_script(recipe: Recipe, name: str, nodes: int, gpus_per_node: int, log_dir: Path, body: list[str]) -> str:
    """An sbatch script: one task per node (each starts its node's processes), the recipe's Slurm settings. A job
    of 0 GPUs per node asks for none. Its log goes to `log_dir`: the stage's folder, never the folder a tool writes
    the model into (SFT moves every file there into the published model)."""
    slurm = recipe.compute.slurm
    options = {"job-name": f"{recipe.name}-{name}", "nodes": str(nodes), "ntasks-per-node": "1"}
    if gpus_per_node:
        options["gpus-per-node"] = str(gpus_per_node)
    options |= {"time": slurm.time, "output": str(log_dir / f"slurm-{name}-%j.out")}
    for key, value in (("partition", slurm.partition), ("account", slurm.account), ("qos", slurm.qos)):
        if value:
            options[key] = value
    options.update(slurm.sbatch_args)
    lines = ["#!/bin/bash", *(sbatch_line(key, value) for key, value in options.items())]
    lines += [
        "set -euo pipefail",
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        "export MASTER_PORT=29500",
        *body,
    ]
    return "\n".join(lines) + "\n"


_SBATCH_SAFE = re.compile(r"[A-Za-z0-9_.,:=/@%+-]*")


def sbatch_line(option: str, value: str) -> str:
    """One `#SBATCH --option=value` line. sbatch reads these lines itself, where no shell quoting applies: a value
    must be one safe word (the recipe's Slurm fields are held to the same alphabet at validation)."""
    if not _SBATCH_SAFE.fullmatch(option) or not _SBATCH_SAFE.fullmatch(value):
        raise UserError(f"#SBATCH --{option}={value!r} holds characters a batch script cannot carry safely",
                        "use letters, digits and _.,:=/@%+- only (a build folder without spaces, say)")
    return f"#SBATCH --{option}={value}"


def srun(recipe: Recipe) -> str:
    """The srun prefix that starts one task per node (in the recipe's container, if any)."""
    container = recipe.compute.slurm.container
    return "srun --kill-on-bad-exit=1" + (f" --container-image={shlex.quote(container)}" if container else "")


def submit_stage(stage: str, script: Path, text: str, work: Path, outputs: list, dry_run: bool):
    """Write a stage's batch script and submit it, or print it (`--dry-run`)."""
    from .stages import StageResult

    if dry_run:
        click.echo(f"# {script}\n{text}\n# sbatch {script}")
        return StageResult(stage, "dry-run", outputs)
    work.mkdir(parents=True, exist_ok=True)
    script.write_text(text, encoding="utf-8")
    job_id = submit(script)
    return StageResult(stage, "submitted", outputs, notes=[f"Slurm job {job_id}: {script}; log in {script.parent}"])


def submit(script: Path) -> str:
    """Submit a batch script; returns the job id."""
    if shutil.which("sbatch") is None:
        raise NotRunnableHere("sbatch is not on PATH: this machine cannot submit Slurm jobs", "run on a Slurm login node, or use --launcher local")
    result = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"sbatch rejected {script}: {result.stderr.strip()}", "check compute.slurm in the recipe")
    return result.stdout.strip().split(";")[0]


def recipe_ray_address(loaded: LoadedRecipe) -> str | None:
    """`compute.ray.address`. Ray sends $RAY_AUTH_TOKEN to the cluster it connects to: with a token in the
    environment, an address written in the recipe (by its author, who may not be you) is refused; one given on the
    command line (--set) is yours."""
    address, at = loaded.recipe.compute.ray.address, ("compute", "ray", "address")
    if address and os.environ.get("RAY_AUTH_TOKEN"):
        if not loaded.set_on_command_line(at):
            raise UserError(f"{loaded.tree.position(at)}: compute.ray.address ({address}) comes from the recipe, and Ray would "
                            "send your $RAY_AUTH_TOKEN to it", "give the cluster's address yourself: --set compute.ray.address=..., "
                            "or $RAY_ADDRESS with the recipe's address removed (--set compute.ray.address=~)")
    return address


def ray_dashboard(loaded: LoadedRecipe) -> str:
    """The dashboard address of the Ray cluster jobs are submitted to: `compute.ray.address`, else $RAY_ADDRESS."""
    address = recipe_ray_address(loaded) or os.environ.get("RAY_ADDRESS")
    if not address:
        raise UserError("--launcher ray needs a running Ray cluster",
                        "set compute.ray.address (or $RAY_ADDRESS) to its dashboard address, e.g. http://head:8265")
    return address


def ray_cli() -> str:
    """Ray's command line from medrecipe's own environment (its `ray` extra), else from PATH."""
    found = shutil.which("ray", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise NotRunnableHere("the ray command is not installed: this machine cannot submit Ray jobs",
                              'pip install "medrecipe[ray]", or use --launcher local or --launcher slurm')
    return found


def submit_ray(stage: str, script: Path, text: str, address: str, submission_id: str, gpus: int, work: Path,
               outputs: list, dry_run: bool):
    """Write a stage's job script and submit it to the Ray cluster at `address` without waiting (`ray job submit
    --no-wait`), the entrypoint holding `gpus` GPUs of one node; or print both (`--dry-run`). The script is read
    from the storage the cluster's nodes share, as a Slurm job's is. Ray's token, when the cluster asks for one,
    reaches `ray` from this environment ($RAY_AUTH_TOKEN) and is never written."""
    from .stages import StageResult

    command = ["ray", "job", "submit", f"--address={address}", f"--submission-id={submission_id}",
               "--entrypoint-num-cpus=1", f"--entrypoint-num-gpus={gpus}", "--no-wait", "--", "bash", str(script)]
    if dry_run:
        click.echo(f"# {script}\n{text}\n# {shlex.join(command)}")
        return StageResult(stage, "dry-run", outputs)
    command[0] = ray_cli()
    work.mkdir(parents=True, exist_ok=True)
    script.write_text(text, encoding="utf-8")
    # Ray's job client takes $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS, over --address (ray/dashboard/utils.py,
    # get_address_for_submission_client): the job goes where this says only with those set to the same address.
    environment = {**os.environ, "RAY_ADDRESS": address}
    environment.pop("RAY_API_SERVER_ADDRESS", None)
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise UserError(f"Ray refused the {stage} job: {(result.stderr or result.stdout).strip()[-2000:]}",
                        f"check that a Ray cluster's dashboard answers at {address} (compute.ray.address or $RAY_ADDRESS)")
    follow = f"ray job logs --address={address} --follow {submission_id}"
    return StageResult(stage, "submitted", outputs, notes=[f"Ray job {submission_id}: {script}; follow it with: {follow}"])
