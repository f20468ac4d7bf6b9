"""K-means for domain curation: Lloyd iterations on torch (a GPU when there is one, else the CPU), faiss or
numpy, and a two-level variant for many clusters on a CPU.

Every backend assigns points in chunks whose score matrix (chunk x K floats) fits a memory budget, so 50,000
clusters never need a 13 GB block. A cluster left empty by an update is moved onto the training point farthest
from its centre (as scikit-learn does), so Lloyd returns K clusters that all have members.

`two_level` clusters into sqrt(K) coarse groups first and splits each group into a share of K proportional
to its size (largest remainders, never more than its different points): every iteration compares a point with
about 2 sqrt(K) centres instead of K, and the shares add up to exactly K (where the points hold K different ones).
A group that leaves some of its centres empty (points that differ only in their last bits) hands them to groups
with room, so K clusters have members wherever the points can fill them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_CPU_BUDGET = 256 * 2**20  # bytes of one chunk's score matrix on a CPU


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def cuda_present() -> bool:
    return _importable("torch") and __import__("torch").cuda.is_available()


@dataclass(frozen=True)
class Backend:
    """Where Lloyd's iterations run: `name` is torch, faiss or numpy; `device` is cuda or cpu."""

    name: str
    device: str = "cpu"

    @classmethod
    def choose(cls, wanted: str = "auto") -> Backend:
        """auto: torch on a GPU when one is present, else numpy (on 2 cores numpy's Lloyd iterations matched torch's
        and ran 3x faster than faiss's, and won on the small problems of two_level; benchmarks/RESULTS.md)."""
        if wanted == "auto":
            return cls("torch", "cuda") if cuda_present() else cls("numpy")
        if wanted == "torch":
            if not _importable("torch"):
                raise ImportError("k-means backend torch needs torch: pip install 'medrecipe[curation]'")
            return cls("torch", "cuda" if cuda_present() else "cpu")
        if wanted == "faiss" and not _importable("faiss"):
            raise ImportError("k-means backend faiss needs faiss: pip install faiss-cpu")
        return cls(wanted, "cpu")

    def __str__(self) -> str:
        return f"{self.name} ({self.device})"

    # ----------------------------------------------------------------------------------------- assignment

    def assign(self, points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centre of each point and the squared distance to it."""
        if self.name == "torch":
            import torch

            with _tf32(self.device):
                labels, distances = _torch_assign(torch.as_tensor(points, device=self.device),
                                                  torch.as_tensor(centres, device=self.device), self.device)
            return labels.cpu().numpy(), distances.cpu().numpy()
        return _numpy_assign(points, centres)

    # -------------------------------------------------------------------------------------------- lloyd

    def refine(self, points: np.ndarray, centres: np.ndarray, iterations: int, seed: int) -> np.ndarray:
        """`iterations` Lloyd steps from the given centres."""
        if self.name == "faiss":
            import faiss

            k = centres.shape[0]
            kmeans = faiss.Kmeans(points.shape[1], k, niter=iterations, seed=seed, verbose=False,
                                  max_points_per_centroid=max(256, math.ceil(points.shape[0] / k)))
            kmeans.train(points, init_centroids=centres)
            return kmeans.centroids
        if self.name == "torch":
            return _torch_refine(points, centres, iterations, self.device)
        return _numpy_refine(points, centres, iterations)


class _tf32:
    """TensorFloat-32 matrix products on a GPU while clustering (several times float32's rate; the scores only
    rank centres), the caller's setting restored after."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        if self.device == "cuda":
            import torch

            self.previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = True

    def __exit__(self, *exc):
        if self.device == "cuda":
            import torch

            torch.backends.cuda.matmul.allow_tf32 = self.previous


def _chunk_rows(k: int, budget: int) -> int:
    return max(1, budget // (4 * max(k, 1)))


def _numpy_assign(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.empty(points.shape[0], dtype=np.int64)
    best = np.empty(points.shape[0], dtype=np.float32)
    centre_norms = np.einsum("ij,ij->i", centres, centres)
    chunk = _chunk_rows(centres.shape[0], _CPU_BUDGET)
    for start in range(0, points.shape[0], chunk):
        scores = points[start : start + chunk] @ centres.T
        scores *= -2.0
        scores += centre_norms
        labels[start : start + chunk] = chosen = np.argmin(scores, axis=1)
        best[start : start + chunk] = scores[np.arange(scores.shape[0]), chosen]
    return labels, np.maximum(best + np.einsum("ij,ij->i", points, points), 0.0)


def row_keys(points: np.ndarray) -> np.ndarray:
    """Each row as one value of its bytes: rows equal byte for byte have equal keys (np.unique tells them apart)."""
    rows = np.ascontiguousarray(points)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def row_ids(points: np.ndarray, chunk: int = 2**16) -> np.ndarray:
    """Each row's number among the different rows (rows equal byte for byte share one), numbered in the order of their
    bytes: np.unique(row_keys(points), return_inverse=True)[1], without the two copies of the points np.unique makes
    (found by review: 7 GB more for 2.3M prompts of 384 dimensions)."""
    keys = row_keys(points)
    order = np.argsort(keys, kind="stable")
    first = np.ones(keys.size, dtype=bool)  # whether each row, in sorted order, differs from the one before it
    for start in range(1, keys.size, chunk):
        stop = min(start + chunk, keys.size)
        first[start:stop] = keys[order[start:stop]] != keys[order[start - 1 : stop - 1]]
    ids = np.empty(keys.size, dtype=np.int64)
    ids[order] = np.cumsum(first) - 1
    return ids


def distinct_of(points: np.ndarray, candidates: np.ndarray, wanted: int) -> np.ndarray:
    """Up to `wanted` of `candidates` (row numbers, in their order) whose rows all differ: copies of one prompt (its
    several responses) are one point, and two centres put on it leave one empty (found by review)."""
    if candidates.size == 0:
        return candidates
    _, first = np.unique(row_keys(points[candidates]), return_index=True)
    return candidates[np.sort(first)[:wanted]]


def _relocate_empty(centres: np.ndarray, counts: np.ndarray, points: np.ndarray, distances: np.ndarray) -> None:
    """Move each empty cluster's centre onto one of the different points farthest from their centres."""
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        farthest = distinct_of(points, np.argsort(distances)[::-1][: 4 * empty.size], empty.size)
        centres[empty[: farthest.size]] = points[farthest]


def _numpy_refine(points: np.ndarray, centres: np.ndarray, iterations: int) -> np.ndarray:
    from scipy import sparse

    centres = centres.copy()
    k = centres.shape[0]
    ones, rows = np.ones(points.shape[0], dtype=np.float32), np.arange(points.shape[0])
    previous = None
    for _ in range(iterations):
        labels, distances = _numpy_assign(points, centres)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        if previous is not None and filled.all() and np.array_equal(labels, previous):
            break  # converged: the centres these labels give are the ones they were assigned to
        previous = labels
        # A sparse one-hot (centre x point) matrix sums each centre's points in O(n d), whatever k is.
        sums = sparse.csr_matrix((ones, (labels, rows)), shape=(k, points.shape[0])) @ points
        centres[filled] = sums[filled] / counts[filled, None]
        _relocate_empty(centres, counts, points, distances)
    return centres


def _torch_budget(device: str) -> int:
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return max(64 * 2**20, min(4 * 2**30, free // 4))
    return _CPU_BUDGET


def _torch_assign(x, c, device: str):
    import torch

    centre_norms = (c * c).sum(dim=1)
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=device)
    best = torch.empty(x.shape[0], dtype=torch.float32, device=device)
    chunk = _chunk_rows(c.shape[0], _torch_budget(device))
    for start in range(0, x.shape[0], chunk):
        scores = torch.addmm(centre_norms, x[start : start + chunk], c.T, alpha=-2.0)
        best[start : start + chunk], labels[start : start + chunk] = scores.min(dim=1)
    return labels, torch.clamp(best + (x * x).sum(dim=1), min=0.0)


def _torch_refine(points: np.ndarray, centres: np.ndarray, iterations: int, device: str) -> np.ndarray:
    import torch

    with _tf32(device):
        x = torch.as_tensor(points, device=device)
        c = torch.as_tensor(centres, device=device).clone()
        k = c.shape[0]
        previous = None
        for _ in range(iterations):
            labels, distances = _torch_assign(x, c, device)
            counts = torch.bincount(labels, minlength=k)
            filled = counts > 0
            if previous is not None and bool(filled.all()) and torch.equal(labels, previous):
                break  # converged: the centres these labels give are the ones they were assigned to
            previous = labels
            sums = torch.zeros_like(c).index_add_(0, labels, x)
            c[filled] = sums[filled] / counts[filled].unsqueeze(1).to(c.dtype)
            empty = torch.nonzero(~filled).squeeze(1)
            if empty.numel():
                farthest = torch.topk(distances, min(4 * empty.numel(), x.shape[0])).indices.cpu().numpy()
                farthest = torch.as_tensor(distinct_of(points, farthest, empty.numel()), device=device)
                c[empty[: farthest.numel()]] = x[farthest]
        return c.cpu().numpy()


# ------------------------------------------------------------------------------------------------ seeding


def seed_centres(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds: each new centre drawn in proportion to the squared distance to the nearest one (random
    seeds often put two centres in one group and leave another without). Small sets use their matrix of pairwise
    distances, large ones a sample of 64 points per centre; beyond 4096 centres random points are used (the
    groups of `two_level` stay below that)."""
    if k > 4096:  # different points: among twice k drawn, else among all of them, else (too few) copies too
        order = rng.permutation(points.shape[0])
        chosen = distinct_of(points, order[: 2 * k], k)
        if chosen.size < k:
            chosen = distinct_of(points, order, k)
        if chosen.size < k:
            chosen = np.concatenate([chosen, np.setdiff1d(order, chosen, assume_unique=True)[: k - chosen.size]])
        return points[chosen].astype(np.float32, copy=True)
    if points.shape[0] > 64 * k:
        points = points[rng.choice(points.shape[0], size=64 * k, replace=False)]
    norms = (points * points).sum(axis=1)
    pairwise = points.shape[0] <= 4096
    squared = np.maximum(norms[:, None] + norms[None, :] - 2.0 * (points @ points.T), 0.0) if pairwise else None

    def distances(index: int) -> np.ndarray:
        if squared is not None:
            return squared[index]
        return np.maximum(norms - 2.0 * (points @ points[index]) + norms[index], 0.0)

    chosen = [int(rng.integers(points.shape[0]))]
    nearest = distances(chosen[0]).copy()
    for _ in range(1, k):
        cumulative = np.cumsum(nearest)
        if cumulative[-1] > 0:
            chosen.append(min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(nearest) - 1))
        else:
            chosen.append(int(rng.integers(points.shape[0])))
        np.minimum(nearest, distances(chosen[-1]), out=nearest)
    return points[chosen].astype(np.float32, copy=True)


def lloyd(points: np.ndarray, k: int, iterations: int, seed: int, backend: Backend) -> np.ndarray:
    """Centres after k-means++ seeding and `iterations` Lloyd steps."""
    k = min(k, points.shape[0])
    return backend.refine(points, seed_centres(points, k, np.random.default_rng(seed)), iterations, seed)


# ---------------------------------------------------------------------------------------------- k-means


def shares(sizes: np.ndarray, k: int, room: np.ndarray | None = None) -> np.ndarray:
    """Clusters per group: proportional to the group's size, at least one per non-empty group (while k allows),
    never more than its `room` (its different points; by default its points), adding up to exactly k (k at most
    room.sum(); a non-empty group has room for one)."""
    room = sizes if room is None else room
    if k < np.count_nonzero(sizes):  # fewer clusters than groups: one each for the largest groups
        given = np.zeros(sizes.size, dtype=np.int64)
        given[np.argsort(-sizes, kind="stable")[:k]] = 1
        return given
    exact = k * sizes / sizes.sum()
    given = np.minimum(np.maximum(np.floor(exact), 1), room).astype(np.int64) * (sizes > 0)
    while given.sum() < k:  # the largest remainders first, where there is room
        gap = np.where(given < room, exact - given, -np.inf)
        chosen = np.argsort(-gap, kind="stable")[: min(k - int(given.sum()), int((given < room).sum()))]
        given[chosen] += 1
    while given.sum() > k:  # one per group went beyond k: take back from those most above their exact share
        gap = np.where(given > 1, given - exact, -np.inf)
        chosen = np.argsort(-gap, kind="stable")[: min(int(given.sum()) - k, int((given > 1).sum()))]
        given[chosen] -= 1
    return given


def distinct_rows(rows: np.ndarray) -> int:
    """How many different points `rows` holds (rows equal byte for byte are one point)."""
    return distinct_of(rows, np.arange(rows.shape[0]), rows.shape[0]).size


def kmeans(points: np.ndarray, k: int, iterations: int, method: str = "auto", seed: int = 0,
           max_training_points: int | None = None, backend: Backend | None = None):
    """(centres, label of each point, squared distance of each point to its centre, how it ran)."""
    backend = backend or Backend.choose()
    points = np.ascontiguousarray(points, dtype=np.float32)
    k = min(k, points.shape[0])
    if method == "auto":
        method = "two_level" if k > 4096 and backend.device == "cpu" else "lloyd"
    rng = np.random.default_rng(seed)
    training = points
    if max_training_points and points.shape[0] > max_training_points:
        training = points[np.sort(rng.choice(points.shape[0], size=max_training_points, replace=False))]
    if method == "lloyd" or k <= 16:
        centres = lloyd(training, k, iterations, seed, backend)
        labels, distances = backend.assign(points, centres)
        return centres, labels, distances, {"method": "lloyd", "backend": str(backend)}
    coarse_k = max(2, round(math.sqrt(k)))
    # The coarse split needs no more than faiss's own default sample of 256 points per centre.
    coarse_training = training[np.sort(rng.choice(training.shape[0], size=256 * coarse_k, replace=False))] \
        if training.shape[0] > 256 * coarse_k else training
    coarse = lloyd(coarse_training, coarse_k, iterations, seed, backend)
    coarse_of_points, _ = backend.assign(points, coarse)
    coarse_of_training = coarse_of_points if training is points else backend.assign(training, coarse)[0]
    # On a CPU, torch and faiss have a fixed cost per call that many small problems do not repay: groups run on numpy.
    fine = backend if backend.device == "cuda" else Backend("numpy")
    by_group = np.argsort(coarse_of_training, kind="stable")
    bounds = np.searchsorted(coarse_of_training[by_group], np.arange(coarse_k + 1))

    def group_training(group: int) -> np.ndarray:
        """A group's training points; its members where the training sample has none of them."""
        rows = training[by_group[bounds[group] : bounds[group + 1]]]
        return rows if rows.shape[0] else points[coarse_of_points == group]

    def fit(group: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The group's centres that have members, and its members' labels among them and distances."""
        members = np.flatnonzero(coarse_of_points == group)
        sub_training = group_training(group)
        seeds = seed_centres(sub_training, count, np.random.default_rng(seed + group + 1))
        sub_centres = fine.refine(np.ascontiguousarray(sub_training), seeds, iterations, seed)
        sub_labels, sub_distances = fine.assign(points[members], sub_centres)
        used, sub_labels = np.unique(sub_labels, return_inverse=True)
        return sub_centres[used], sub_labels, sub_distances

    # A group gets no more centres than it has different points: copies of one prompt (several responses to it) are
    # one point, and the centres beyond them would stay empty. Points that differ in their last bits (one prompt
    # embedded in two batches) count as different but cannot be told apart: a group that leaves centres empty so
    # has room for the ones it filled, and the centres it could not fill go to groups with room.
    sizes = np.bincount(coarse_of_points, minlength=coarse_k)
    room = np.array([distinct_rows(group_training(group)) if sizes[group] else 0 for group in range(coarse_k)])
    wanted = min(k, int(room.sum()))
    given = shares(sizes, wanted, room)
    fitted: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    refit = np.flatnonzero(given)
    while refit.size:
        for group in refit.tolist():
            fitted[group] = fit(group, int(given[group]))
            if fitted[group][0].shape[0] < given[group]:
                room[group] = given[group] = fitted[group][0].shape[0]
        spare = room - given
        missing = min(wanted - int(given.sum()), int(spare.sum()))
        extra = shares(np.where(spare > 0, sizes, 0), missing, spare) if missing else np.zeros_like(given)
        given += extra
        refit = np.flatnonzero(extra)
    centres, labels, distances = [], np.empty(points.shape[0], dtype=np.int64), np.empty(points.shape[0], dtype=np.float32)
    offset = 0
    for group, (sub_centres, sub_labels, sub_distances) in sorted(fitted.items()):
        members = np.flatnonzero(coarse_of_points == group)
        labels[members] = sub_labels + offset
        distances[members] = sub_distances
        centres.append(sub_centres)
        offset += sub_centres.shape[0]
    ran = str(backend) if fine == backend else f"{backend} coarse, {fine} groups"
    return np.concatenate(centres), labels, distances, {"method": "two_level", "backend": ran}
