"""Decontamination against evaluation items: exact word n-grams (open-r1), then fuzzy similarity.

Both compare texts in Unicode's NFKC form (text.compatibility_folded): a full-width copy is a copy.

- n-grams: open-r1's definition (lower case, whitespace-split words, any shared n-gram). A whole batch of
  texts is hashed in one numpy pass and looked up in a sorted array of the evaluation n-gram hashes; every
  hash hit is confirmed on the words themselves, so the removed set is exactly the brute-force one.
  A question of fewer than n words has no n-gram of its own (MedMCQA's "Koplik spots are seen in"), so it is
  matched whole: a record whose tokens contain the question's tokens in a row is removed, punctuation aside.
  Questions of fewer than `whole_question_min_words` tokens are left alone: one or two words name a topic.
- fuzzy: rapidfuzz's `fuzz.ratio` on normalised text (lower case; every run of punctuation and spaces one
  space), at or above the threshold, against each item's question alone and its question with the options,
  whichever scores higher. `fuzz.ratio` is 200 * LCS / (len(a) + len(b)), and the LCS of two texts is at most
  the number of characters they share (per character class, the smaller count). That bound needs no
  alignment; a pair whose bound is below the threshold cannot match and is not scored, every other pair is.
  So the matches are exactly those of scoring every pair (tests compare with rapidfuzz's `cdist`). Screens
  on shared words or trigrams are not safe: one letter changed in every third word keeps a ratio of 85-94
  and no word trigram.

The II-Medical cards call the second step "the fuzzy decontamination from s1k". s1's public code
(github.com/simplescaling/s1, data/decontaminate_util.py, used by data/filter.ipynb with ngram_size=8)
decontaminates with word 8-grams only and publishes no fuzzy step; this fuzzy step is medrecipe's reading of
the card's "fuzzy ... with threshold 80%".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import regex
from datatrove.data import Document
from rapidfuzz import fuzz, process

from .base import CurationFilter
from .evalsets import EvalItem, load_items
from .hashing import code_points, ngram_hashes, token_hashes, token_strings, whitespace_word_hashes
from .record import field_text
from .text import compatibility_folded, decontamination_words


class _BatchWords:
    """The words of a batch of texts hashed in one numpy pass, each with the text it belongs to.

    `words(text)` gives the hashes of a text's words and where each starts in `text.lower()`."""

    def __init__(self, texts: list[str], words: Callable = whitespace_word_hashes):
        joined = "\n".join(texts)
        self.hashes, starts = words(joined)
        # Word offsets count characters of the lower-cased text, which is longer only where İ became "i̇".
        lengths = map(len, texts) if "\u0130" not in joined else (len(t.lower()) for t in texts)
        text_starts = np.cumsum([0] + [length + 1 for length in lengths][:-1])
        self.first_word = np.searchsorted(starts, text_starts)
        self.owner = np.repeat(np.arange(len(texts)), np.diff(self.first_word, append=starts.size))

    def grams(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n-gram hashes, the text each belongs to, its word offset in that text)."""
        grams = ngram_hashes(self.hashes, n)
        if grams.size == 0:
            return grams, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        owner = self.owner[: grams.size]
        whole = owner == self.owner[n - 1 :]  # an n-gram must not run into the next text
        offsets = np.arange(grams.size) - self.first_word[owner]
        return grams[whole], owner[whole], offsets[whole]


def _token_positions(text: str) -> tuple[np.ndarray, np.ndarray]:
    return token_hashes(text, positions=True)


class _SortedIndex:
    """Sorted hashes of evaluation n-grams and the item each comes from.

    Most probes miss, and a binary search per probe is cache misses all the way down; a bitmap of the
    hashes' top bits (about 64 bits per entry, a few MB at most) rejects nearly all misses first.
    """

    def __init__(self, hashes: np.ndarray, owners: np.ndarray):
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.owners = hashes[order], owners[order]
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

    def owners_of(self, position: int, gram: np.uint64):
        """The items holding the n-gram found at `position`."""
        while position < self.hashes.size and self.hashes[position] == gram:
            yield int(self.owners[position])
            position += 1


class NgramIndex:
    """Every evaluation n-gram, and every question too short to have one, for exact n-gram decontamination."""

    def __init__(self, items: list[EvalItem], n: int, whole_question_min_words: int = 4):
        self.n, self.items = n, items
        texts = [compatibility_folded(item.text) for item in items]
        self.words = [decontamination_words(text) for text in texts]
        grams, owners, _ = _BatchWords(texts).grams(n) if items else (np.zeros(0, np.uint64), np.zeros(0, np.intp), None)
        self.index = _SortedIndex(grams, owners)
        # Questions shorter than n words, by their length in tokens: one index of whole-question hashes per length.
        self.question_tokens: dict[int, list[str]] = {}
        by_length: dict[int, list[tuple[np.uint64, int]]] = {}
        for number, item in enumerate(items):
            question = compatibility_folded(item.question)
            if len(question.split()) >= n:
                continue
            tokens = token_strings(question)
            if len(tokens) < whole_question_min_words:
                continue
            self.question_tokens[number] = tokens
            by_length.setdefault(len(tokens), []).append((ngram_hashes(token_hashes(question), len(tokens))[0], number))
        self.whole_questions = {
            length: _SortedIndex(np.array([h for h, _ in entries], dtype=np.uint64), np.array([o for _, o in entries], dtype=np.intp))
            for length, entries in by_length.items()
        }

    def matches(self, texts: list[str]) -> list[tuple[int, str] | None]:
        """For each text, (index of an item it shares an n-gram or a whole short question with, the words shared)
        or None."""
        results: list[tuple[int, str] | None] = [None] * len(texts)
        if not texts:
            return results
        texts = [compatibility_folded(text) for text in texts]
        if self.index.hashes.size:
            words_of: dict[int, list[str]] = {}
            grams, owner, offsets = _BatchWords(texts).grams(self.n)
            position, found = self.index.lookup(grams)
            for hit in np.flatnonzero(found):
                text = int(owner[hit])
                if results[text] is not None:
                    continue
                words = words_of.setdefault(text, decontamination_words(texts[text]))
                candidate = words[int(offsets[hit]) : int(offsets[hit]) + self.n]
                for item in self.index.owners_of(int(position[hit]), grams[hit]):
                    if _contains(self.words[item], candidate):  # a hash collision never removes a record
                        results[text] = (item, " ".join(candidate))
                        break
        tokens = _BatchWords(texts, words=_token_positions) if self.whole_questions else None
        tokens_of: dict[int, list[str]] = {}
        for length, index in self.whole_questions.items():
            grams, owner, offsets = tokens.grams(length)
            position, found = index.lookup(grams)
            for hit in np.flatnonzero(found):
                text = int(owner[hit])
                if results[text] is not None:
                    continue
                words = tokens_of.setdefault(text, token_strings(texts[text]))
                candidate = words[int(offsets[hit]) : int(offsets[hit]) + length]
                for item in index.owners_of(int(position[hit]), grams[hit]):
                    if candidate == self.question_tokens[item]:
                        results[text] = (item, " ".join(candidate))
                        break
        return results


def _contains(words: list[str], ngram: list[str]) -> bool:
    n = len(ngram)
    return any(words[i : i + n] == ngram for i in range(len(words) - n + 1))


_NOT_WORD = regex.compile(r"[^\p{L}\p{N}\p{M}]+")


def fuzzy_normalize(text: str) -> str:
    """What fuzzy matching compares: NFKC, lower case, each run of punctuation and whitespace one space."""
    return _NOT_WORD.sub(" ", compatibility_folded(text).lower()).strip()


_CLASSES = 64


def _character_classes() -> np.ndarray:
    """A class per BMP character for the shared-character bound: space, a-z and 0-9 each their own, every other
    character one of 27 shared classes (sharing a class can only raise the bound, so it stays a bound)."""
    table = 37 + np.arange(0x10000) % 27
    table[ord(" ")] = 0
    table[ord("a") : ord("z") + 1] = np.arange(1, 27)
    table[ord("0") : ord("9") + 1] = np.arange(27, 37)
    return table.astype(np.intp)


_CLASS_OF = _character_classes()


def _class_counts(texts: list[str]) -> np.ndarray:
    """Characters of each class, one row per text."""
    counts = np.zeros((len(texts), _CLASSES), dtype=np.int32)
    for row, text in enumerate(texts):
        counts[row] = np.bincount(np.take(_CLASS_OF, code_points(text), mode="clip"), minlength=_CLASSES)
    return counts


class FuzzyIndex:
    """Evaluation texts (questions, and questions with their options) sorted by length, for exact `fuzz.ratio`
    matching."""

    group = 32  # records screened together against one window of item lengths
    screen_block = 8 * 2**20  # bytes of one block of the shared-character computation

    def __init__(self, items: list[EvalItem], threshold: float):
        self.items, self.threshold = items, threshold
        entries = []
        for number, item in enumerate(items):
            for kind, text in (("question", item.question), ("question_with_options", item.text)):
                normalized = fuzzy_normalize(text)
                if normalized and not (kind == "question_with_options" and item.text == item.question):
                    entries.append((len(normalized), normalized, number, kind))
        entries.sort(key=lambda entry: entry[0])
        self.lengths = np.array([e[0] for e in entries], dtype=np.int64)
        self.texts = [e[1] for e in entries]
        self.owners = np.array([e[2] for e in entries], dtype=np.intp)
        self.kinds = [e[3] for e in entries]
        self.counts = _class_counts(self.texts)
        # ratio = 200 LCS / (a + b) >= t needs the shorter text to be at least t / (200 - t) of the longer one.
        self.length_factor = threshold / (200.0 - threshold)

    def window(self, shortest: int, longest: int) -> tuple[int, int]:
        """The item texts whose length can reach the threshold with a record of length in [shortest, longest]."""
        slack = 1e-9
        low = np.searchsorted(self.lengths, shortest * self.length_factor - slack, side="left")
        high = np.searchsorted(self.lengths, longest / self.length_factor + slack, side="right") if self.length_factor else self.lengths.size
        return int(low), int(high)

    def candidates(self, normalized: list[str]) -> list[np.ndarray]:
        """Per text: the item texts whose shared-character bound reaches the threshold (sorted positions)."""
        lengths = np.array([len(t) for t in normalized], dtype=np.int64)
        counts = _class_counts(normalized)
        found: list[np.ndarray] = [np.zeros(0, dtype=np.intp)] * len(normalized)
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] > 0]
        for start in range(0, order.size, self.group):
            rows = order[start : start + self.group]
            low, high = self.window(int(lengths[rows[0]]), int(lengths[rows[-1]]))
            step = max(1, self.screen_block // (rows.size * _CLASSES * 4))
            chosen: list[list[np.ndarray]] = [[] for _ in rows]
            for block in range(low, high, step):
                end = min(high, block + step)
                shared = np.minimum(counts[rows, None, :], self.counts[None, block:end, :]).sum(axis=2)
                total = lengths[rows, None] + self.lengths[None, block:end]
                reachable = 200.0 * shared >= (self.threshold - 1e-6) * total
                for position, row_hits in enumerate(reachable):
                    hits = np.flatnonzero(row_hits)
                    if hits.size:
                        chosen[position].append(hits + block)
            for position, row in enumerate(rows):
                if chosen[position]:
                    found[int(row)] = np.concatenate(chosen[position])
        return found

    def matches(self, texts: list[str]) -> list[tuple[int, float, str] | None]:
        """For each text, (index of the most similar item at or above the threshold, its score, which of its texts
        matched: "question" or "question_with_options") or None."""
        normalized = [fuzzy_normalize(t) for t in texts]
        results: list[tuple[int, float, str] | None] = [None] * len(texts)
        for row, chosen in enumerate(self.candidates(normalized)):
            if chosen.size == 0:
                continue
            best = process.extractOne(normalized[row], [self.texts[c] for c in chosen], scorer=fuzz.ratio,
                                      score_cutoff=self.threshold)
            # rapidfuzz's cutoff lets through scores a few millionths under it (fuzz.ratio's own cutoff does not)
            if best is not None and best[1] >= self.threshold:
                position = int(chosen[best[2]])
                results[row] = (int(self.owners[position]), float(best[1]), self.kinds[position])
        return results


class _DecontaminationFilter(CurationFilter):
    """Removes records whose text matches an evaluation item; a subclass builds the index and names the evidence."""

    def __init__(self, name: str, benchmarks: list[dict], field: str, include_options: bool, sources=None,
                 exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.benchmarks, self.field, self.include_options = benchmarks, field, include_options
        self.index: NgramIndex | FuzzyIndex | None = None

    def build_index(self, items: list[EvalItem]) -> NgramIndex | FuzzyIndex:
        raise NotImplementedError

    def evidence(self, hit: tuple) -> dict:
        raise NotImplementedError

    def prepare(self, rank: int) -> None:
        self.index = self.build_index(load_items(self.benchmarks, self.include_options))

    def verdicts(self, docs: list[Document]) -> list[dict | None]:
        found = self.index.matches([field_text(d, self.field) for d in docs])
        return [None if hit is None else _contamination(self.index.items[hit[0]], **self.evidence(hit)) for hit in found]


class NgramDecontaminationFilter(_DecontaminationFilter):
    """Removes records whose text shares a word n-gram, or a whole short question, with an evaluation item."""

    batch_size = 1024

    def __init__(self, name: str, benchmarks: list[dict], n: int, field: str, include_options: bool,
                 whole_question_min_words: int = 4, sources=None, exclusion_folder=None):
        super().__init__(name, benchmarks, field, include_options, sources, exclusion_folder)
        self.n, self.whole_question_min_words = n, whole_question_min_words

    def build_index(self, items: list[EvalItem]) -> NgramIndex:
        return NgramIndex(items, self.n, self.whole_question_min_words)

    def evidence(self, hit: tuple) -> dict:
        return {"ngram": hit[1]}


class FuzzyDecontaminationFilter(_DecontaminationFilter):
    """Removes records whose text is at least `threshold` % similar to an evaluation item."""

    batch_size = 256

    def __init__(self, name: str, benchmarks: list[dict], threshold: float, field: str, include_options: bool,
                 sources=None, exclusion_folder=None):
        super().__init__(name, benchmarks, field, include_options, sources, exclusion_folder)
        self.threshold = threshold

    def build_index(self, items: list[EvalItem]) -> FuzzyIndex:
        return FuzzyIndex(items, self.threshold)

    def evidence(self, hit: tuple) -> dict:
        return {"score": round(hit[1], 2), "compared": hit[2]}


def _contamination(item: EvalItem, **evidence) -> dict:
    return {"reason": "contaminated", "benchmark": item.benchmark, "item_id": item.item_id, "item_text": item.text, **evidence}
