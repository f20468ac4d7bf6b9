"""Work the data stage's fork server (run/data.py) does once, so that every worker forked from it starts with it done.

Without it, each task of each segment pays again for:
- datatrove's `PipelineStep.__new__`, which runs when a worker unpickles its steps and checks their distributions by
  reading the metadata of every installed distribution: ~70 ms a name with ~300 installed (cached per process);
- pyarrow's first conversion of Python rows (the parquet writer's `RecordBatch.from_pylist`), which imports pandas
  when it is installed: ~0.2 s.
"""

from __future__ import annotations

import pyarrow as pa
from datatrove.utils._import_utils import check_required_dependencies  # datatrove is pinned in pyproject.toml

# The distributions of the blocks every data stage runs: its readers and segments (orjson) and its output (pyarrow).
check_required_dependencies("the data stage's workers", ["orjson", "pyarrow"])
pa.RecordBatch.from_pylist([{"text": ""}])
