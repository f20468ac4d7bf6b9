"""Decontamination against evaluation items: exact word n-grams (open-r1), then fuzzy similarity (s1K).

- n-grams: open-r1's definition (lower case, whitespace-split words, any shared n-gram). A whole batch of
  texts is hashed in one numpy pass and looked up in a sorted array of the evaluation n-gram hashes; every
  hash hit is confirmed on the words themselves, so the removed set is exactly the brute-force one.
- fuzzy: rapidfuzz's `fuzz.ratio` on whitespace-normalised lower-case text, at or above the threshold.
  Scoring every (record, item) pair is what costs; only candidates are scored: the items that share a
  distinctive word trigram with the record (trigrams found in many items, such as "which of the", do not
  nominate), and, for short records, every item (rapidfuzz's own length bound then skips most of them). An
  edited copy of an item keeps some of its trigrams, so the matches are those of brute force;
  `benchmarks/` checks that on planted edits, and the tests on the quickstart corpus.
"""

from __future__ import annotations

import numpy as np
from datatrove.data import Document
from rapidfuzz import fuzz, process

from .base import CurationFilter
from .evalsets import EvalItem, load_items
from .hashing import ngram_hashes, whitespace_word_hashes
from .record import field_text
from .text import decontamination_words


def _batch_ngrams(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n-gram hashes, the text each belongs to, its word offset in that text) for a batch of texts."""
    joined = "\n".join(texts)
    hashes, starts = whitespace_word_hashes(joined)
    # Word offsets count characters of the lower-cased text, which is longer only where İ became "i̇".
    lengths = map(len, texts) if "\u0130" not in joined else (len(t.lower()) for t in texts)
    text_starts = np.cumsum([0] + [length + 1 for length in lengths][:-1])
    first_word = np.searchsorted(starts, text_starts)
    owner = np.repeat(np.arange(len(texts)), np.diff(first_word, append=starts.size))
    grams = ngram_hashes(hashes, n)
    if grams.size == 0:
        return grams, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    whole = owner[: grams.size] == owner[n - 1 :]  # an n-gram must not run into the next text
    offsets = np.arange(grams.size) - first_word[owner[: grams.size]]
    return grams[whole], owner[: grams.size][whole], offsets[whole]


class _SortedIndex:
    """Sorted n-gram hashes of evaluation texts and the item each comes from.

    Most probes miss, and a binary search per probe is cache misses all the way down; a bitmap of the
    hashes' top bits (about 64 bits per entry, a few MB at most) rejects nearly all misses first.
    """

    def __init__(self, texts: list[str], n: int):
        grams, owners, _ = _batch_ngrams(texts, n) if texts else (np.zeros(0, np.uint64), np.zeros(0, np.intp), None)
        order = np.argsort(grams, kind="stable")
        self.hashes, self.owners = grams[order], owners[order]
        self.build_filter()

    def build_filter(self) -> None:
        """(Re)build the bitmap after `hashes` changed."""
        self.shift = np.uint64(64 - int(np.clip(np.ceil(np.log2(max(self.hashes.size, 1) * 64)), 16, 27)))
        bits = np.zeros(1 << (64 - int(self.shift)), dtype=bool)
        bits[self.hashes >> self.shift] = True
        self.bitmap = np.packbits(bits, bitorder="little")

    def lookup(self, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(for each probe: its first position in the index, whether it is there)."""
        slot = grams >> self.shift
        found = ((self.bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1).view(bool)
        position = np.zeros(grams.size, dtype=np.intp)
        position[found] = np.searchsorted(self.hashes, grams[found])
        found[found] = position[found] < self.hashes.size
        found[found] = self.hashes[position[found]] == grams[found]
        return position, found


class NgramIndex:
    """Every evaluation n-gram, for exact open-r1 n-gram decontamination."""

    def __init__(self, items: list[EvalItem], n: int):
        self.n, self.items = n, items
        self.words = [decontamination_words(item.text) for item in items]
        self.index = _SortedIndex([item.text for item in items], n)

    def matches(self, texts: list[str]) -> list[tuple[int, str] | None]:
        """For each text, (index of an item sharing an n-gram with it, that n-gram) or None."""
        results: list[tuple[int, str] | None] = [None] * len(texts)
        if not texts or self.index.hashes.size == 0:
            return results
        grams, owner, offsets = _batch_ngrams(texts, self.n)
        position, found = self.index.lookup(grams)
        words_of: dict[int, list[str]] = {}
        for hit in np.flatnonzero(found):
            text = int(owner[hit])
            if results[text] is not None:
                continue
            words = words_of.setdefault(text, decontamination_words(texts[text]))
            candidate = words[int(offsets[hit]) : int(offsets[hit]) + self.n]
            probe = int(position[hit])
            while probe < self.index.hashes.size and self.index.hashes[probe] == grams[hit]:
                item = int(self.index.owners[probe])
                if _contains(self.words[item], candidate):  # a hash collision never removes a record
                    results[text] = (item, " ".join(candidate))
                    break
                probe += 1
        return results


def _contains(words: list[str], ngram: list[str]) -> bool:
    n = len(ngram)
    return any(words[i : i + n] == ngram for i in range(len(words) - n + 1))


def fuzzy_normalize(text: str) -> str:
    return " ".join(text.lower().split())


class FuzzyIndex:
    """Evaluation texts for `fuzz.ratio` matching, with the trigram index that nominates candidates."""

    candidate_ngram = 3
    short_words = 16  # records shorter than this are compared with every item
    common_items = 0.005  # a trigram found in more than this share of the items nominates nothing

    def __init__(self, items: list[EvalItem], threshold: float):
        self.items, self.threshold = items, threshold
        self.texts = [fuzzy_normalize(item.text) for item in items]
        self.index = _SortedIndex(self.texts, self.candidate_ngram)
        if self.index.hashes.size:
            _, first, counts = np.unique(self.index.hashes, return_index=True, return_counts=True)
            items_per_gram = np.add.reduceat(
                np.concatenate(([1], (np.diff(self.index.owners) != 0) | (np.diff(self.index.hashes) != 0))).astype(int),
                first,
            )
            limit = max(5, int(self.common_items * len(items)))
            rare = np.repeat(items_per_gram <= limit, counts)
            self.index.hashes, self.index.owners = self.index.hashes[rare], self.index.owners[rare]
            self.index.build_filter()

    def candidates(self, texts: list[str]) -> list[np.ndarray | None]:
        """Per text: the item indices worth scoring (None: all of them)."""
        grams, owner, _ = _batch_ngrams(texts, self.candidate_ngram)
        position, found = self.index.lookup(grams)
        nominated: list[set] = [set() for _ in texts]
        for hit in np.flatnonzero(found):
            probe = int(position[hit])
            while probe < self.index.hashes.size and self.index.hashes[probe] == grams[hit]:
                nominated[int(owner[hit])].add(int(self.index.owners[probe]))
                probe += 1
        return [
            None if len(text.split()) < self.short_words else np.fromiter(sorted(chosen), dtype=np.intp, count=len(chosen))
            for text, chosen in zip(texts, nominated)
        ]

    def matches(self, texts: list[str]) -> list[tuple[int, float] | None]:
        """For each text, (index of the most similar item at or above the threshold, its score) or None."""
        normalized = [fuzzy_normalize(t) for t in texts]
        results: list[tuple[int, float] | None] = [None] * len(texts)
        for row, chosen in enumerate(self.candidates(normalized)):
            if chosen is not None and chosen.size == 0:
                continue
            choices = self.texts if chosen is None else [self.texts[c] for c in chosen]
            found = process.extractOne(normalized[row], choices, scorer=fuzz.ratio, score_cutoff=self.threshold)
            if found is not None:
                item = found[2] if chosen is None else int(chosen[found[2]])
                results[row] = (item, float(found[1]))
        return results


class NgramDecontaminationFilter(CurationFilter):
    """Removes records whose text shares a word n-gram with an evaluation item."""

    batch_size = 1024

    def __init__(self, name: str, benchmarks: list[dict], n: int, field: str, include_options: bool,
                 sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.benchmarks, self.n, self.field, self.include_options = benchmarks, n, field, include_options
        self.index: NgramIndex | None = None

    def prepare(self, rank: int) -> None:
        self.index = NgramIndex(load_items(self.benchmarks, self.include_options), self.n)

    def verdicts(self, docs: list[Document]) -> list[dict | None]:
        found = self.index.matches([field_text(d, self.field) for d in docs])
        return [None if hit is None else _contamination(self.index.items[hit[0]], ngram=hit[1]) for hit in found]


class FuzzyDecontaminationFilter(CurationFilter):
    """Removes records whose text is at least `threshold` % similar to an evaluation item."""

    batch_size = 256

    def __init__(self, name: str, benchmarks: list[dict], threshold: float, field: str, include_options: bool,
                 sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.benchmarks, self.threshold, self.field, self.include_options = benchmarks, threshold, field, include_options
        self.index: FuzzyIndex | None = None

    def prepare(self, rank: int) -> None:
        self.index = FuzzyIndex(load_items(self.benchmarks, self.include_options), self.threshold)

    def verdicts(self, docs: list[Document]) -> list[dict | None]:
        found = self.index.matches([field_text(d, self.field) for d in docs])
        return [None if hit is None else _contamination(self.index.items[hit[0]], score=round(hit[1], 2)) for hit in found]


def _contamination(item: EvalItem, **evidence) -> dict:
    return {"reason": "contaminated", "benchmark": item.benchmark, "item_id": item.item_id, "item_text": item.text, **evidence}
