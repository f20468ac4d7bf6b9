"""The processes of a local data stage end when the process that started them ends.

When the main process is killed (the out-of-memory killer, kill -9), nothing told the fork server, the Manager that
datatrove's executor forks, or the workers: they lived on, ~200 MB each, and a worker finished its task's files
while the rerun wrote the same ones. Linux's parent-death signal (prctl PR_SET_PDEATHSIG) kills a process when the
thread that forked it ends. The fork server sets it for itself and for every worker it forks (forkserver_preload.py),
and the main process for what it forks while its data stage runs (run/data.py). Elsewhere than Linux, nothing is set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_forks_die_with_this_process = False
_forking_process = 0


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent (pid `parent`, by default the present one) ends."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = parent or os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # refused (a sandbox's seccomp, say): the process lives as it did before
    if os.getppid() != parent:  # the parent ended before the signal was set
        os._exit(1)


def _before_fork() -> None:
    global _forking_process
    _forking_process = os.getpid()


def _after_fork_in_child() -> None:
    global _forks_die_with_this_process
    if _forks_die_with_this_process:
        _forks_die_with_this_process = False  # what the child forks in turn (from any thread) is not tied to it
        die_with_parent(_forking_process)


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def set_forks_die_with_this_process(on: bool) -> None:
    """Whether every process this one forks from now on (os.fork, as multiprocess's fork server and fork start method
    do) dies with it."""
    global _forks_die_with_this_process
    _forks_die_with_this_process = on


@contextlib.contextmanager
def forks_die_with_this_process():
    """Every process this one forks in the body dies with it."""
    set_forks_die_with_this_process(True)
    try:
        yield
    finally:
        set_forks_die_with_this_process(False)
