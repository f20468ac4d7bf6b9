"""A local data stage fails, rather than waits forever, when one of its worker processes ends during the run.

datatrove's LocalPipelineExecutor hands tasks to a multiprocess Pool and waits on `imap_unordered`. When a worker
ends in the middle of a task (the out-of-memory killer's SIGKILL, earlyoom's SIGTERM, a crash in native code), the
Pool starts another worker but never gives the task back, and the stage waits forever without a word.

The Pool's own worker-handler thread notices every ending at once (it waits on the workers' sentinels) and reaps the
worker in `Pool._join_exited_workers`, which it alone calls, and only while the Pool runs: `Pool.terminate` stops
that thread before it ends the workers. datatrove's Pool sets no `maxtasksperchild`, so no worker ends on its own
while the Pool runs. So, while the executor runs, that method first reports any worker it finds ended: it interrupts
the main thread with a signal, whose handler raises `WorkerLost` there. The executor then terminates its Pool, and
the stage fails like any other; finished tasks are kept for the rerun.

The Pool's result-handler thread ends in the same silence when it cannot unpickle what a worker sent back (an
exception whose class cannot be rebuilt from its args: medrecipe's own are tested to be, a library's may not be):
that thread dies, and the stage waits forever at 100 % CPU. It is watched the same way.
"""

from __future__ import annotations

import contextlib
import signal
import threading

INTERRUPT = signal.SIGUSR1


class WorkerLost(Exception):
    """A worker process ended during a task; the task will not complete."""


def _ending(exitcode: int) -> str:
    if exitcode >= 0:
        return f"exited with code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:  # a real-time signal has no name
        return f"was killed by signal {-exitcode}"
    return f"was killed by {name}" + (" (the out-of-memory killer sends it when memory runs out)" if name == "SIGKILL" else "")


@contextlib.contextmanager
def failing_when_a_worker_dies():
    """Run the body (the executor) in the main thread; a Pool worker's ending raises WorkerLost in it."""
    from multiprocess.pool import Pool

    main = threading.get_ident()
    lost: list[str] = []
    armed = True
    reap = Pool.__dict__["_join_exited_workers"]
    handle_results = Pool.__dict__["_handle_results"]

    def interrupted(signum, frame):
        if armed:  # not once the body is over: a stage that finished is not failed
            raise WorkerLost(lost[0])

    def reporting_reap(pool: list) -> bool:
        ended = [worker for worker in pool if worker.exitcode is not None]
        if ended and armed and not lost:
            lost.append(f"{ended[0].name} (pid {ended[0].pid}) {_ending(ended[0].exitcode)} while it ran a task")
            signal.pthread_kill(main, INTERRUPT)
        return reap.__func__(pool)

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
    try:
        yield
    finally:
        armed = False
        Pool._join_exited_workers = reap
        Pool._handle_results = handle_results
        signal.signal(INTERRUPT, previous)
