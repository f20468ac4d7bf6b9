"""The data stage on Ray: connecting to (or starting) Ray, datatrove's RayPipelineExecutor made to fail rather than
wait forever when a rank's process dies, and the check that each endpoint's key is in the workers' environment.

Cited at the installed versions: datatrove 0.10.1 (datatrove/executor/ray.py) and Ray 2.60.0.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from datatrove.executor import RayPipelineExecutor

from ..errors import UserError
from .lost_workers import WorkerLost, pools_fail_when_a_worker_dies


def start(address: str | None, workers: int | None) -> None:
    """Connect to the cluster at `address`, else to $RAY_ADDRESS's or start Ray here (ray.init's own order)."""
    import ray

    if ray.is_initialized():
        return
    if address and address.startswith(("http://", "https://")):
        # RL and evaluation jobs are submitted to a dashboard; datatrove's Ray executor drives the cluster
        # from this process, which needs the cluster's GCS address (Ray refuses an HTTP one).
        raise UserError(f"compute.ray.address is a dashboard address ({address}), where jobs are submitted; the data "
                        "stage's Ray executor connects to the cluster itself",
                        "run the data stage on a node of the cluster (--set compute.ray.address=auto), or give the "
                        "cluster's GCS address for this stage: --set compute.ray.address=head:6379")
    ray.init(address=address) if address else ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False)


class RayStageExecutor(RayPipelineExecutor):
    """datatrove's Ray executor, whose rank that loses its process fails the stage.

    Each Ray task runs its ranks in a multiprocess Pool inside a RankWorker actor (ray.py:74-82); a Pool worker killed
    mid-task (the out-of-memory killer's choice: the process doing the work) is replaced, its task never given back,
    and the driver waits in ray.wait forever (ray.py:236, :545; no `time=`, so no timeout, ray.py:129). The actor
    receives this executor as its task's argument (ray.py:509, :190), unpickled there before the Pool is made: that
    arms the actor's Pools (lost_workers.pools_fail_when_a_worker_dies), whose lost job now fails the task with
    WorkerLost. This is so on a remote cluster too: it runs where the rank runs, as the pipeline's medrecipe blocks
    do. datatrove counts an application error as not to be retried (ray.py:277-279) and returns once every task has
    ended; `run` then raises the first WorkerLost, read from the failed task.
    """

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        import ray

        if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:  # in a RankWorker
            pools_fail_when_a_worker_dies()

    def run(self) -> None:
        from datatrove.executor import ray as datatrove_ray

        lost: list[str] = []
        manager = datatrove_ray.RayTaskManager

        class Reading(manager):
            def task_done(self, task):  # ray.py:240: it reads each ended task's result, and logs its error at DEBUG
                import ray

                try:
                    ray.get(task, timeout=0)
                except WorkerLost as error:  # Ray's RayTaskError(WorkerLost) is one; its cause is the actor's
                    lost.append(str(getattr(error, "cause", error)))
                except Exception:
                    pass
                return super().task_done(task)

        datatrove_ray.RayTaskManager = Reading  # run() builds its manager by this name (ray.py:530)
        try:
            super().run()
        finally:
            datatrove_ray.RayTaskManager = manager
        if lost:
            raise WorkerLost(lost[0])


def _digests(names: list[str], salt: bytes) -> dict[str, str | None]:
    """Run on a node: each variable's keyed digest there (the salt is new each time: the digest tells nothing of the
    key), or None where it is unset."""
    return {name: _digest(os.environ.get(name), salt) for name in names}


def _digest(value: str | None, salt: bytes) -> str | None:
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest() if value else None


def check_keys_reach_workers(content: dict) -> None:
    """Each LLM step's key variable (api_key_env) as the workers on every node of the cluster have it: set, and the
    same as here where it is set here.

    Ray's workers take the environment of their node's raylet (`ray start`), not the driver's, and the key is not
    sent with the tasks: Ray's runtime_env `env_vars` would carry it, but Ray's runtime-env agent writes a runtime
    env whole into its session log (ray/_private/runtime_env/agent/runtime_env_agent.py:543, "Creating runtime env:
    {serialized_env}", runtime_env_agent.log) and an argument of a task lies in its object store, which spills to
    disk. So a node without the key, or with another, is found here before any task runs, with the remedy."""
    names = sorted({block["args"]["api_key_env"] for stage in content["stages"] for block in stage["pipeline"]
                    if block["block"].endswith("InferenceStep") and block["args"].get("endpoint")
                    and block["args"].get("api_key_env")})
    if not names:
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    salt = secrets.token_bytes(16)
    nodes = [node for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")]
    probe = ray.remote(num_cpus=0)(_digests)
    answers = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                       .remote(names, salt) for node in nodes])
    for node, there in zip(nodes, answers):
        where = f"on the Ray node {node['NodeManagerAddress']}"
        for name in names:
            here = _digest(os.environ.get(name), salt)
            if there[name] is None:
                raise UserError(f"${name}, the key of an LLM step's endpoint, is not set {where}, where the step's tasks "
                                "run", _remedy(f"export {name}=..."))
            if here is not None and there[name] != here:
                raise UserError(f"${name}, the key of an LLM step's endpoint, is another key {where} than here",
                                _remedy(f"export {name} with this key"))


def _remedy(export: str) -> str:
    return (f"{export} before `ray start` on every node of the Ray cluster, then restart it (its workers take that "
            "environment, not this shell's; medrecipe does not send keys through Ray, which would write them into its "
            "logs), or run the data stage with --executor local or slurm")
