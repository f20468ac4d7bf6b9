"""A data stage fails, rather than waits forever, when one of its worker processes ends during the run.

datatrove's LocalPipelineExecutor hands tasks to a multiprocess Pool and waits on `imap_unordered`. When a worker
ends in the middle of a task (the out-of-memory killer's SIGKILL, earlyoom's SIGTERM, a crash in native code), the
Pool starts another worker but never gives the task back, and the stage waits forever without a word.

The Pool's own worker-handler thread notices every ending at once (it waits on the workers' sentinels) and reaps the
worker in `Pool._join_exited_workers`, which it alone calls, and only while the Pool runs: `Pool.terminate` stops
that thread before it ends the workers. datatrove's Pool sets no `maxtasksperchild`, so no worker ends on its own
while the Pool runs. So, while the executor runs, a worker that method reaps (the one it found ended, not one looked
at apart: see `_reaping`) is reported: that interrupts the main thread with a signal, whose handler raises
`WorkerLost` there. The executor then terminates its Pool, and the stage fails like any other; finished tasks are
kept for the rerun.

The Pool's result-handler thread ends in the same silence when it cannot unpickle what a worker sent back (an
exception whose class cannot be rebuilt from its args: medrecipe's own are tested to be, a library's may not be):
that thread dies, and the stage waits forever at 100 % CPU. It is watched the same way.

On Ray the same Pool runs each rank inside a Ray actor (datatrove/executor/ray.py:74-82, RankWorker.run_for_rank,
with no time limit unless the executor is given `time=`, ray.py:129), where a worker killed mid-task left the
driver in `ray.wait` (ray.py:236, :545) forever. There `pools_fail_when_a_worker_dies` fails the Pool's outstanding
jobs from the same reaping: the actor's task raises WorkerLost, which the driver reports (run/data_ray.py).
"""

from __future__ import annotations

import contextlib
import signal
import threading

INTERRUPT = signal.SIGUSR1


class WorkerLost(Exception):
    """A worker process ended during a task; the task will not complete."""


def _lost(worker) -> str:
    """What became of a stage's worker: whether it held a task then is not known here (an idle one waits for its next
    task), so the message does not say it did."""
    return f"{worker.name} (pid {worker.pid}) {_ending(worker.exitcode)} while the stage ran"


def _ending(exitcode: int) -> str:
    if exitcode >= 0:
        return f"exited with code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:  # a real-time signal has no name
        return f"was killed by signal {-exitcode}"
    return f"was killed by {name}" + (" (the out-of-memory killer sends it when memory runs out)" if name == "SIGKILL" else "")


def _reaping(reap, pool: list) -> tuple[bool, list]:
    """Pool._join_exited_workers (`reap`) on `pool`, and the workers it reaped: those it found ended are the ones told
    of, as they are the ones it replaces. Asking each worker's exitcode before it, as this did, raced it: a killed
    worker's sentinel fires as its files close, before the kernel lets it be waited for, so the question could find it
    running and the reap just after find it ended and start another in its place, its task lost (a CI run hung so)."""
    before = list(pool)
    cleaned = reap(pool)
    return cleaned, [worker for worker in before if worker not in pool]


_RLOCK_WAIT = 5.0  # seconds: a live worker holding the lock gets its stop sentinel and lets go well within this


def _finishing_without_the_dead(help_stuff_finish):
    """Pool._help_stuff_finish, run as a Pool is terminated, that goes on when a killed worker holds the task queue's
    read lock: a worker waits for its next task holding it, and one killed then (an idle one) never lets go, so
    terminate waited forever (found by review). A multiprocessing Lock has no owner: it is released for the dead."""
    def helping(inqueue, task_handler, size):
        inqueue._rlock.acquire(timeout=_RLOCK_WAIT)  # taken, or held by a worker that died: released either way
        inqueue._rlock.release()
        return help_stuff_finish(inqueue, task_handler, size)
    return helping


@contextlib.contextmanager
def failing_when_a_worker_dies():
    """Run the body (the executor) in the main thread; a Pool worker's ending raises WorkerLost in it."""
    from multiprocess.pool import Pool

    main = threading.get_ident()
    lost: list[str] = []
    armed = True
    reap = Pool.__dict__["_join_exited_workers"]
    handle_results = Pool.__dict__["_handle_results"]
    help_stuff_finish = Pool.__dict__["_help_stuff_finish"]

    def interrupted(signum, frame):
        if armed:  # not once the body is over: a stage that finished is not failed
            raise WorkerLost(lost[0])

    def reporting_reap(pool: list) -> bool:
        cleaned, ended = _reaping(reap.__func__, pool)
        if ended and armed and not lost:
            lost.append(_lost(ended[0]))
            signal.pthread_kill(main, INTERRUPT)
        return cleaned

    def reporting_results(*args) -> None:
        try:
            handle_results.__func__(*args)
        except Exception as error:
            if armed and not lost:
                lost.append(f"a task's result could not be read back from its worker ({type(error).__name__}: {error})")
                signal.pthread_kill(main, INTERRUPT)
            raise

    previous = signal.signal(INTERRUPT, interrupted)
    Pool._join_exited_workers = staticmethod(reporting_reap)
    Pool._handle_results = staticmethod(reporting_results)
    Pool._help_stuff_finish = staticmethod(_finishing_without_the_dead(help_stuff_finish.__func__))
    try:
        yield
    finally:
        armed = False
        Pool._join_exited_workers = reap
        Pool._handle_results = handle_results
        Pool._help_stuff_finish = help_stuff_finish
        signal.signal(INTERRUPT, previous)


_pools_watched = False


def _fail(job, error: Exception) -> None:
    """End a Pool's outstanding job (apply, map, starmap: an ApplyResult; imap: an iterator) with `error`."""
    if hasattr(job, "_event"):  # ApplyResult and MapResult: get() raises _value once _event is set
        job._success, job._value = False, error
        job._cache.pop(job._job, None)
        job._event.set()
    else:  # IMapIterator and IMapUnorderedIterator: next() raises the item it is given
        job._set(job._index, (False, error))


def pools_fail_when_a_worker_dies() -> None:
    """From now on, in this process, a multiprocess Pool whose worker ends while the Pool runs fails the jobs it has
    outstanding with WorkerLost, rather than leave them waiting forever; for a process where no thread can be
    interrupted (a Ray actor's, which runs the task's method where Ray chooses: run/data_ray.py). The same reaping
    as above: the Pool's worker-handler thread, in `_join_exited_workers`, with the Pool's job cache, which
    `_handle_workers` is given (multiprocess/pool.py: Pool.__init__ starts it with `self._cache`). A worker that
    ends after the Pool was closed, or that ends with code 0 by `maxtasksperchild`, took no job with it. The Pool is
    then left without that worker, to be ended."""
    global _pools_watched
    if _pools_watched:
        return
    _pools_watched = True
    from multiprocess.pool import RUN, Pool

    handle_workers = Pool.__dict__["_handle_workers"].__func__
    reap = Pool.__dict__["_join_exited_workers"].__func__
    handler = threading.local()  # each Pool has its own worker-handler thread

    def watched_handle_workers(cls, cache, taskqueue, ctx, Process, processes, pool, inqueue, outqueue, initializer,
                               initargs, maxtasksperchild, *rest):
        handler.cache, handler.renews = cache, maxtasksperchild is not None
        return handle_workers(cls, cache, taskqueue, ctx, Process, processes, pool, inqueue, outqueue, initializer,
                              initargs, maxtasksperchild, *rest)

    def reporting_reap(pool: list) -> bool:
        cache = getattr(handler, "cache", None)
        renews = getattr(handler, "renews", False)
        cleaned, ended = _reaping(reap, pool)
        ended = [worker for worker in ended if not (renews and worker.exitcode == 0)]
        if ended and cache and getattr(threading.current_thread(), "_state", None) == RUN:
            lost = WorkerLost(_lost(ended[0]))
            for job in list(cache.values()):
                _fail(job, lost)
            # No worker is started in its place (Pool._maintain_pool starts one when this returns True): every job has
            # failed, and the Pool's owner ends it (datatrove's `with Pool`). One forked from a Ray actor, which runs
            # threads, could hang on a lock a thread held as it forked, and Pool.terminate then waits for it forever
            # (a test run hung so, its replacement worker left running).
            return False
        return cleaned

    Pool._handle_workers = classmethod(watched_handle_workers)
    Pool._join_exited_workers = staticmethod(reporting_reap)
    Pool._help_stuff_finish = staticmethod(_finishing_without_the_dead(Pool.__dict__["_help_stuff_finish"].__func__))
