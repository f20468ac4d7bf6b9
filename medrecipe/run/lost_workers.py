"""A local data stage fails, rather than waits forever, when one of its worker processes dies.

datatrove's LocalPipelineExecutor hands tasks to a multiprocess Pool and waits on `imap_unordered`. When a worker
dies in the middle of a task (the out-of-memory killer's SIGKILL, a crash in native code), the Pool starts another
worker but never gives the task back, so the stage waits forever without a word. A watcher thread looks at the
process's children while the executor runs; when one ends other than as the Pool ends its workers (exit 0, or the
SIGTERM of `Pool.terminate`), it interrupts the main thread with a signal, whose handler raises `WorkerLost` there.
The executor then closes its Pool, and the stage fails like any other: finished tasks are kept for the rerun.
"""

from __future__ import annotations

import contextlib
import signal
import threading

INTERRUPT = signal.SIGUSR1
POLL_SECONDS = 0.5


class WorkerLost(Exception):
    """A worker process died during a task; the task will not complete."""


def _ending(exitcode: int) -> str:
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"was killed by {name}" + (" (the out-of-memory killer sends it when memory runs out)"
                                          if name == "SIGKILL" else "")
    return f"exited with code {exitcode}"


@contextlib.contextmanager
def failing_when_a_worker_dies():
    """Run the body (the executor) in the main thread; a worker's death raises WorkerLost in it."""
    import multiprocess

    lost: list[str] = []
    main = threading.get_ident()
    stop = threading.Event()

    def interrupted(signum, frame):
        raise WorkerLost(lost[0])

    def watch() -> None:
        seen: set = set()
        while not stop.wait(POLL_SECONDS):
            seen.update(multiprocess.active_children())
            for process in seen:
                if process.exitcode not in (None, 0, -signal.SIGTERM):
                    lost.append(f"{process.name} (pid {process.pid}) {_ending(process.exitcode)} while it ran a task")
                    signal.pthread_kill(main, INTERRUPT)
                    return

    previous = signal.signal(INTERRUPT, interrupted)
    watcher = threading.Thread(target=watch, name="lost-worker watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        signal.signal(INTERRUPT, previous)
