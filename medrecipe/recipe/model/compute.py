"""The recipe's `compute` section: GPUs, nodes, the data executor, Slurm and Ray."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .basics import PositiveInt, SbatchOption, SbatchValue, ScriptWord, SlurmName, Strict


class Slurm(Strict):
    """Slurm job settings (datatrove's Slurm executor, sbatch launches of training)."""

    partition: SlurmName | None = Field(None, description="Partition.")
    account: SlurmName | None = Field(None, description="Account to charge.")
    qos: SlurmName | None = Field(None, description="Quality of service.")
    time: str = Field("24:00:00", pattern=r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$", description="Time limit per job, [D-]HH:MM:SS.")
    cpus_per_task: PositiveInt = Field(1, description="CPUs per data task.")
    mem_per_cpu_gb: PositiveInt = Field(2, description="Memory per CPU in GB (whole GB: Slurm's --mem-per-cpu=<n>G).")
    venv: ScriptWord | None = Field(None, description="Virtual environment the jobs activate (must have medrecipe installed).")
    container: ScriptWord | None = Field(None, description="Container image the jobs run in (srun --container-image).")
    sbatch_args: dict[SbatchOption, SbatchValue] = Field(
        default_factory=dict, description="Further #SBATCH options, e.g. {constraint: h100} (no spaces or quotes in a value)."


    )


class Ray(Strict):
    """Ray cluster to run on."""

    address: str | None = Field(None, description="Cluster address; unset: a local Ray is started.")


class Compute(Strict):
    """Where the work runs."""

    gpus_per_node: PositiveInt = Field(8, description="GPUs per node for training and evaluation.")
    nodes: PositiveInt = Field(1, description="Nodes for training.")
    executor: Literal["local", "ray", "slurm"] = Field("local", description="Executor of the data stage.")
    workers: PositiveInt | None = Field(None, description="Data tasks run at once. Default: the CPU count (local).")
    tasks: PositiveInt | None = Field(
        None, description="Shards the data stage is split into (part of its content key). Default: 8; raise it for large corpora."
    )
    slurm: Slurm = Field({}, description="Slurm settings.")
    ray: Ray = Field({}, description="Ray settings.")
