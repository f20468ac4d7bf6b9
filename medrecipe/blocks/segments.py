"""Reading what an earlier segment of the data stage wrote.

datatrove's JsonlWriter writes no file for a task that received no record, and its JsonlReader refuses a folder
without files. Between two segments an empty folder means that every record was removed before it (the executor
has already checked that every task of the earlier segment completed), so it reads as no records.
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.readers import JsonlReader


class SegmentReader(JsonlReader):
    """JsonlReader of a segment's folder, where no file means no record."""

    name = "📖 Segment"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        if self.data_folder.list_files(glob_pattern=self.glob_pattern):
            yield from super().run(None, rank, world_size)
