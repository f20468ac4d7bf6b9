"""Read one recipe source (local files or a Hub dataset) into chat records.

Files and Hub shards are spread over the data tasks (offset by the source's index, so that many one-file
sources still spread over the tasks), a file in the parts `data_files` cuts it into, so that one big file is read by
many tasks too. A source with `max_samples` is read by one task, in order, so that its cap is exact. A JSON file whose
rows are lists (ApolloCorpus' [question, answer, ...] rows) exposes each row as the column `turns`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline

from .base import CountedStep, exclusion_writer
from .data_files import local_files, parts_of, rows_of_file
from .record import MappingError, RowRejected, build_record, order_key

COLUMN_ROWS = 1000  # a file's columns are the keys of its first rows, as many as this


def columns_of(rows) -> set[str]:
    return set().union(*rows)


def source_record(row: dict, source: dict, row_id: str, order: int, columns: Callable[[], set[str]]) -> dict:
    """A row of `source` as the data stage reads it (record.build_record), where a column of `columns()`, its file's
    (the keys of its first COLUMN_ROWS rows), that the row leaves out reads as null, as the `datasets` library reads
    JSON Lines (pyarrow's schema is the union of a block's keys: a row without `system` gets None); a column none of
    those rows has is a mistake in the mapping (MappingError), as preflight reports it from the first rows."""
    kind = source.get("kind", "conversations")
    try:
        return build_record(row, source["fields"], source["name"], kind, row_id, order)
    except MappingError as error:
        if error.column not in columns():
            raise
    return build_record(dict.fromkeys(columns()) | row, source["fields"], source["name"], kind, row_id, order)


class SourceReader(CountedStep):
    """Reads one source of the recipe; chains after other readers (their records pass through first)."""

    type = "📖 - READER"

    def __init__(self, source: dict, source_index: int, exclusion_folder: str | None = None, files: list[str] | None = None):
        """`source` is the recipe's Source as a dict (a local `path` already absolute); rows that cannot become records
        are written to `exclusion_folder` with their reason and counted as `rejected:<reason>`. `files`: the local
        path's files as the run resolved them once (`local_files`), so that no task resolves them again (a folder's
        split is resolved by the `datasets` library, whose import costs every task ~0.13 s)."""
        self.name = source["name"]  # before PipelineStep.__init__, which names the step's stats after it
        super().__init__()
        self.source = source
        self.source_index = source_index
        self.exclusion_folder = exclusion_folder
        self.files = files
        self._columns: dict[Path, set[str]] = {}

    def _file_columns(self, file: Path) -> set[str]:
        if file not in self._columns:
            self._columns[file] = columns_of(islice(rows_of_file(file, self.source.get("format", "auto")), COLUMN_ROWS))
        return self._columns[file]

    def _mine(self, shard: int, world_size: int, rank: int) -> bool:
        return (shard + self.source_index) % world_size == rank

    def _files(self) -> list[Path] | None:
        """Local files to read: the source's path, or its Hub `data_files` downloaded; None for a Hub configuration."""
        if self.source.get("path"):
            if self.files is not None:
                return [Path(file) for file in self.files]
            return local_files(self.source["path"], self.source.get("split"))
        if self.source.get("data_files"):
            from huggingface_hub import hf_hub_download

            return [Path(hf_hub_download(self.source["hub"], name, repo_type="dataset", revision=self.source.get("revision")))
                    for name in self.source["data_files"]]
        return None

    def _shards(self, rank: int, world_size: int) -> Iterator[tuple[int, Path | None, Iterator[dict]]]:
        """(part, its file or None for a Hub configuration, its rows) of this task."""
        capped = self.source.get("max_samples") is not None
        files = self._files()
        if files is not None:
            format = self.source.get("format", "auto")
            parts = [(file, part) for file in files for part in parts_of(file, format, whole=capped)]
            for index, (file, part) in enumerate(parts):
                if self._mine(0 if capped else index, world_size, rank):
                    yield index, file, rows_of_file(file, format, part)
            return
        from datasets import load_dataset

        dataset = load_dataset(self.source["hub"], self.source.get("subset"), split=self.source.get("split", "train"),
                               revision=self.source.get("revision"), streaming=True)
        shards = 1 if capped else dataset.n_shards
        for index in range(shards):
            if self._mine(index, world_size, rank):
                yield index, None, iter(dataset if shards == 1 else dataset.shard(num_shards=shards, index=index))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        with exclusion_writer(self.exclusion_folder, f"{self.name}-{rank:05d}.jsonl.gz") as excluded:
            yield from self._records(rank, world_size, excluded)

    def _records(self, rank: int, world_size: int, excluded) -> DocumentsPipeline:
        cap = self.source.get("max_samples")
        read = 0
        for shard, file, rows in self._shards(rank, world_size):
            for row_index, row in enumerate(rows):
                if cap is not None and read >= cap:
                    return
                read += 1
                row_id = str(row_index) if shard == 0 else f"{shard}:{row_index}"
                with self.track_time():
                    try:
                        record = source_record(row, self.source, row_id, order_key(self.source_index, shard, row_index),
                                               lambda: self._file_columns(file) if file else set())
                    except RowRejected as rejection:
                        self.stat_update(f"rejected:{rejection.reason}")
                        if excluded is not None:
                            excluded.write(_rejected_row(self.name, row_id, row, rejection.reason, str(rejection)), rank)
                        continue
                self.stat_update(f"read/{self.name}")
                yield Document(**record)


_ROW_CHARS = 100_000  # of a rejected row's JSON kept in excluded/read


def _rejected_row(source: str, row_id: str, row: dict, reason: str, detail: str) -> Document:
    """A rejected source row as its exclusion record: the row as JSON text (ASCII, so that any value can be written)."""
    text = json.dumps(row, default=str, ensure_ascii=True)[:_ROW_CHARS]
    return Document(text=text, id=f"{source}/{row_id}",
                    metadata={"source": source, "excluded": {"step": "read", "reason": reason, "detail": detail}})
