"""The recipe's `compute` section: GPUs, nodes, the data executor, Slurm and Ray."""

from typing import Annotated, Literal

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
    max_array_size: int = Field(
        1001, ge=1, le=4_000_001,
        description="The cluster's MaxArraySize (`scontrol show config | grep MaxArraySize`; Slurm's default 1001): a "
        "data stage of more tasks is submitted as several array jobs of at most this many tasks.",
    )
    sbatch_args: dict[SbatchOption, SbatchValue] = Field(
        {}, description="Further #SBATCH options, e.g. {constraint: h100} (no spaces or quotes in a value)."


    )


class Ray(Strict):
    """Ray cluster to run on."""

    address: str | None = Field(
        None,
        description="The running cluster: its dashboard address (http://head:8265), where `--launcher ray` submits the "
        "RL and evaluation jobs (unset: $RAY_ADDRESS); for the data stage's `ray` executor, its GCS address (head:6379, "
        "or auto on a cluster node). Unset, the data stage starts a local Ray. Ray sends $RAY_AUTH_TOKEN to this "
        "address: with a token set, an address written in a recipe file is refused; give yours with --set.",
    )


class GPU(Strict):
    """The GPUs the training and evaluation stages run on: `medrecipe plan` turns FLOPs into GPU-hours and
    bytes into a memory verdict with them. Nothing compiled depends on it."""

    type: Literal["H100-80GB", "H200-141GB", "A100-80GB", "A100-40GB", "L40S-48GB"] = Field(
        "H100-80GB", description="GPU model (SXM parts for H100, H200 and A100)."
    )
    memory_gib: float | None = Field(
        None, gt=0.0, le=10_000.0, description="Memory per GPU in GiB. Default: the type's (80, 141, 80, 40, 48)."
    )
    utilization: float | None = Field(
        None, gt=0.0, le=1.0,
        description="Fraction of the peak dense BF16 throughput training reaches (MFU). Default: 0.40 on H100, H200 "
        "and L40S, 0.50 on A100 (public large-run figures; measure your own).",
    )
    generation_utilization: float | None = Field(
        None, gt=0.0, le=1.0,
        description="Fraction of the peak that generation (RL rollouts, evaluation) reaches. Default: 0.15, an "
        "assumption (decoding is bound by memory bandwidth).",
    )


# Bounded: each data task is a process, a log and a completion marker, and a few billion of them exhaust the machine.
TaskCount = Annotated[int, Field(gt=0, le=100_000)]


class Compute(Strict):
    """Where the work runs."""

    gpus_per_node: PositiveInt = Field(8, description="GPUs per node for training and evaluation.")
    nodes: PositiveInt = Field(1, description="Nodes for training.")
    executor: Literal["local", "ray", "slurm"] = Field("local", description="Executor of the data stage.")
    workers: TaskCount | None = Field(None, description="Data tasks run at once. Default: the CPU count (local, Ray), as many as "
                                           "Slurm allows (Slurm).")
    tasks: TaskCount | None = Field(
        None, description="Shards the data stage is split into (part of its content key). Default: 8; raise it for large corpora.",
    )
    gpu: GPU = Field({}, description="The GPUs, for `plan`'s GPU-hours and memory verdicts.")
    slurm: Slurm = Field({}, description="Slurm settings.")
    ray: Ray = Field({}, description="Ray settings.")
