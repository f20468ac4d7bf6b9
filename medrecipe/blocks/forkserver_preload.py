"""Work the data stage's fork server (run/data.py) does once, so that every worker forked from it starts with it done.

Without it, each task of each segment pays again for pyarrow's first conversion of Python rows (the parquet writer's
`RecordBatch.from_pylist`), which imports pandas when it is installed: ~0.2 s. Importing this module also imports
`medrecipe.blocks`, whose distribution check every worker then inherits (blocks/distribution_check.py).
"""

from __future__ import annotations

import pyarrow as pa

pa.RecordBatch.from_pylist([{"text": ""}])
