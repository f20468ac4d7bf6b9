"""What one segment of the data stage writes for the next to read.

A record's text is most of its bytes and, for every record the readers build, a copy of a message (`record_text`):
a segment writes it as null, and the reader derives it again, so each text is written, compressed and parsed once.

datatrove's JsonlWriter writes no file for a task that received no record, and its JsonlReader refuses a folder
without files. Between two segments an empty folder means that every record was removed before it (the executor
has already checked that every task of the earlier segment completed), so it reads as no records.
"""

from __future__ import annotations

from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from .record import record_text


def _text_once(writer: JsonlWriter, document: Document) -> dict:
    """datatrove's row (its fields that are set), with the text as null where the record's messages give it.

    datatrove's own adapter builds the row with `dataclasses.asdict`, which deep-copies the metadata (every message)
    of every record: more than half of a segment's write. The writer serialises the row at once and keeps nothing, so
    the record's own objects serve. A record's metadata holds JSON values (the readers build it from rows), which
    orjson writes as they are; a dataclass there would be written from its attributes rather than its fields.
    """
    if document.media:  # records carry none; a document that does keeps datatrove's handling of media bytes
        row = writer._default_adapter(document)
    else:
        row = {key: value for key, value in (("text", document.text), ("id", document.id),
                                             ("metadata", document.metadata)) if value}
    messages = document.metadata.get("messages")
    if document.text and messages is not None and document.text == record_text(messages):
        row["text"] = None
    return row


class SegmentWriter(JsonlWriter):
    """JsonlWriter of a segment: a text its record's messages give is written as null."""

    name = "🐿 Segment"

    def __init__(self, output_folder: str, output_filename: str, compression: str):
        super().__init__(output_folder, output_filename=output_filename, compression=compression, adapter=_text_once)


# Where an LLM step's runner, which knows each record by its place in reading order, keeps the record's own id
# (blocks/llm.py, _known_by_order).
RUNNER_KEPT_ID = "record_id"


class SegmentReader(JsonlReader):
    """JsonlReader of a segment's folder, where no file means no record and a null text is the messages' text.

    With `runner_output`, the folder is what an LLM step's runner wrote: its files are read in their ranks' and chunks'
    order and each file's records in reading order (the runner writes a file of up to 2,000 records, a checkpoint
    chunk, in the order its answers came, so that two runs of one recipe gave the same records in different orders,
    and SFT's seeded shuffle of them other batches: found by review), each with its own id again."""

    name = "📖 Segment"

    def __init__(self, data_folder: str, glob_pattern: str | None = None, runner_output: bool = False):
        super().__init__(data_folder, glob_pattern=glob_pattern)
        self.runner_output = runner_output

    def read_file(self, filepath: str):
        documents = super().read_file(filepath)
        if not self.runner_output:
            yield from documents
            return
        for doc in sorted(documents, key=lambda doc: doc.metadata["order"]):
            doc.id = doc.metadata.pop(RUNNER_KEPT_ID)
            yield doc

    def _default_adapter(self, data: dict, path: str, id_in_file: int | str) -> dict:
        row = super()._default_adapter(data, path, id_in_file)
        if row["text"] is None:  # absent (datatrove leaves out an empty text) stays empty
            row["text"] = record_text(row["metadata"]["messages"])
        return row

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """datatrove's reader of a shard (every world_size-th file), but a runner's files in their ranks' and
        chunks' order: datatrove sorts names as text, which puts `00000_chunk_10` before `00000_chunk_2`."""
        if data:
            yield from data
        files = self.data_folder.list_files(glob_pattern=self.glob_pattern)
        if self.runner_output:
            files.sort(key=_rank_and_chunk)
        for doc in self.read_files_shard(files[rank::world_size]):
            self.update_doc_stats(doc)
            yield doc


def _rank_and_chunk(name: str) -> tuple[int, int]:
    """(rank, chunk) of a runner's file, named `${rank}_chunk_${chunk_index}` (compile/data.py): its records are the
    rank's records from chunk x records_per_chunk on, in reading order (datatrove's CheckpointManager.chunk_index_gen)."""
    rank, _, chunk = Path(name).name.split(".", 1)[0].partition("_chunk_")
    return int(rank), int(chunk)
