"""What every medrecipe curation block shares: source selection, per-source counts, exclusion files, side files.

A step applies to the records of the sources it selects and forwards the others untouched. It counts, per
source, the records it saw (`in/<source>`) and kept (`out/<source>`) in datatrove's own stats, which the
data stage turns into stats.json. Every record a step removes is written, with the reason, to the step's
exclusion folder.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers import JsonlWriter


class CurationStep(PipelineStep):
    """A step of a recipe, applied to the records of its selected sources."""

    type = "🩺 - CURATION"

    def __init__(self, name: str, sources: list[str] | None = None):
        self.name = name  # before PipelineStep.__init__, which names the step's stats after it
        super().__init__()
        self.sources = frozenset(sources) if sources is not None else None

    def selected(self, doc: Document) -> bool:
        return self.sources is None or doc.metadata["source"] in self.sources


class CurationFilter(CurationStep):
    """A step that keeps or removes records; `verdict` returns None to keep, or the reason to remove (a dict)."""

    batch_size = 1

    def __init__(self, name: str, sources: list[str] | None = None, exclusion_folder: str | None = None):
        super().__init__(name, sources)
        self.exclusion_folder = exclusion_folder

    def verdict(self, doc: Document) -> dict | None:
        raise NotImplementedError

    def verdicts(self, docs: list[Document]) -> list[dict | None]:
        """Judge a batch at once (steps that vectorize override this and set `batch_size`)."""
        return [self.verdict(doc) for doc in docs]

    def prepare(self, rank: int) -> None:
        """Load what the step needs (an index, a decision file) once per task, before the first record."""

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.prepare(rank)
        writer = (
            JsonlWriter(self.exclusion_folder, output_filename=f"{rank:05d}.jsonl.gz")
            if self.exclusion_folder
            else contextlib.nullcontext()
        )
        with writer as excluded:
            batch: list[Document] = []
            for doc in data:
                if not self.selected(doc):
                    yield doc
                    continue
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    yield from self._judge(batch, excluded, rank)
                    batch = []
            if batch:
                yield from self._judge(batch, excluded, rank)

    def _judge(self, batch: list[Document], excluded, rank: int):
        with self.track_time("batch" if self.batch_size > 1 else None):
            results = self.verdicts(batch)
        for doc, reason in zip(batch, results):
            source = doc.metadata["source"]
            self.stat_update(f"in/{source}")
            if reason is None:
                self.stat_update(f"out/{source}")
                yield doc
            else:
                self.stat_update(f"removed:{reason.get('reason', self.name)}")
                if excluded is not None:
                    doc.metadata["excluded"] = {"step": self.name, **reason}
                    excluded.write(doc, rank)


# ------------------------------------------------------------------------------------------- side files


def save_arrays(folder: str, rank: int, **arrays: np.ndarray) -> None:
    """Write a task's arrays atomically (a rerun of a crashed task overwrites them whole)."""
    path = Path(folder) / f"{rank:05d}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    partial = path.with_suffix(".npz.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)


def load_arrays(folder: str) -> list[dict[str, np.ndarray]]:
    """Every task's arrays, in rank order."""
    return [dict(np.load(path)) for path in sorted(Path(folder).glob("*.npz"))]


class ArrayCollector(CurationStep):
    """Forwards every record; from the selected ones computes a value per record and saves them with their order.

    Subclasses implement `values(docs) -> np.ndarray` (one row per record). The collected arrays feed a
    resolve step that decides, over the whole corpus, what an apply step then removes.
    """

    batch_size = 256

    def __init__(self, name: str, folder: str, sources: list[str] | None = None):
        super().__init__(name, sources)
        self.folder = folder

    def values(self, docs: list[Document]) -> np.ndarray:
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        orders: list[int] = []
        chunks: list[np.ndarray] = []
        batch: list[Document] = []

        def flush():
            with self.track_time("batch"):
                chunks.append(self.values(batch))
            orders.extend(d.metadata["order"] for d in batch)
            batch.clear()

        for doc in data:
            if self.selected(doc):
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    flush()
            yield doc
        if batch:
            flush()
        values = np.concatenate(chunks) if chunks else np.zeros((0,), dtype=np.float32)
        save_arrays(self.folder, rank, order=np.asarray(orders, dtype=np.int64), values=values)
