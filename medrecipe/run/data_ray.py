"""The data stage on Ray: connecting to (or starting) Ray, and datatrove's RayPipelineExecutor made to fail rather
than wait forever when a rank's process dies.

Cited at the installed versions: datatrove 0.10.1 (datatrove/executor/ray.py) and Ray 2.60.0.
"""

from __future__ import annotations

import os

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

