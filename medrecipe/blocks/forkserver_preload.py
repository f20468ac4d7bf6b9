"""Work the data stage's fork server (run/data.py) does once, so that every worker forked from it starts with it done.

Without it, each task of each segment pays again for pyarrow's first conversion of Python rows (the parquet writer's
`RecordBatch.from_pylist`), which imports pandas when it is installed: ~0.2 s, and for the tokenizer's lookup tables
(blocks/hashing.py): ~25 ms. Importing this module also imports `medrecipe.blocks`, whose distribution check every
worker then inherits (blocks/distribution_check.py). The server, and every worker it forks, ends when the process
that started it does (blocks/parent_death.py).
"""

from __future__ import annotations

import pyarrow as pa

from .hashing import build_tables
from .parent_death import die_with_parent, set_forks_die_with_this_process

die_with_parent()
set_forks_die_with_this_process(True)
pa.RecordBatch.from_pylist([{"text": ""}])
build_tables()
