"""Domain curation of reasoning traces: embed prompts, cluster them, classify the prompts nearest each centre,
vote per cluster, keep the clusters whose label the recipe keeps.

Embeddings are computed under bfloat16 autocast where the device multiplies bfloat16 in hardware (GPUs, and
CPUs with AMX or AVX512-BF16): about twice the float32 rate, with cosine agreement above 0.9999, which leaves
cluster assignments as they were. `embedding.precision: float32` turns it off.

K-means runs on faiss when it is installed (its Lloyd iterations run at about the matrix-product rate of
the machine), else on numpy. For very many clusters on a CPU, `two_level` clusters into sqrt(K) coarse
groups first and splits each group in proportion to its size: every iteration then compares a point with
about 2 sqrt(K) centres instead of K.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline

from ..offline_models import sentence_transformer
from .base import ArrayCollector, CurationFilter, CurationStep, load_arrays
from .record import field_text


def native_bfloat16(device: str) -> bool:
    """Whether `device` computes bfloat16 matrix products in hardware (elsewhere bfloat16 is emulated, and slower)."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class Encoder:
    """A sentence-transformers model with the recipe's device, batch size and precision."""

    def __init__(self, model: str, device: str = "auto", max_seq_length: int | None = None,
                 batch_size: int | None = None, precision: str = "auto"):
        import torch
        from sentence_transformers import SentenceTransformer

        self.device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = SentenceTransformer(sentence_transformer(model), device=self.device)
        if max_seq_length:
            self.model.max_seq_length = max_seq_length
        # Small batches on a CPU: sentence-transformers pads each batch to its longest text.
        self.batch_size = batch_size or (256 if self.device == "cuda" else 32)
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and native_bfloat16(self.device))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        import torch

        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bfloat16):
            vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32)


class EmbeddingCollector(ArrayCollector):
    """Embeds each selected record's prompt (collect part of domain_filter)."""

    batch_size = 1024  # texts per encode call: sentence-transformers sorts a call's texts by length, less padding

    def __init__(self, name: str, folder: str, encoder: dict, sources=None):
        super().__init__(name, folder, sources)
        self.encoder_options = encoder
        self.encoder: Encoder | None = None

    def arrays(self, docs: list[Document]) -> dict[str, np.ndarray]:
        if self.encoder is None:
            self.encoder = Encoder(**self.encoder_options)
        return {"embeddings": self.encoder.encode([field_text(d, "prompt") for d in docs])}


# ------------------------------------------------------------------------------------------------ k-means


def _nearest(points: np.ndarray, centres: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each point, and |centre|^2 - 2 point.centre for it (matrix products, in chunks)."""
    labels = np.empty(points.shape[0], dtype=np.int64)
    best = np.empty(points.shape[0], dtype=np.float32)
    centre_norms = np.einsum("ij,ij->i", centres, centres)
    for start in range(0, points.shape[0], chunk):
        scores = points[start : start + chunk] @ centres.T
        scores *= -2.0
        scores += centre_norms
        labels[start : start + chunk] = chosen = np.argmin(scores, axis=1)
        best[start : start + chunk] = scores[np.arange(scores.shape[0]), chosen]
    return labels, best


def _assign(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each point and the squared distance to it."""
    labels, best = _nearest(points, centres)
    return labels, np.maximum(best + np.einsum("ij,ij->i", points, points), 0.0)


def seed_centres(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds: each new centre drawn in proportion to the squared distance to the nearest one (random
    seeds often put two centres in one group and leave another without). Small sets use their matrix of pairwise
    distances, large ones a sample of 64 points per centre; beyond 4096 centres random points are used (the
    groups of `two_level` stay below that)."""
    if k > 4096:
        return points[rng.choice(points.shape[0], size=k, replace=False)].copy()
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


def refine(points: np.ndarray, centres: np.ndarray, iterations: int, seed: int, use_faiss: bool = True) -> np.ndarray:
    """`iterations` Lloyd steps from the given centres: faiss when it is installed (its steps run at about the
    machine's matrix-product rate), else numpy's matrix products, which also suit many small problems (faiss
    has a fixed cost per call)."""
    k = centres.shape[0]
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None and use_faiss:
        kmeans = faiss.Kmeans(points.shape[1], k, niter=iterations, seed=seed, verbose=False,
                              max_points_per_centroid=max(256, math.ceil(points.shape[0] / k)))
        kmeans.train(points, init_centroids=centres)
        return kmeans.centroids
    from scipy import sparse

    centres = centres.copy()
    ones, rows = np.ones(points.shape[0], dtype=np.float32), np.arange(points.shape[0])
    for _ in range(iterations):
        labels, _ = _nearest(points, centres)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        # A sparse one-hot (centre x point) matrix sums each centre's points in O(n d), whatever k is.
        sums = sparse.csr_matrix((ones, (labels, rows)), shape=(k, points.shape[0])) @ points
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def lloyd(points: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:
    """Centres after k-means++ seeding and `iterations` Lloyd steps."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    k = min(k, points.shape[0])
    return refine(points, seed_centres(points, k, np.random.default_rng(seed)), iterations, seed)


def kmeans(points: np.ndarray, k: int, iterations: int, method: str, seed: int, max_training_points: int | None = None):
    """(centres, label of each point, squared distance of each point to its centre)."""
    if method == "auto":
        method = "two_level" if k > 4096 and not _has_gpu() else "lloyd"
    rng = np.random.default_rng(seed)
    training = points
    if max_training_points and points.shape[0] > max_training_points:
        training = points[np.sort(rng.choice(points.shape[0], size=max_training_points, replace=False))]
    if method == "lloyd" or k <= 16:
        centres = lloyd(training, k, iterations, seed)
        labels, distances = _assign(points, centres)
        return centres, labels, distances
    coarse_k = max(2, round(math.sqrt(k)))
    # The coarse split needs no more than faiss's own default sample of 256 points per centre.
    coarse_training = training[np.sort(rng.choice(training.shape[0], size=256 * coarse_k, replace=False))] \
        if training.shape[0] > 256 * coarse_k else training
    coarse = lloyd(coarse_training, coarse_k, iterations, seed)
    coarse_of_points, _ = _assign(points, coarse)
    coarse_of_training = coarse_of_points if training is points else _assign(training, coarse)[0]
    sizes = np.bincount(coarse_of_training, minlength=coarse_k)
    shares = np.maximum(1, np.floor(k * sizes / sizes.sum()).astype(int)) * (sizes > 0)
    centres, labels, distances = [], np.empty(points.shape[0], dtype=np.int64), np.empty(points.shape[0], dtype=np.float32)
    offset = 0
    for group in range(coarse_k):
        members = np.flatnonzero(coarse_of_points == group)
        if members.size == 0:
            continue
        sub_training = training[coarse_of_training == group]
        if sub_training.shape[0] == 0:
            sub_training = points[members]
        # numpy beats faiss's fixed cost per call on these many small problems
        sub_training = np.ascontiguousarray(sub_training, dtype=np.float32)
        share = min(int(max(1, shares[group])), sub_training.shape[0])
        seeds = seed_centres(sub_training, share, np.random.default_rng(seed + group + 1))
        sub_centres = refine(sub_training, seeds, iterations, seed, use_faiss=False)
        sub_labels, sub_distances = _assign(points[members], sub_centres)
        labels[members] = sub_labels + offset
        distances[members] = sub_distances
        centres.append(sub_centres)
        offset += sub_centres.shape[0]
    return np.concatenate(centres), labels, distances


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def nearest_per_cluster(labels: np.ndarray, distances: np.ndarray, n: int) -> dict[int, np.ndarray]:
    """Indices of the n points nearest their centre, per cluster."""
    order = np.lexsort((distances, labels))
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.diff(sorted_labels, prepend=-1))
    ends = np.append(starts[1:], order.size)
    return {int(sorted_labels[s]): order[s : min(e, s + n)] for s, e in zip(starts, ends)}


def majority(votes: list[str], labels: list[str]) -> str | None:
    """The most frequent label; ties go to the label listed first in the recipe."""
    counted = Counter(v for v in votes if v in labels)
    if not counted:
        return None
    top = max(counted.values())
    return next(label for label in labels if counted.get(label) == top)


def parse_label(answer: str, labels: list[str]) -> str | None:
    """The label an LLM answered: an exact label, else the single label its text names."""
    text = answer.strip().strip(".*\"' ").lower()
    for label in labels:
        if text == label.lower():
            return label
    named = [label for label in labels if label.lower() in text]
    return max(named, key=len) if named else None


# -------------------------------------------------------------------------------------------- resolve steps


def _corpus(folder: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [p for p in load_arrays(folder) if p["order"].size]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32)
    orders = np.concatenate([p["order"] for p in parts])
    vectors = np.concatenate([p["embeddings"] for p in parts])
    sort = np.argsort(orders)
    return orders[sort], vectors[sort]


class ClusterPrompts(CurationStep):
    """K-means over every embedded prompt; writes each record's cluster and the records to classify."""

    def __init__(self, name: str, embeddings_folder: str, clusters_file: str, clusters: int, iterations: int,
                 method: str, max_training_points: int | None, nearest: int, seed: int):
        super().__init__(name)
        self.embeddings_folder, self.clusters_file = embeddings_folder, clusters_file
        self.clusters, self.iterations, self.method = clusters, iterations, method
        self.max_training_points, self.nearest, self.seed = max_training_points, nearest, seed

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        orders, vectors = _corpus(self.embeddings_folder)
        clusters: dict = {"clusters": 0, "cluster_of": {}, "representatives": {}}
        if orders.size:
            k = min(self.clusters, orders.size)
            _, labels, distances = kmeans(vectors, k, self.iterations, self.method, self.seed, self.max_training_points)
            chosen = nearest_per_cluster(labels, distances, self.nearest)
            clusters = {
                "clusters": int(np.unique(labels).size),
                "cluster_of": {str(int(o)): int(c) for o, c in zip(orders, labels)},
                "representatives": {str(c): [int(orders[i]) for i in idx] for c, idx in chosen.items()},
            }
        Path(self.clusters_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.clusters_file).write_text(json.dumps(clusters))
        return iter(())


class VoteDomains(CurationStep):
    """Majority vote of the representatives' labels per cluster; writes the records of clusters not kept.

    Labels come either from an LLM's answers (a folder of classified records) or, for the embedding
    classifier, from the nearest label description.
    """

    def __init__(self, name: str, clusters_file: str, decision_file: str, labels: list[str], keep: list[str],
                 classified_folder: str | None = None, embeddings_folder: str | None = None,
                 label_descriptions: dict[str, str] | None = None, encoder: dict | None = None):
        super().__init__(name)
        self.clusters_file, self.decision_file = clusters_file, decision_file
        self.labels, self.keep = labels, keep
        self.classified_folder, self.embeddings_folder = classified_folder, embeddings_folder
        self.label_descriptions, self.encoder = label_descriptions, encoder

    def _labels_by_embedding(self, representatives: set[int]) -> dict[int, str]:
        orders, vectors = _corpus(self.embeddings_folder)
        wanted = np.isin(orders, np.fromiter(representatives, dtype=np.int64, count=len(representatives)))
        descriptions = Encoder(**self.encoder).encode([self.label_descriptions[label] for label in self.labels])
        best = np.argmax(vectors[wanted] @ descriptions.T, axis=1)
        return {int(o): self.labels[b] for o, b in zip(orders[wanted], best)}

    def _labels_by_llm(self) -> dict[int, str]:
        from datatrove.pipeline.readers import JsonlReader

        found = {}
        for doc in JsonlReader(self.classified_folder, glob_pattern="*.jsonl*").run():
            results = doc.metadata.get("rollout_results") or []
            if results and results[0].get("label"):
                found[doc.metadata["order"]] = results[0]["label"]
        return found

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        clusters = json.loads(Path(self.clusters_file).read_text())
        representatives = {int(o) for members in clusters["representatives"].values() for o in members}
        by_order = self._labels_by_embedding(representatives) if self.label_descriptions else self._labels_by_llm()
        cluster_label = {
            int(c): majority([by_order.get(o) for o in members], self.labels)
            for c, members in clusters["representatives"].items()
        }
        dropped = {c for c, label in cluster_label.items() if label not in self.keep}
        decision = {
            "clusters": clusters["clusters"],
            "labels": {str(c): label for c, label in sorted(cluster_label.items())},
            "label_counts": dict(Counter(label or "unlabelled" for label in cluster_label.values())),
            "kept_clusters": len(cluster_label) - len(dropped),
            "remove": {o: cluster_label[c] or "unlabelled" for o, c in clusters["cluster_of"].items() if c in dropped},
        }
        Path(self.decision_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.decision_file).write_text(json.dumps(decision))
        return iter(())


class SelectRepresentatives(CurationFilter):
    """Passes on only the records chosen for classification (the input of the LLM classifier)."""

    def __init__(self, name: str, clusters_file: str, sources=None):
        super().__init__(name, sources)
        self.clusters_file = clusters_file
        self.chosen: set[int] = set()

    def prepare(self, rank: int) -> None:
        clusters = json.loads(Path(self.clusters_file).read_text())
        self.chosen = {int(o) for members in clusters["representatives"].values() for o in members}

    def selected(self, doc: Document) -> bool:
        return True  # records of other sources must not reach the classifier either

    def verdict(self, doc: Document) -> dict | None:
        return None if doc.metadata["order"] in self.chosen else {"reason": "not_a_representative"}


class RemoveDomains(CurationFilter):
    """Removes the records of clusters whose label the recipe does not keep (apply part of domain_filter)."""

    def __init__(self, name: str, decision_file: str, sources=None, exclusion_folder=None):
        super().__init__(name, sources, exclusion_folder)
        self.decision_file = decision_file
        self.remove: dict[int, str] = {}

    def prepare(self, rank: int) -> None:
        self.remove = {int(k): v for k, v in json.loads(Path(self.decision_file).read_text())["remove"].items()}

    def verdict(self, doc: Document) -> dict | None:
        label = self.remove.get(doc.metadata["order"])
        return None if label is None else {"reason": "domain", "cluster_label": label}
