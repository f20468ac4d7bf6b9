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
        ("metadata", pa.string()),  # JSON: order, finish_reason and the source's extra columns
    ]
)


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


class ChatParquetWriter(ParquetWriter):
    """datatrove's ParquetWriter with the chat schema."""

    def __init__(self, output_folder: str, max_file_size_mb: int):
        super().__init__(output_folder, output_filename="${rank}.parquet", adapter=chat_row, schema=SCHEMA,
                         max_file_size=max_file_size_mb * 2**20)
