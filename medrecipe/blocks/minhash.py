"""Near-duplicate removal by n-gram Jaccard similarity: MinHash signatures, LSH buckets, verified clusters.

Speed comes from never touching Python objects per token, nor calling numpy per text: a batch of texts is hashed
at once by `hashing.batch_token_hashes` (numpy over code points), shingle hashes come from a rolling combination,
and the sketches from one-permutation hashing (one hash per shingle, split into bins, the minimum per bin).

Each record gets two sketches from one pass over its shingles: the LSH signature (`num_perm` bins, empty bins
filled by rotation densification) that proposes candidate pairs, and a verification sketch of about 1,024 bins
(16 bits each, empty bins left empty) that estimates a candidate pair's Jaccard similarity with a standard error
near 0.015 at 0.7, against 0.04 for 128 bins (on the benchmark corpus, 128 bins confirm 78 % of the pairs at
Jaccard 0.7-0.8, 1,024 bins all of them). The bands are chosen so that LSH proposes 98.5 % of the pairs at the
threshold, and every candidate pair that could join two clusters is verified (not only the pairs with a
bucket's first member), so a cluster is a connected component of the verified candidate pairs. Each cluster
keeps its earliest record in the recipe's reading order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline

from .base import ArrayCollector, CurationFilter, CurationStep, load_arrays
from .hashing import POLY, batch_token_hashes, fmix64, ngram_hashes
from .record import field_text

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
VERIFY_BINS = 1024  # at least; a multiple of num_perm, so that one pass over the shingles serves both sketches
_EMPTY = 0xFFFFFFFF
_SMALL_BUCKET = 64  # up to this many members, a bucket is searched by comparing every pair
_PAIRS_AT_ONCE = 256  # members a larger bucket's search has left that it compares pair by pair, in one call
_SCREEN_OCCUPIED = 64  # occupied bins a pair needs in the screening quarter of its sketch to be rejected there
# Texts are sketched together in runs of about this many characters: 16 to 64 texts of 2,000 to 9,000 characters
# measured fastest (2x a text at a time); much larger runs outgrow the CPU's caches and slow down again.
_BATCH_CHARS = 100_000


def shingle_hashes(tokens: np.ndarray, ngram: int) -> np.ndarray:
    """Hashes of every run of `ngram` consecutive tokens (a text shorter than that is one shingle)."""
    return ngram_hashes(tokens, min(ngram, tokens.size)) if tokens.size else tokens


def _batch_shingles(hashes: np.ndarray, counts: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(shingle hashes, the text of each) of texts whose tokens lie end to end: `shingle_hashes` of every text. A run
    starting within ngram - 1 tokens of a text's end crosses into the next; the rest are each text's counts - ngram + 1."""
    grams = ngram_hashes(hashes, ngram)
    crossing = (np.cumsum(counts)[:, None] - np.arange(1, ngram)).ravel()
    within = np.ones(grams.size, dtype=bool)
    within[crossing[(crossing >= 0) & (crossing < grams.size)]] = False
    shingles, owners = [grams[within]], [np.repeat(np.arange(counts.size), np.maximum(counts - ngram + 1, 0))]
    first = np.cumsum(counts) - counts
    for size in np.unique(counts[(counts > 0) & (counts < ngram)]).tolist():
        short = np.flatnonzero(counts == size)
        shingles.append(ngram_hashes(hashes[first[short, None] + np.arange(size)], size)[:, 0])
        owners.append(short)
    return np.concatenate(shingles), np.concatenate(owners)


def _densify(minima: np.ndarray) -> np.ndarray:
    """Rotation densification, per row: an empty bin takes the next occupied bin's value (cyclically), shifted by
    the distance. A row with no occupied bin stays empty."""
    bins = minima.shape[1]
    occupied = minima != _EMPTY
    partial = np.flatnonzero(occupied.any(axis=1) & ~occupied.all(axis=1))
    if partial.size == 0:
        return minima
    block, index = minima[partial], np.arange(bins)
    # the first occupied bin at or after each bin; past the last one, the row's first plus `bins` (the wrap)
    at_or_after = np.where(occupied[partial], index, 2 * bins)
    nearest = np.minimum.accumulate(at_or_after[:, ::-1], axis=1)[:, ::-1]
    nearest = np.where(nearest == 2 * bins, nearest[:, :1] + bins, nearest)
    shifted = (np.take_along_axis(block, nearest % bins, axis=1).astype(_U64)
               + (nearest - index).astype(_U64) * _U64(0x61C88647)) & _MASK32
    result = minima.copy()
    result[partial] = np.where(occupied[partial], block, shifted.astype(np.uint32))
    return result


def verify_bins(num_perm: int) -> int:
    return num_perm * math.ceil(VERIFY_BINS / num_perm)


def batch_sketches(texts: list[str], ngram: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Per text, a row of (LSH signatures: `num_perm` uint32 values, verification sketches: `verify_bins(num_perm)`
    uint16 values, 0 where no shingle fell) of its shingles; an empty text's signature is all 0xFFFFFFFF.

    One-permutation hashing: a shingle's hash picks its bin from its high 32 bits and competes there with its low
    32 bits. With V = m * num_perm verification bins, LSH bin b is the union of verification bins b*m .. b*m+m-1,
    so one pass yields both. A repeated shingle falls in the same bin with the same value: no de-duplication.
    """
    runs, run, characters = [], [], 0  # of about _BATCH_CHARS characters, at least one text each
    for text in texts:
        if run and characters + len(text) > _BATCH_CHARS:
            runs.append(run)
            run, characters = [], 0
        run.append(text)
        characters += len(text)
    parts = [_sketch_batch(run, ngram, num_perm) for run in [*runs, run]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _sketch_batch(texts: list[str], ngram: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    shingles, owners = _batch_shingles(*batch_token_hashes(texts), ngram)
    fine_bins = verify_bins(num_perm)
    fine = np.full(len(texts) * fine_bins, _EMPTY, dtype=np.uint32)
    bins = ((shingles >> _U64(32)) * _U64(fine_bins)) >> _U64(32)
    np.minimum.at(fine, owners * fine_bins + bins.astype(np.intp), (shingles & _MASK32).astype(np.uint32))
    fine = fine.reshape(len(texts), fine_bins)
    # LSH bin b: the minimum of verification bins b*m .. b*m+m-1, over m strided views (5x faster than .min(axis=2))
    coarse = np.minimum.reduce([fine[:, offset :: fine_bins // num_perm] for offset in range(fine_bins // num_perm)])
    # 0 marks an empty verification bin; an occupied one keeps 16 bits of its minimum, 1 to 65,535, never 0.
    verification = (fine % np.uint32(0xFFFF)).astype(np.uint16) + np.uint16(1)
    verification *= fine != _EMPTY
    return _densify(coarse), verification


def _bin_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bins whose minima are equal, bins occupied in either) of verification sketches, row against row."""
    return np.count_nonzero((a == b) & (a != 0), axis=-1), np.count_nonzero(a | b, axis=-1)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jaccard similarity estimated from verification sketches (rows of `a` against rows of `b`): of the bins
    occupied in either, the share whose minima are equal (one-permutation hashing's estimator, which needs no
    densification). Two different minima agree in their 16 bits by chance (1 in 65,535), which raises the estimate
    by (1 - J) / 65,535 on average; it is not corrected for: next to the estimate's own spread (~0.02) it is
    nothing, and the correction put every pair whose sketches agree on exactly the threshold's share (short texts,
    whose shingles each have a bin) just under the threshold."""
    equal, occupied = _bin_counts(a, b)
    return np.divide(equal, occupied, out=np.zeros(np.shape(occupied)), where=occupied > 0)


def lsh_bands(threshold: float, num_perm: int, verify: bool = True) -> tuple[int, int]:
    """(bands, rows) of the LSH.

    With `verify`, a false candidate costs one sketch comparison and a missed pair is lost, so the bands are the
    most selective ones (most rows) that still propose 98.5 % of the pairs at the threshold: 25 x 5 at 0.7 with
    128 permutations. Without it, the (bands, rows) minimising false positives below the threshold plus false
    negatives above it, equally weighted, as datasketch chooses them.
    """
    if verify:
        for rows in range(num_perm, 0, -1):
            bands = num_perm // rows
            if 1.0 - (1.0 - threshold**rows) ** bands >= 0.985:
                return bands, rows
    grid = np.linspace(0.0, 1.0, 2001)
    below, above = grid <= threshold, grid > threshold
    best, best_error = (1, num_perm), np.inf
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        probability = 1.0 - (1.0 - grid**rows) ** bands
        error = np.trapezoid(probability[below], grid[below]) + np.trapezoid(1.0 - probability[above], grid[above])
        if error < best_error:
            best, best_error = (bands, rows), error
    return best


def _buckets(signatures: np.ndarray, bands: int, rows: int) -> list[np.ndarray]:
    """Per band: the rows of every bucket of two or more records, as (members sorted, bucket start offsets)."""
    n = signatures.shape[0]
    valid = ~(signatures == _EMPTY).all(axis=1)
    found = []
    for band in range(bands):
        block = signatures[:, band * rows : (band + 1) * rows].astype(_U64)
        key = np.zeros(n, dtype=_U64)
        for column in range(rows):
            key = key * POLY + block[:, column]
        key = fmix64(key)
        order = np.flatnonzero(valid)
        order = order[np.argsort(key[order], kind="stable")]
        sorted_key = key[order]
        starts = np.flatnonzero(np.diff(sorted_key, prepend=~sorted_key[:1]) != 0) if order.size else order
        sizes = np.diff(np.append(starts, order.size))
        shared = sizes > 1
        if shared.any():
            keep = np.repeat(shared, sizes)
            found.append((order[keep], np.cumsum(np.concatenate(([0], sizes[shared][:-1])))))
    return found


class Verifier:
    """Verification sketches of the records (rows in reading order), gathered from memory-mapped task files."""

    def __init__(self, parts: list[np.ndarray], rows: np.ndarray, part_of: np.ndarray, threshold: float):
        self.parts, self.rows, self.part_of, self.threshold = parts, rows, part_of, threshold
        self.compared = 0
        self.screened_out = 0  # pairs rejected on the screening quarter of their sketches

    @classmethod
    def in_memory(cls, sketches: np.ndarray, threshold: float) -> Verifier:
        """One array of sketches, row i for record i."""
        return cls([sketches], np.arange(sketches.shape[0]), np.zeros(sketches.shape[0], dtype=np.intp), threshold)

    def gather(self, records: np.ndarray, columns: int | None = None) -> np.ndarray:
        """The records' sketches, or their first `columns` bins."""
        width = columns or self.parts[0].shape[1]
        out = np.empty((records.size, width), dtype=np.uint16)
        for number, part in enumerate(self.parts):
            mine = np.flatnonzero(self.part_of[records] == number)
            if mine.size:
                local = self.rows[records[mine]]
                order = np.argsort(local)  # read each file front to back
                out[mine[order]] = part[local[order], :width]
        return out

    def similar(self, u: np.ndarray, v: np.ndarray, chunk: int = 16384) -> np.ndarray:
        """Whether each pair (u[i], v[i]) reaches the threshold.

        A pair is first screened on a quarter of its bins (one-permutation bins partition the hash space, so a
        quarter of them samples the shingles at random): where 64 or more of them are occupied and their share of
        equal minima lies more than six standard deviations (at the worst case, 0.5 / sqrt(occupied)) below the
        threshold, the whole sketch cannot reach it but with odds under 1e-9, and the pair is rejected. Most
        candidates from a corpus of one domain share a bucket by chance at Jaccard 0.1-0.3 (on the benchmark's
        Chinese corpus, 99.9 % of them), and cost a quarter of a comparison.
        """
        self.compared += u.size
        result = np.zeros(u.size, dtype=bool)
        screen = self.parts[0].shape[1] // 4
        for start in range(0, u.size, chunk):
            pu, pv = u[start : start + chunk], v[start : start + chunk]
            # each record read once: a bucket's every pair names each member many times
            records, inverse = np.unique(np.concatenate((pu, pv)), return_inverse=True)
            quarters = self.gather(records, screen)
            a, b = quarters[inverse[: pu.size]], quarters[inverse[pu.size :]]
            equal, occupied = _bin_counts(a, b)
            margin = 6 * 0.5 / np.sqrt(np.maximum(occupied, 1))
            rest = np.flatnonzero((occupied < _SCREEN_OCCUPIED) | (equal >= (self.threshold - margin) * occupied))
            self.screened_out += pu.size - rest.size
            if rest.size:
                a, b = self.gather(pu[rest]), self.gather(pv[rest])
                result[start + rest] = estimated_jaccard(a, b) >= self.threshold
        return result


def duplicate_clusters(signatures: np.ndarray, verifier: Verifier | None, threshold: float) -> tuple[np.ndarray, dict]:
    """(a cluster label per row, counts): rows whose signatures share an LSH bucket are linked, transitively; with a
    verifier, only pairs whose estimated Jaccard reaches the threshold are links, and every candidate pair that
    could join two clusters is checked.

    Per bucket, every member is first compared with the bucket's first member. Where one fails, the bucket is
    searched (once, though near-copies share a bucket in many bands): up to 64 members by comparing every pair,
    larger ones by `_search_bucket`, which finds their components exactly as comparing every pair would.
    """
    n, num_perm = signatures.shape
    bands, rows = lsh_bands(threshold, num_perm, verifier is not None)
    stats = {"bands_rows": [bands, rows], "candidate_pairs": 0, "buckets_searched": 0}
    buckets = _buckets(signatures, bands, rows)
    if not buckets:
        return np.arange(n), stats
    heads = [members[np.repeat(starts, np.diff(np.append(starts, members.size)))] for members, starts in buckets]
    keys = np.unique(np.concatenate([h.astype(np.int64) * n + m for h, (m, _) in zip(heads, buckets)]))
    u, v = keys // n, keys % n
    u, v = u[u != v], v[u != v]
    stats["candidate_pairs"] = int(u.size)
    if verifier is None:
        return _connected_components(n, u, v), stats
    linked = verifier.similar(u, v)
    failed = np.append(np.sort(u[~linked] * n + v[~linked]), n * n)  # sorted, and ended above every key
    links_u, links_v = [u[linked]], [v[linked]]
    small: dict[int, list[np.ndarray]] = {}  # buckets to search, by size
    searched_members: set[bytes] = set()  # near-copies share a bucket in many bands: each set of members is searched once
    for head, (members, starts) in zip(heads, buckets):
        ends = np.append(starts[1:], members.size)
        keys = head.astype(np.int64) * n + members  # a binary search each (np.isin sorted both arrays in every band)
        missed = failed[np.searchsorted(failed, keys)] == keys
        searched = (np.add.reduceat(missed, starts) > 0) & (ends - starts > 2)  # a pair of two has nothing more to check
        for start, end in zip(starts[searched], ends[searched]):
            if (key := members[start:end].tobytes()) in searched_members:
                continue
            searched_members.add(key)
            if end - start <= _SMALL_BUCKET:
                small.setdefault(int(end - start), []).append(members[start:end])
            else:
                found = _search_bucket(members[start:end], verifier)
                links_u.append(found[:, 0])
                links_v.append(found[:, 1])
    # Small buckets: every pair of members, all buckets of a size at once.
    pairs = [np.stack(group)[:, np.stack(np.triu_indices(size, 1))].transpose(0, 2, 1).reshape(-1, 2)
             for size, group in small.items()]
    if pairs:
        keys = np.unique(np.concatenate([p[:, 0].astype(np.int64) * n + p[:, 1] for p in pairs]))
        u, v = keys // n, keys % n
        linked = verifier.similar(u, v)
        links_u.append(u[linked])
        links_v.append(v[linked])
    stats["buckets_searched"] = len(searched_members)
    stats["verified_pairs"], stats["screened_out_pairs"] = verifier.compared, verifier.screened_out
    return _connected_components(n, np.concatenate(links_u), np.concatenate(links_v)), stats


def _search_bucket(bucket: np.ndarray, verifier: Verifier) -> np.ndarray:
    """Links (pairs) that connect every component of the bucket's verified pairs.

    Components are found breadth first, one at a time, which costs (members x components) comparisons: a bucket of
    near-copies is one component, found in one round. Once at most 256 members are left outside the components
    found, every pair of them is compared in one call: a bucket of unlike texts, which shares its bucket by chance
    (the benchmark's Chinese corpus has buckets of 68 to 206 such members), needs every pair compared anyway, and
    breadth first compared them in one call per member.
    """
    links = []
    remaining = bucket
    while remaining.size > 1:
        frontier, remaining = remaining[:1], remaining[1:]
        while frontier.size and remaining.size:
            u = np.repeat(frontier, remaining.size)
            v = np.tile(remaining, frontier.size)
            hit = verifier.similar(u, v)
            reached = np.isin(remaining, v[hit])
            links.append(np.stack([u[hit], v[hit]], axis=1))
            frontier, remaining = remaining[reached], remaining[~reached]
        if 1 < remaining.size <= _PAIRS_AT_ONCE:
            first, second = np.triu_indices(remaining.size, 1)
            u, v = remaining[first], remaining[second]
            hit = verifier.similar(u, v)
            links.append(np.stack([u[hit], v[hit]], axis=1))
            break
    return np.concatenate(links) if links else np.zeros((0, 2), dtype=np.intp)


def _connected_components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Label of each node = smallest node index of its component (min-label propagation with pointer jumping)."""
    labels = np.arange(n)
    if u.size == 0:
        return labels
    while True:
        previous = labels.copy()
        low = np.minimum(labels[u], labels[v])
        np.minimum.at(labels, u, low)
        np.minimum.at(labels, v, low)
        labels = labels[labels]  # pointer jumping
        if np.array_equal(labels, previous):
            return labels


# --------------------------------------------------------------------------------------- pipeline steps


class MinHashCollector(ArrayCollector):
    """Computes each selected record's signature and verification sketch (collect part of near_dedup)."""

    def __init__(self, name: str, folder: str, field: str, ngram: int, num_perm: int, sources=None):
        super().__init__(name, folder, sources)
        self.field, self.ngram, self.num_perm = field, ngram, num_perm

    def arrays(self, docs: list[Document]) -> dict[str, np.ndarray]:
        signatures, sketches = batch_sketches([field_text(d, self.field) for d in docs], self.ngram, self.num_perm)
        return {"signatures": signatures, "sketches": sketches}


class ResolveDuplicates(CurationStep):
    """Clusters every signature of the corpus and writes which records to remove (resolve part of near_dedup)."""

    def __init__(self, name: str, signatures_folder: str, decision_file: str, threshold: float, verify: bool):
        super().__init__(name)
        self.signatures_folder, self.decision_file = signatures_folder, decision_file
        self.threshold, self.verify = threshold, verify

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        parts = [p for p in load_arrays(self.signatures_folder, memory_map=True) if p["order"].size]
        orders = np.concatenate([p["order"] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        decision = {"threshold": self.threshold, "records": int(orders.size), "clusters": 0, "remove": {}}
        if orders.size:
            # The earliest record of a cluster gets the smallest row, so it is the one kept.
            sort = np.argsort(orders)
            orders = orders[sort]
            signatures = np.concatenate([p["signatures"] for p in parts])[sort]
            verifier = None
            if self.verify:
                part_of = np.repeat(np.arange(len(parts)), [p["order"].size for p in parts])[sort]
                row_in_part = np.concatenate([np.arange(p["order"].size) for p in parts])[sort]
                verifier = Verifier([p["sketches"] for p in parts], row_in_part, part_of, self.threshold)
            labels, counts = duplicate_clusters(signatures, verifier, self.threshold)
            removed = np.flatnonzero(labels != np.arange(orders.size))
            decision.update(counts)
            decision["clusters"] = int(np.unique(labels[removed]).size)
            decision["remove"] = {str(int(orders[i])): int(orders[labels[i]]) for i in removed}
        Path(self.decision_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.decision_file).write_text(json.dumps(decision))
        return iter(())


class RemoveDuplicates(CurationFilter):
    """Removes the records the resolve step marked (apply part of near_dedup)."""

    def __init__(self, name: str, decision_file: str, sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.decision_file = decision_file
        self.remove: dict[int, int] = {}

    def prepare(self, rank: int) -> None:
        decision = json.loads(Path(self.decision_file).read_text())
        self.remove = {int(k): v for k, v in decision["remove"].items()}

    def verdict(self, doc: Document) -> dict | None:
        kept = self.remove.get(doc.metadata["order"])
        return None if kept is None else {"reason": "near_duplicate", "duplicate_of_order": kept}
