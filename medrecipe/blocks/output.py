"""The curated dataset's shards: parquet with the chat columns SFT tools read directly."""

from __future__ import annotations

import json

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
        "messages": [{"role": m["role"], "content": m["content"]} for m in meta["messages"]],
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
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in doc.metadata["messages"]],
            "answer": doc.metadata.get("answer")}


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
