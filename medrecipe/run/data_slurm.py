"""The data stage's Slurm jobs: datatrove's SlurmPipelineExecutor, held to what a recipe's run needs of it.

Each was found by review on a one-node Slurm:
- a stage waits for every array job of the stage before it: datatrove splits a stage of more tasks than the
  cluster's MaxArraySize (compute.slurm.max_array_size) into arrays, chains them `afterany` and hands the next stage
  the last one's id alone, so a failed task in an earlier array let the later stages run on what was left, and the
  run reported success with records missing;
- a job whose dependency failed is cancelled (--kill-on-invalid-dep): Slurm's default keeps it pending forever, and
  the run waited with it;
- a recipe without a partition or qos sends none (datatrove wrote a bare `#SBATCH --partition`, which swallowed the
  next line, and `--qos=normal` where the cluster may have no such qos);
- a build folder a batch script cannot carry (a space, a quote) is refused before anything is submitted;
- the jobs a run submits are kept beside the stage's logs, and a rerun while they are queued is refused: it
  submitted the same tasks again, two jobs writing one file.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from datatrove.executor import SlurmPipelineExecutor

from ..errors import UserError
from ..recipe import LoadedRecipe
from .jobs import sbatch_line

JOBS_FILE = "submitted_jobs.json"


class DataStageJobs(SlurmPipelineExecutor):
    """One data stage's Slurm array jobs (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        self.job_ids: list[str] = []  # every array job this stage submitted (datatrove keeps the last in job_id)
        self.depends_job_ids: list[str] = []
        super().__init__(*args, **kwargs)

    @property
    def job_id(self):
        return self._job_id

    @job_id.setter
    def job_id(self, value) -> None:
        self._job_id = value
        if value not in (None, -1):
            self.job_ids.append(str(value))

    @property
    def dependency(self) -> str:
        """afterok on every array job of the stage before; afterany on this stage's own array before (datatrove's)."""
        parts = [f"afterok:{':'.join(self.depends_job_ids)}"] if self.depends_job_ids else []
        if self.job_id and self.job_id != -1:
            parts.append(f"afterany:{self.job_id}")
        return ",".join(parts)

    def launch_job(self) -> None:
        if self.depends is not None:
            if not self.depends.job_id:
                self.depends.launch_job()
            self.depends_job_ids = list(self.depends.job_ids)
            self.depends = None
        try:
            super().launch_job()
        finally:  # those submitted before an sbatch that failed too (a submit limit): a rerun must find them
            if self.job_ids:
                with self.logging_dir.open(JOBS_FILE, "w") as handle:
                    json.dump(self.job_ids, handle)

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = {name: value for name, value in super().get_sbatch_args(max_array).items()
                if value or name not in ("partition", "qos")}
        args["kill-on-invalid-dep"] = "yes"
        return args


def stage_jobs(pipeline: list, tasks: int, workers: int | None, logging_dir: str, name: str, loaded: LoadedRecipe,
               depends: DataStageJobs | None) -> DataStageJobs:
    """A stage's jobs, refused before anything is submitted where a batch script cannot carry the build's folder or an
    earlier run's jobs of the stage are still queued. Without `workers`, Slurm runs as many tasks at once as it can
    (the submitting machine's CPU count throttled a 1,000-task array to its 4 CPUs)."""
    slurm = loaded.recipe.compute.slurm
    sbatch_line("output", logging_dir)  # raises, with its hint, where the folder is no safe word
    queued = _still_queued(Path(logging_dir))
    if queued:
        raise UserError(f"data stage {name}: Slurm jobs {', '.join(queued)} of an earlier run of it are still queued or running",
                        f"wait for them (squeue -j {','.join(queued)}) or cancel them (scancel {' '.join(queued)}), then rerun")
    sbatch_args = dict(slurm.sbatch_args)
    if slurm.account:
        sbatch_args.setdefault("account", slurm.account)
    return DataStageJobs(
        pipeline, tasks=tasks, workers=workers or -1, time=slurm.time, partition=slurm.partition or "",
        cpus_per_task=slurm.cpus_per_task, mem_per_cpu_gb=slurm.mem_per_cpu_gb, qos=slurm.qos or "",
        venv_path=str(Path(slurm.venv) / "bin" / "activate") if slurm.venv else None, sbatch_args=sbatch_args or None,
        srun_args={"container-image": slurm.container} if slurm.container else None, logging_dir=logging_dir,
        job_name=f"{loaded.recipe.name}-{name}", depends=depends, mail_type="NONE", max_array_size=slurm.max_array_size,
    )


def batch_script(tasks: int, workers: int | None, logging_dir: str, name: str, loaded: LoadedRecipe, after: str | None) -> str:
    """The batch script of the stage's tasks still to run, as datatrove writes it when it submits them (`--dry-run`),
    and its dependency on the stage `after`, whose job ids exist once that is submitted."""
    jobs = stage_jobs([], tasks, workers, logging_dir, name, loaded, None)
    ranks = jobs.get_incomplete_ranks()
    if not ranks:
        return f"# {name}: every task complete, nothing to submit"
    srun = " ".join(f"--{key}={value}" for key, value in (jobs.srun_args or {}).items())
    # datatrove makes the folder Slurm will write its logs to as it writes the script; a dry run leaves none behind.
    logs = Path(jobs.slurm_logs_folder).absolute()
    made = [folder for folder in (logs, *logs.parents) if not folder.exists()]
    try:
        script = jobs.get_launch_file_contents(
            jobs.get_sbatch_args(min(len(ranks), jobs.max_array_size)),
            f"srun {srun} -l -n {jobs.nodes_per_task} launch_pickled_pipeline {jobs.logging_dir.resolve_paths('executor.pik')}")
    finally:
        for folder in made:  # deepest first; one something else has written to since stays
            try:
                folder.rmdir()
            except OSError:
                break
    return (f"# sbatch --dependency=afterok:<the jobs of {after}>\n" if after else "") + script


def _still_queued(logging_dir: Path) -> list[str]:
    """The jobs an earlier run submitted for this stage that Slurm still holds."""
    try:
        submitted = json.loads((logging_dir / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return []
    try:
        listed = subprocess.run(["squeue", "-h", "-j", ",".join(submitted), "-o", "%F"], capture_output=True, text=True)
    except OSError:  # no Slurm here: sbatch, which submits, will say so
        return []
    held = set(listed.stdout.split())  # array jobs by their array's id (%F)
    return [job for job in submitted if job in held]


def wait_for_stages(stages: list[dict], work: Path, recipe: str, poll: float = 5.0) -> None:
    """Block until every stage's tasks are complete; Slurm runs the chain of dependent jobs on its own. Jobs that
    leave the queue without completing their tasks failed (a later stage's jobs, whose dependency failed, are
    cancelled with them): their logs say why."""
    names = ",".join(f"{recipe}-{stage['name']}" for stage in stages)
    while (failed := next((s["name"] for s in stages if not complete(work / "logs" / s["name"], s["tasks"])), None)) is not None:
        queued = subprocess.run(["squeue", "-h", "-n", names, "-o", "%i"], capture_output=True, text=True).stdout.strip()
        if not queued and not complete(work / "logs" / failed, next(s["tasks"] for s in stages if s["name"] == failed)):
            raise UserError(f"the Slurm jobs of data stage {failed} ended without completing it",
                            f"see {work / 'logs' / failed / 'slurm_logs'}; rerun the same command to resume")
        time.sleep(poll)


def complete(logging_dir: Path, tasks: int) -> bool:
    return len(list((logging_dir / "completions").glob("*"))) >= tasks
