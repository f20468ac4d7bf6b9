"""The curated dataset's shards: parquet with the chat columns SFT tools read directly."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from datatrove.data import Document
from datatrove.pipeline.writers import ParquetWriter

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("answer", pa.string()),
        ("metadata", pa.string()),  # JSON: order, finish_reason and the source's extra columns (chat_row)
    ]
)
# What each column holds, as the dataset card tells it (hub/cards/dataset_card.py): its type in words, its content.
CONTENTS = {
    "id": ("string", "stable record id (`<source>/<row>` unless the source has ids)"),
    "source": ("string", "the source it came from (see below)"),
    "messages": ("list of {role, content}", "the conversation; an assistant turn may open with its reasoning in "
                 "`<think>...</think>`"),
    "answer": ("string or null", "the reference answer, where the source has one"),
    "metadata": ("string", "a JSON object: `order`, the record's place in the sources' reading order; `finish_reason`, "
                 "why the response's generation ended (`stop`, `length`), empty where it is not known; `extra`, the "
                 "source's further columns the recipe keeps (`fields.metadata`)"),
}


def chat_row(writer, doc: Document) -> dict:
    meta = doc.metadata
    return {
        "id": doc.id,
        "source": meta["source"],
        "messages": meta["messages"],  # of each message, its role and content are written (_columns)
        "answer": meta.get("answer"),
        "metadata": json.dumps(
            {"order": meta["order"], "finish_reason": meta.get("finish_reason", ""), "extra": meta.get("extra", {})},
            ensure_ascii=False,
            default=str,
        ),
    }


# What is left without the record's provenance (data.output.keep_metadata: false): the conversation and its answer.
CHAT_ONLY = pa.schema([SCHEMA.field("messages"), SCHEMA.field("answer")])


def columns(keep_metadata: bool) -> list[tuple[str, str, str]]:
    """The shards' columns in their order, each with its type and content in words (CONTENTS)."""
    return [(field.name, *CONTENTS[field.name]) for field in (SCHEMA if keep_metadata else CHAT_ONLY)]


def chat_only_row(writer, doc: Document) -> dict:
    return {"messages": doc.metadata["messages"], "answer": doc.metadata.get("answer")}


def _offsets(lengths: list[int]) -> tuple[np.ndarray, int]:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, int(offsets[-1])


def _strings(values: list[str | None]) -> pa.Array:
    """Texts (None: null) as an Arrow string array, built from its buffers."""
    encoded = [b"" if value is None else value.encode() for value in values]
    offsets, size = _offsets([len(value) for value in encoded])
    missing = np.fromiter((value is None for value in values), dtype=bool, count=len(values))
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    if size > np.iinfo(np.int32).max:
        raise ValueError(f"a batch of {len(values):,} records holds {size:,} bytes of one column, more than a parquet string "
                         "column's batch can (2 GiB)")
    return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(offsets.astype(np.int32)),
                                                            pa.py_buffer(b"".join(encoded))], null_count=int(missing.sum()))


def _messages(conversations: list[list[dict]], type: pa.ListType) -> pa.Array:
    offsets, _ = _offsets([len(messages) for messages in conversations])
    turns = pa.StructArray.from_arrays(
        [_strings([message[field.name] for messages in conversations for message in messages]) for field in type.value_type],
        fields=list(type.value_type))
    return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets.astype(np.int32))]),
                                    turns, type=type)


def _columns(rows: list[dict], schema: pa.Schema) -> pa.RecordBatch:
    """The rows as a batch of `schema` (SCHEMA or CHAT_ONLY), equal to pyarrow's `RecordBatch.from_pylist` of them
    (tests/test_blocks.py holds it to that) but built from the columns' buffers: the conversion of Python objects
    imports pandas where it is installed (~0.3 s in every worker process, or in the fork server before any can
    start) and costs more than half of the writer's time."""
    return pa.RecordBatch.from_arrays([_messages([row["messages"] for row in rows], field.type) if field.name == "messages"
                                       else _strings([row[field.name] for row in rows]) for field in schema], schema=schema)


class ChatParquetWriter(ParquetWriter):
    """datatrove's ParquetWriter with the chat schema: with `keep_metadata`, each record's id, source and metadata
    beside its messages and answer. Its stats count the records kept of each source (`kept/<source>`), whichever
    columns are written."""

    name = "output"

    def write(self, document: Document, rank: int = 0, **kwargs):
        self.stat_update(f"kept/{document.metadata['source']}")
        super().write(document, rank, **kwargs)

    def __init__(self, output_folder: str, max_file_size_mb: int, keep_metadata: bool = True):
        super().__init__(output_folder, output_filename="${rank}.parquet", adapter=chat_row if keep_metadata else chat_only_row,
                         schema=SCHEMA if keep_metadata else CHAT_ONLY, max_file_size=max_file_size_mb * 2**20)
        self._shard_names: dict[int | str, str] = {}

    def _get_output_filename(self, document: Document, rank: int | str = 0, **kwargs) -> str:
        """datatrove's name of the shard, kept per rank: the name `${rank}.parquet` depends on the rank alone, and
        datatrove's substitutes the template with each record's every metadata field, twice a record (~20 µs of the
        writer's ~70 a record)."""
        if rank not in self._shard_names:
            self._shard_names[rank] = super()._get_output_filename(document, rank, **kwargs)
        return self._shard_names[rank]

    def _write_batch(self, filename):
        """datatrove's, with the batch built by `_columns`."""
        if self._batches[filename]:
            self._writers[filename].write_batch(_columns(self._batches.pop(filename), self.schema))
