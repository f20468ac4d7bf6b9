"""Work the data stage's fork server (run/data.py) does once, so that every worker forked from it starts with it done.

Without it, each task of each segment pays again for the tokenizer's lookup tables (blocks/hashing.py): ~25 ms, and
for the modules a worker imports as it starts and works (`_IMPORTED_BY_WORKERS`, ~70 ms together). Importing this
module also imports `medrecipe.blocks`, whose distribution check every worker then inherits
(blocks/distribution_check.py). The server, and every worker it forks, ends when the process that started it does
(blocks/parent_death.py). Nothing here imports pandas (~0.3 s, before any worker can start): the parquet writer
builds its batches without it (blocks/output.py).
"""

from __future__ import annotations

import importlib

from .hashing import build_tables
from .parent_death import die_with_parent, set_forks_die_with_this_process

# click: multiprocess prepares a worker by running the command's main module (medrecipe/cli/main.py) again; the pool's
# and executor's modules: datatrove's task runs there; numpy.ma: np.unique's first call (MinHash shingles); pyarrow's
# parquet module: the output writer's (found with PYTHONPROFILEIMPORTTIME in the workers' log).
_IMPORTED_BY_WORKERS = ("click", "datatrove.executor.local", "multiprocess.managers", "multiprocess.pool", "numpy.ma",
                        "pyarrow.parquet")

die_with_parent()
set_forks_die_with_this_process(True)
for module in _IMPORTED_BY_WORKERS:
    importlib.import_module(module)
build_tables()
