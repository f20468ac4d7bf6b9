"""What every medrecipe curation block shares: source selection, per-source counts, exclusion files, side files.

A step applies to the records of the sources it selects and forwards the others untouched. It counts, per
source, the records it saw (`in/<source>`) and kept (`out/<source>`) in datatrove's own stats, which the
data stage turns into stats.json. Every record a step removes is written, with the reason, to the step's
exclusion folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers import JsonlWriter


class StepFailed(RuntimeError):
    """A curation step failed in a worker; its message says why."""


def exclusion_writer(folder: str | None, filename: str):
    """The writer of a step's removals into `folder` (a context manager yielding it), or of nothing without one."""
    return JsonlWriter(folder, output_filename=filename) if folder else contextlib.nullcontext()


class CountedStep(PipelineStep):
    """A step whose counts go into stats.json. A later segment may run it again on the records it needs rather than
    read them from a file (compile/data.py): run so (`replayed`, set by the plan), it counts nothing, as its records
    were counted where it first ran (the plan gives it no exclusion folder either)."""

    replayed = False

    def stat_update(self, *labels, value: int = 1, unit: str | None = None):
        if not self.replayed:
            super().stat_update(*labels, value=value, unit=unit)


class CurationStep(CountedStep):
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
        with exclusion_writer(self.exclusion_folder, f"{rank:05d}.jsonl.gz") as excluded:
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
    """Write a task's arrays, one `.npy` file each, atomically (a rerun of a crashed task overwrites them whole)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        path = Path(folder) / f"{rank:05d}.{key}.npy"
        partial = path.with_suffix(".npy.partial")
        with partial.open("wb") as handle:
            np.save(handle, array)
        os.replace(partial, path)


def load_arrays(folder: str, memory_map: bool = False) -> list[dict[str, np.ndarray]]:
    """Every task's arrays, in rank order; with `memory_map`, read from disk only where indexed (large sketches)."""
    parts: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted(Path(folder).glob("*.npy")):
        rank, key = path.name.removesuffix(".npy").split(".", 1)
        parts.setdefault(rank, {})[key] = np.load(path, mmap_mode="r" if memory_map else None)
    return [parts[rank] for rank in sorted(parts)]


class ArrayCollector(CurationStep):
    """Forwards every record; from the selected ones computes arrays with a row per record and saves them with
    the records' order.

    Subclasses implement `arrays(docs) -> {name: array}`. The collected arrays feed a resolve step that decides,
    over the whole corpus, what an apply step then removes.
    """

    batch_size = 256

    def __init__(self, name: str, folder: str, sources: list[str] | None = None):
        super().__init__(name, sources)
        self.folder = folder

    def arrays(self, docs: list[Document]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        orders: list[int] = []
        chunks: dict[str, list[np.ndarray]] = {}
        batch: list[Document] = []

        def flush():
            with self.track_time("batch"):
                for key, array in self.arrays(batch).items():
                    chunks.setdefault(key, []).append(array)
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
        save_arrays(self.folder, rank, order=np.asarray(orders, dtype=np.int64),
                    **{key: np.concatenate(parts) for key, parts in chunks.items()})
