"""datatrove's distribution check, answered from the installed distributions of the name asked about.

datatrove builds every step through `PipelineStep.__new__`, which checks the step's `_requires_dependencies` with
`_is_distribution_available(name)`: that reads and parses the metadata of every installed distribution to compare
their names with `name`, ~70 ms a name with 300 installed, in every process that builds or unpickles steps (the
main process, the fork server, Ray and Slurm workers). importlib.metadata can instead list the distributions whose folder
carries the name: a distribution whose `Name`, lowercased, equals `name` (datatrove's test) is among them, since
its folder is named by its normalised `Name`. Of those, the same test is applied, so the answers are datatrove's
(tests/test_blocks.py holds them to datatrove's own function, run in a process of its own, over installed names
in every form a name could be asked in, and missing ones).
"""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache

from datatrove.utils import _import_utils  # datatrove is pinned in pyproject.toml: this private name is 0.10.1's


@lru_cache
def is_distribution_available(distribution_name: str) -> bool | None:
    """True when a distribution whose name, lowercased, is `distribution_name` is installed; None otherwise (as
    datatrove answers)."""
    for distribution in importlib.metadata.distributions(name=distribution_name):
        name = distribution.metadata.get("Name")
        if name and name.lower() == distribution_name:
            return True
    return None


def install() -> None:
    """Answer datatrove's checks in this process (and the processes it forks) with `is_distribution_available`."""
    _import_utils._is_distribution_available = is_distribution_available
