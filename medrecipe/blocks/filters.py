"""Record filters: complete generations, prompt length, and too many occurrences of a word ("Wait")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline

from .base import ArrayCollector, CurationFilter, CurationStep, load_arrays
from .record import field_text, response_text
from .text import whole_word_count, word_count


class CompleteGenerationFilter(CurationFilter):
    """Removes traces whose reasoning was never closed, that have no answer after it, or that hit the length limit."""

    def __init__(self, name: str, think_open: str, think_close: str, require_answer: bool,
                 drop_finish_reasons: list[str], sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.think_open, self.think_close = think_open, think_close
        self.require_answer = require_answer
        self.drop_finish_reasons = set(drop_finish_reasons)

    def verdict(self, doc: Document) -> dict | None:
        if doc.metadata.get("finish_reason") in self.drop_finish_reasons:
            return {"reason": "finish_reason", "finish_reason": doc.metadata["finish_reason"]}
        response = response_text(doc)
        opened = response.rfind(self.think_open)
        closed = response.rfind(self.think_close)
        if opened != -1 and closed < opened:
            return {"reason": "unclosed_reasoning"}
        if self.require_answer:
            answer = response[closed + len(self.think_close):] if closed != -1 else response
            if not answer.strip():
                return {"reason": "no_final_answer"}
        return None


class MinPromptWordsFilter(CurationFilter):
    """Keeps records whose prompt has more than `more_than` words (each CJK character is a word)."""

    def __init__(self, name: str, more_than: int, sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.more_than = more_than

    def verdict(self, doc: Document) -> dict | None:
        words = word_count(field_text(doc, "prompt"))
        return None if words > self.more_than else {"reason": "short_prompt", "words": words}


class WordOccurrences:
    """Counting of one word in one field, shared by the collector and the filter."""

    def __init__(self, word: str, field: str, case_sensitive: bool):
        self.word, self.field, self.case_sensitive = word, field, case_sensitive

    def count(self, doc: Document) -> int:
        return whole_word_count(field_text(doc, self.field), self.word, self.case_sensitive)


class WordCountCollector(ArrayCollector):
    """Records each selected record's count of the word, for a threshold resolved over the corpus."""

    def __init__(self, name: str, folder: str, word: str, field: str, case_sensitive: bool, sources=None):
        super().__init__(name, folder, sources)
        self.counter = WordOccurrences(word, field, case_sensitive)

    def arrays(self, docs: list[Document]) -> dict[str, np.ndarray]:
        return {"counts": np.fromiter((self.counter.count(d) for d in docs), dtype=np.int64, count=len(docs))}


class ResolveWordThreshold(CurationStep):
    """Resolves the threshold from the corpus' counts: the recipe's `max_count`, else the percentile's value.

    The observed percentile is recorded either way, so a run shows whether the card's 47 is still the
    97th percentile of this corpus.
    """

    def __init__(self, name: str, counts_folder: str, decision_file: str, max_count: int | None, percentile: float | None):
        super().__init__(name)
        self.counts_folder, self.decision_file = counts_folder, decision_file
        self.max_count, self.percentile = max_count, percentile

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        parts = [part["counts"] for part in load_arrays(self.counts_folder) if "counts" in part]
        counts = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        observed = int(np.percentile(counts, self.percentile, method="higher")) if self.percentile and counts.size else None
        threshold = self.max_count if self.max_count is not None else observed
        decision = {"max_count": threshold, "percentile": self.percentile, "observed_percentile_value": observed,
                    "records": int(counts.size), "max_observed": int(counts.max()) if counts.size else 0}
        Path(self.decision_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.decision_file).write_text(json.dumps(decision, indent=2))
        return iter(())


class MaxWordOccurrencesFilter(CurationFilter):
    """Removes records with more occurrences of the word than the threshold (fixed, or read from a decision file)."""

    def __init__(self, name: str, word: str, field: str, case_sensitive: bool, max_count: int | None = None,
                 decision_file: str | None = None, sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.counter = WordOccurrences(word, field, case_sensitive)
        self.max_count, self.decision_file = max_count, decision_file

    def prepare(self, rank: int) -> None:
        if self.decision_file:
            self.max_count = json.loads(Path(self.decision_file).read_text())["max_count"]

    def verdict(self, doc: Document) -> dict | None:
        count = self.counter.count(doc)
        return None if count <= self.max_count else {"reason": "too_many_occurrences", "count": count, "max_count": self.max_count}
