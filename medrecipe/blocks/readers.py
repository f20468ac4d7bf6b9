"""Read one recipe source (local files or a Hub dataset) into chat records.

Files and Hub shards are spread over the data tasks (offset by the source's index, so that many one-file
sources still spread over the tasks); an uncompressed JSON Lines file is cut into parts of `PART_BYTES` at
line boundaries, and a Parquet file into runs of row groups of about that size, so that one big file is read
by many tasks too (a compressed file is read whole by one task). A source with `max_samples` is read by one task,
in order, so that its cap is exact. A JSON file whose rows are lists (ApolloCorpus' [question, answer, ...] rows)
exposes each row as the column `turns`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from .record import AnswerNotAnOption, build_record, order_key, prompt_text_of, response_text_of

_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".parquet")
_COMPRESSED = (".gz", ".zst")
PART_BYTES = 64 << 20  # fixed, not derived from the task count, so that record ids never depend on it


def local_files(path: str) -> list[Path]:
    """The data files a source path names: a file, a folder (searched recursively) or a glob, sorted."""
    target = Path(path)
    if any(char in target.name for char in "*?["):
        found = sorted(target.parent.glob(target.name))
    elif target.is_dir():
        found = sorted(p for p in target.rglob("*") if p.is_file())
    else:
        found = [target] if target.exists() else []
    return [p for p in found if p.name.endswith(_SUFFIXES)]


def _kind(path: Path, format: str) -> str:
    return format if format != "auto" else ("parquet" if path.suffix == ".parquet" else "json" if path.suffix == ".json" else "jsonl")


def _parts(path: Path, format: str, whole: bool) -> list[tuple[int, int] | None]:
    """The parts to read `path` in: byte ranges of a JSON Lines file, ranges of row groups of a Parquet file
    (None: the whole file at once)."""
    kind = _kind(path, format)
    if whole or kind == "json" or path.name.endswith(_COMPRESSED):
        return [None]
    if kind == "parquet":
        import pyarrow.parquet as pq

        metadata, parts, first, size = pq.ParquetFile(path).metadata, [], 0, 0
        for group in range(metadata.num_row_groups):
            size += metadata.row_group(group).total_byte_size
            if size >= PART_BYTES or group == metadata.num_row_groups - 1:
                parts.append((first, group + 1))
                first, size = group + 1, 0
        return parts or [None]
    size = path.stat().st_size
    return [(start, min(start + PART_BYTES, size)) for start in range(0, max(size, 1), PART_BYTES)]


def _json_lines(path: Path, start: int, end: int) -> Iterator[dict]:
    """The JSON lines that start in [start, end)."""
    with path.open("rb") as handle:
        if start:
            handle.seek(start - 1)
            handle.readline()  # the end of the line that began in the previous part (or just its newline)
        position = handle.tell()
        while position < end:
            line = handle.readline()
            if not line:
                return
            position += len(line)
            if line.strip():
                yield json.loads(line)


def _rows_of_file(path: Path, format: str, part: tuple[int, int] | None = None) -> Iterator[dict]:
    kind = _kind(path, format)
    if kind == "parquet":
        import pyarrow.parquet as pq

        file = pq.ParquetFile(path)
        groups = range(*part) if part else None
        for batch in file.iter_batches(batch_size=1024, row_groups=groups):
            yield from batch.to_pylist()
    elif kind == "json":
        with path.open(encoding="utf-8") as handle:
            content = json.load(handle)
        for row in content if isinstance(content, list) else content.get("data", []):
            yield row if isinstance(row, dict) else {"turns": row}
    elif part is not None:
        yield from _json_lines(path, *part)
    else:
        with _open_text(path) as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def _open_text(path: Path):
    """A JSON Lines file, plain, gzipped or zstd-compressed (the AM distilled sets ship as .jsonl.zst)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    if path.name.endswith(".zst"):
        try:
            from compression import zstd  # Python 3.14
        except ImportError:
            from backports import zstd
        return zstd.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


class SourceReader(PipelineStep):
    """Reads one source of the recipe; chains after other readers (their records pass through first)."""

    type = "📖 - READER"

    def __init__(self, source: dict, source_index: int):
        """`source` is the recipe's Source as a dict (a local `path` already absolute)."""
        self.name = source["name"]  # before PipelineStep.__init__, which names the step's stats after it
        super().__init__()
        self.source = source
        self.source_index = source_index

    def _mine(self, shard: int, world_size: int, rank: int) -> bool:
        return (shard + self.source_index) % world_size == rank

    def _files(self) -> list[Path] | None:
        """Local files to read: the source's path, or its Hub `data_files` downloaded; None for a Hub configuration."""
        if self.source.get("path"):
            return local_files(self.source["path"])
        if self.source.get("data_files"):
            from huggingface_hub import hf_hub_download

            return [Path(hf_hub_download(self.source["hub"], name, repo_type="dataset", revision=self.source.get("revision")))
                    for name in self.source["data_files"]]
        return None

    def _shards(self, rank: int, world_size: int) -> Iterator[tuple[int, Iterator[dict]]]:
        capped = self.source.get("max_samples") is not None
        files = self._files()
        if files is not None:
            format = self.source.get("format", "auto")
            parts = [(file, part) for file in files for part in _parts(file, format, whole=capped)]
            for index, (file, part) in enumerate(parts):
                if self._mine(0 if capped else index, world_size, rank):
                    yield index, _rows_of_file(file, format, part)
            return
        from datasets import load_dataset

        dataset = load_dataset(self.source["hub"], self.source.get("subset"), split=self.source.get("split", "train"),
                               revision=self.source.get("revision"), streaming=True)
        shards = 1 if capped else dataset.n_shards
        for index in range(shards):
            if self._mine(index, world_size, rank):
                yield index, iter(dataset if shards == 1 else dataset.shard(num_shards=shards, index=index))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        cap = self.source.get("max_samples")
        read = 0
        for shard, rows in self._shards(rank, world_size):
            for row_index, row in enumerate(rows):
                if cap is not None and read >= cap:
                    return
                read += 1
                with self.track_time():
                    try:
                        record = build_record(
                            row,
                            self.source["fields"],
                            self.name,
                            self.source.get("kind", "conversations"),
                            row_id=str(row_index) if shard == 0 else f"{shard}:{row_index}",
                            order=order_key(self.source_index, (shard << 28) | row_index),
                        )
                    except AnswerNotAnOption:
                        self.stat_update("answer_not_an_option")
                        continue
                messages = record["metadata"]["messages"]
                wants_response = self.source.get("kind", "conversations") == "conversations"
                if not prompt_text_of(messages).strip() or (wants_response and not response_text_of(messages).strip()):
                    self.stat_update("malformed")
                    continue
                self.stat_update(f"read/{self.name}")
                yield Document(**record)
