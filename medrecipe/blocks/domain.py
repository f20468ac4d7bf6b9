"""Domain curation of reasoning traces: embed prompts, cluster them, classify the prompts nearest each centre,
vote per cluster, keep the clusters whose label the recipe keeps.

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


def load_encoder(model: str, device: str, max_seq_length: int | None):
    from sentence_transformers import SentenceTransformer

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = SentenceTransformer(sentence_transformer(model), device=device)
    if max_seq_length:
        encoder.max_seq_length = max_seq_length
    return encoder


def encode(encoder, texts: list[str], batch_size: int) -> np.ndarray:
    return encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                          show_progress_bar=False).astype(np.float32)


class EmbeddingCollector(ArrayCollector):
    """Embeds each selected record's prompt (collect part of domain_filter)."""

    def __init__(self, name: str, folder: str, model: str, batch_size: int, device: str, max_seq_length: int | None,
                 sources=None):
        super().__init__(name, folder, sources)
        self.model, self.device, self.max_seq_length = model, device, max_seq_length
        self.batch_size = max(batch_size, 1024)  # larger calls let sentence-transformers sort by length: less padding
        self.encode_batch = batch_size
        self.encoder = None

    def values(self, docs: list[Document]) -> np.ndarray:
        if self.encoder is None:
            self.encoder = load_encoder(self.model, self.device, self.max_seq_length)
        return encode(self.encoder, [field_text(d, "prompt") for d in docs], self.encode_batch)


# ------------------------------------------------------------------------------------------------ k-means


def _assign(points: np.ndarray, centres: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each point and the squared distance to it (matrix products, in chunks)."""
    labels = np.empty(points.shape[0], dtype=np.int64)
    distances = np.empty(points.shape[0], dtype=np.float32)
    centre_norms = (centres * centres).sum(axis=1)
    for start in range(0, points.shape[0], chunk):
        block = points[start : start + chunk]
        scores = block @ centres.T
        scores *= -2.0
        scores += centre_norms
        labels[start : start + chunk] = np.argmin(scores, axis=1)
        best = scores[np.arange(block.shape[0]), labels[start : start + chunk]]
        distances[start : start + chunk] = np.maximum(best + (block * block).sum(axis=1), 0.0)
    return labels, distances


def seed_centres(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (each new centre drawn in proportion to the squared distance to the nearest one):
    random seeds often put two centres in one group and leave another without. One matrix-vector product per
    centre, so for very large K (the groups of `two_level` stay small) random points are used instead."""
    if k > 4096:
        return points[rng.choice(points.shape[0], size=k, replace=False)].copy()
    norms = (points * points).sum(axis=1)
    centres = np.empty((k, points.shape[1]), dtype=np.float32)
    first = rng.integers(points.shape[0])
    centres[0] = points[first]
    nearest = np.maximum(norms - 2.0 * (points @ centres[0]) + norms[first], 0.0)
    for index in range(1, k):
        total = float(nearest.sum())
        chosen = rng.choice(points.shape[0], p=nearest / total) if total > 0 else rng.integers(points.shape[0])
        centres[index] = points[chosen]
        np.minimum(nearest, np.maximum(norms - 2.0 * (points @ centres[index]) + norms[chosen], 0.0), out=nearest)
    return centres


def refine(points: np.ndarray, centres: np.ndarray, iterations: int, seed: int) -> np.ndarray:
    """`iterations` Lloyd steps from the given centres (faiss when it is installed: its steps run at about the
    machine's matrix-product rate)."""
    k = centres.shape[0]
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        kmeans = faiss.Kmeans(points.shape[1], k, niter=iterations, seed=seed, verbose=False,
                              max_points_per_centroid=max(256, math.ceil(points.shape[0] / k)))
        kmeans.train(points, init_centroids=centres)
        return kmeans.centroids
    centres = centres.copy()
    for _ in range(iterations):
        labels, _ = _assign(points, centres)
        counts = np.bincount(labels, minlength=k)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        filled = counts > 0
        sums = np.add.reduceat(points[order], starts[filled], axis=0)
        centres[filled] = sums / counts[filled, None]
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
    coarse = lloyd(training, coarse_k, iterations, seed)
    coarse_of_training, _ = _assign(training, coarse)
    coarse_of_points, _ = _assign(points, coarse)
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
        sub_centres = lloyd(sub_training, int(max(1, shares[group])), iterations, seed + group + 1)
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
    vectors = np.concatenate([p["values"] for p in parts])
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
                 label_descriptions: dict[str, str] | None = None, model: str | None = None, device: str = "auto",
                 max_seq_length: int | None = None):
        super().__init__(name)
        self.clusters_file, self.decision_file = clusters_file, decision_file
        self.labels, self.keep = labels, keep
        self.classified_folder, self.embeddings_folder = classified_folder, embeddings_folder
        self.label_descriptions, self.model, self.device, self.max_seq_length = label_descriptions, model, device, max_seq_length

    def _labels_by_embedding(self, representatives: set[int]) -> dict[int, str]:
        orders, vectors = _corpus(self.embeddings_folder)
        wanted = np.isin(orders, np.fromiter(representatives, dtype=np.int64, count=len(representatives)))
        encoder = load_encoder(self.model, self.device, self.max_seq_length)
        descriptions = encode(encoder, [self.label_descriptions[label] for label in self.labels], 64)
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
