"""Domain curation of reasoning traces: embed prompts, cluster them, classify the prompts nearest each centre,
vote per cluster, keep the clusters whose label the recipe keeps.

Embeddings are computed under bfloat16 autocast where the device multiplies bfloat16 in hardware (GPUs, and
CPUs with AMX or AVX512-BF16): about twice the float32 rate, with cosine agreement above 0.9999, which leaves
cluster assignments as they were. `embedding.precision: float32` turns it off.

K-means (blocks/kmeans.py) runs on torch where a GPU is present, else on numpy (torch or faiss when the recipe's
`kmeans.backend` asks); for many clusters on a CPU it clusters in two levels.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path

import numpy as np
import regex
from datatrove.data import Document, DocumentsPipeline

from ..envs.offline_models import sentence_transformer
from .base import ArrayCollector, CurationFilter, CurationStep, StepFailed, load_arrays
from .kmeans import Backend, kmeans, row_ids
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
    """Embeds each selected record's prompt (collect part of domain_filter).

    A prompt is embedded once per batch, and the records that share it (its several responses, which lie together in
    the reading order) get its vector. Embedded apart, two copies can differ in their last bits (a batch pads to its
    longest text, which changes the arithmetic), and two-level k-means, which gives a group no more centres than it
    has different points, counts them as two: a centre put on the second stays empty.
    """

    batch_size = 1024  # texts per encode call: sentence-transformers sorts a call's texts by length, less padding

    def __init__(self, name: str, folder: str, encoder: dict, sources=None):
        super().__init__(name, folder, sources)
        self.encoder_options = encoder
        self.encoder: Encoder | None = None

    def arrays(self, docs: list[Document]) -> dict[str, np.ndarray]:
        if self.encoder is None:
            self.encoder = Encoder(**self.encoder_options)
        prompts = [field_text(d, "prompt") for d in docs]
        row_of = {prompt: row for row, prompt in enumerate(dict.fromkeys(prompts))}
        vectors = self.encoder.encode(list(row_of))
        return {"embeddings": vectors[[row_of[prompt] for prompt in prompts]]}


def nearest_per_cluster(labels: np.ndarray, distances: np.ndarray, vectors: np.ndarray, n: int) -> dict[int, np.ndarray]:
    """Indices of the n points nearest their centre, per cluster, one of each prompt: the records that share a prompt
    (its several responses, or one prompt in two sources) share its vector, and were each a representative, so that
    a cluster's vote was one prompt's label asked n times (found by review). A prompt is its vector, byte for byte; it
    stands in its cluster at the smallest distance any of its copies got (copies assigned in different chunks can
    differ in the last bits, found by review) by its first record in reading order."""
    if labels.size == 0:
        return {}
    prompt = row_ids(vectors)
    by_prompt = np.lexsort((np.arange(labels.size), prompt, labels))
    cluster, kind = labels[by_prompt], prompt[by_prompt]
    starts = np.flatnonzero(np.concatenate(([True], (cluster[1:] != cluster[:-1]) | (kind[1:] != kind[:-1]))))
    first = by_prompt[starts]  # the first record of each prompt in each cluster
    nearest = np.minimum.reduceat(distances[by_prompt], starts)
    order = first[np.lexsort((first, nearest, labels[first]))]
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.diff(sorted_labels, prepend=-1))
    ends = np.append(starts[1:], order.size)
    return {int(sorted_labels[s]): order[s : min(e, s + n)] for s, e in zip(starts, ends)}


def majority(votes: list[str | None], labels: list[str]) -> str | None:
    """The most frequent label among the valid votes; ties go to the label listed first in the recipe."""
    counted = Counter(v for v in votes if v in labels)
    if not counted:
        return None
    top = max(counted.values())
    return next(label for label in labels if counted.get(label) == top)


_LEAD = regex.compile(r"^[*_]*(?:label|answer|domain|category)(?:[*_]+\s*[:：]|\s*[:：]\s*[*_]*)\s*", regex.IGNORECASE)
# The one sentence read as an answer: "The domain is Medical.", "The topic of this question is medicine".
_AFFIRMED = regex.compile(r"^(?:the|this)\s+(?:domain|label|category|answer|topic|field|subject)(?:\s+of\s+(?:the|this)\s+"
                          r"(?:question|prompt|text))?\s+is\s*[:：]?\s*(?P<name>.+)$", regex.IGNORECASE)
# Emphasis, quotes (straight and typographic) and a final period around a label: "**Medical.**", “Medical”, _Medical_.
_AROUND = "*_\"'`“”‘’. "


def final_answer(text: str) -> str | None:
    """The answer a model gave after its reasoning, or None while the reasoning is unclosed (cut off by max_tokens).

    Read as vLLM's reasoning parsers read it (vllm/reasoning/basic_parsers.py, `extract_reasoning`): a leading <think>
    is dropped, and the answer is what follows the first </think>. A chat template that opens the block itself
    (DeepSeek-R1's ends the prompt with "<think>\n") leaves a reasoning that starts bare and ends with </think>: the
    whole of it was read as the answer (found by review), where vLLM, which assumes the reasoning starts the output,
    does not. Text with neither tag is all answer: only a model that reasons writes them."""
    opened = text.lstrip().startswith("<think>")
    body = text.lstrip().removeprefix("<think>") if opened else text
    _, closed, answer = body.partition("</think>")
    if closed:
        return answer
    return None if opened else text


def parse_label(answer: str, labels: list[str], synonyms: dict[str, str] | None = None) -> str | None:
    """The label an LLM answered, or None.

    The answer (`final_answer`: what follows the reasoning) has a first line that is a label or a synonym the recipe
    maps to one, case, "Label:" (bold or not), emphasis, quotes and a final period aside; or it is one line saying "The
    domain (label, category, topic, ...) is <label>". Nothing else is read: a sentence can deny what it names ("Not
    medical", "Anything but Medical", "Medical is incorrect"), and reasoning cut off before its </think> has no answer
    yet.
    """
    names = {label.lower(): label for label in labels} | {word.lower(): label for word, label in (synonyms or {}).items()}
    text = final_answer(answer)
    if text is None:
        return None
    text = text.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    first = _LEAD.sub("", lines[0].strip()).strip(_AROUND).lower()
    if first in names:
        return names[first]
    affirmed = _AFFIRMED.match(text.strip(_AROUND)) if len(lines) == 1 else None
    return names.get(affirmed["name"].strip(_AROUND).lower()) if affirmed else None


# -------------------------------------------------------------------------------------------- resolve steps


def _corpus(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """Every embedded record's order and vector, in reading order. Each task's vectors are read from disk only as
    they are put in place (found by review: concatenating the tasks' arrays, then sorting a copy, held three copies of
    the corpus at once, 10 GB for 2.3M prompts of 384 dimensions, where this holds one)."""
    parts = [p for p in load_arrays(folder, memory_map=True) if p["order"].size]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32)
    orders = np.concatenate([p["order"] for p in parts])
    sort = np.argsort(orders, kind="stable")
    place = np.empty_like(sort)
    place[sort] = np.arange(sort.size)  # where each task's rows go in reading order
    vectors = np.empty((orders.size, parts[0]["embeddings"].shape[1]), dtype=np.float32)
    start = 0
    while parts:  # each task's file unmapped once its rows are in place: its pages count as the process's memory
        part = parts.pop(0)
        vectors[place[start : start + part["order"].size]] = part["embeddings"]
        start += part["order"].size
    return orders[sort], vectors


class ClusterPrompts(CurationStep):
    """K-means over every embedded prompt; writes each record's cluster and the records to classify."""

    def __init__(self, name: str, embeddings_folder: str, clusters_file: str, clusters: int, iterations: int,
                 method: str, max_training_points: int | None, nearest: int, seed: int, backend: str = "auto"):
        super().__init__(name)
        self.embeddings_folder, self.clusters_file = embeddings_folder, clusters_file
        self.clusters, self.iterations, self.method, self.backend = clusters, iterations, method, backend
        self.max_training_points, self.nearest, self.seed = max_training_points, nearest, seed

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        orders, vectors = _corpus(self.embeddings_folder)
        clusters: dict = {"clusters": 0, "cluster_of": {}, "representatives": {}}
        if orders.size:
            k = min(self.clusters, orders.size)
            _, labels, distances, ran = kmeans(vectors, k, self.iterations, self.method, self.seed, self.max_training_points,
                                               Backend.choose(self.backend))
            chosen = nearest_per_cluster(labels, distances, vectors, self.nearest)
            clusters = {
                "clusters": int(np.unique(labels).size),
                "kmeans": ran,
                "cluster_of": {str(int(o)): int(c) for o, c in zip(orders, labels)},
                "representatives": {str(c): [int(orders[i]) for i in idx] for c, idx in chosen.items()},
            }
        Path(self.clusters_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.clusters_file).write_text(json.dumps(clusters))
        return iter(())


class VoteDomains(CurationStep):
    """Majority vote of the representatives' labels per cluster; writes the records of clusters not kept.

    Labels come either from an LLM's answers (a folder of classified records) or, for the embedding
    classifier, from the nearest label description. A cluster none of whose representatives has a valid label
    (answers that name no label; a request the endpoint refused) is listed with their prompts and answers in
    `<decision>-unlabeled.json`; up to `max_unlabeled_clusters` of them are removed, more fail the step. The
    answers are kept, so a rerun alone gets the same ones: the step says which folders to remove to ask again
    (`classification_folders`; found by review: it said "rerun once the endpoint answers", and a rerun asked nothing).
    """

    def __init__(self, name: str, clusters_file: str, decision_file: str, labels: list[str], keep: list[str],
                 max_unlabeled_clusters: int = 0, classified_folder: str | None = None, embeddings_folder: str | None = None,
                 label_descriptions: dict[str, str] | None = None, encoder: dict | None = None,
                 classification_folders: list[str] | None = None):
        super().__init__(name)
        self.clusters_file, self.decision_file = clusters_file, decision_file
        self.labels, self.keep, self.max_unlabeled_clusters = labels, keep, max_unlabeled_clusters
        self.classified_folder, self.embeddings_folder = classified_folder, embeddings_folder
        self.label_descriptions, self.encoder = label_descriptions, encoder
        self.classification_folders = classification_folders or []

    def _labels_by_embedding(self, representatives: set[int]) -> dict[int, dict]:
        orders, vectors = _corpus(self.embeddings_folder)
        wanted = np.isin(orders, np.fromiter(representatives, dtype=np.int64, count=len(representatives)))
        descriptions = Encoder(**self.encoder).encode([self.label_descriptions[label] for label in self.labels])
        best = np.argmax(vectors[wanted] @ descriptions.T, axis=1)
        return {int(o): {"label": self.labels[b]} for o, b in zip(orders[wanted], best)}

    def _labels_by_llm(self) -> dict[int, dict]:
        from .segments import SegmentReader

        found = {}
        for doc in SegmentReader(self.classified_folder, glob_pattern="*.jsonl*").run():
            result = (doc.metadata.get("rollout_results") or [{}])[0]
            found[doc.metadata["order"]] = {"label": result.get("label"), "answer": result.get("answer"),
                                            "finish_reason": result.get("finish_reason"), "prompt": field_text(doc, "prompt")}
        return found

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        clusters = json.loads(Path(self.clusters_file).read_text())
        representatives = {int(o) for members in clusters["representatives"].values() for o in members}
        by_order = self._labels_by_embedding(representatives) if self.label_descriptions else self._labels_by_llm()
        cluster_label = {
            int(c): majority([by_order.get(o, {}).get("label") for o in members], self.labels)
            for c, members in clusters["representatives"].items()
        }
        unlabeled = [c for c, label in sorted(cluster_label.items()) if label is None]
        listing = Path(self.decision_file).with_name(Path(self.decision_file).stem + "-unlabeled.json")
        if unlabeled:
            listing.parent.mkdir(parents=True, exist_ok=True)
            listing.write_text(json.dumps({"clusters": [
                {"cluster": c, "representatives": [
                    {"order": o, **{key: by_order.get(o, {}).get(key) for key in ("prompt", "answer", "finish_reason")}}
                    for o in clusters["representatives"][str(c)]]}
                for c in unlabeled]}, indent=2, ensure_ascii=False))
        if len(unlabeled) > self.max_unlabeled_clusters:
            ask_again = (f"; or ask every representative again (the embeddings and clusters are kept): rm -rf "
                         f"{' '.join(shlex.quote(folder) for folder in self.classification_folders)}, then rerun"
                         if self.classification_folders else "")
            # An answer cut off at max_tokens names no label whatever the synonyms: a reasoning model spends the
            # default 16 tokens inside its <think> block (found by review: the step only said to map answers)
            cut = sum(by_order.get(o, {}).get("finish_reason") == "length" for c in unlabeled
                      for o in clusters["representatives"][str(c)])
            raise_tokens = (f"{cut} of their answers were cut off at `classifier.max_tokens`: raise it (a reasoning model "
                            f"needs room to reason before it answers). " if cut else "")
            raise StepFailed(
                f"{self.name}: {len(unlabeled)} of {len(cluster_label)} clusters got no valid label (the recipe accepts "
                f"{self.max_unlabeled_clusters}); their prompts and answers are in {listing}. {raise_tokens}Map answers to "
                f"labels with `classifier.synonyms`, or accept them by raising `max_unlabeled_clusters`{ask_again}.")
        dropped = {c for c, label in cluster_label.items() if label not in self.keep}
        decision = {
            "clusters": clusters["clusters"],
            "labels": {str(c): label for c, label in sorted(cluster_label.items())},
            "label_counts": dict(Counter(label or "unlabeled" for label in cluster_label.values())),
            "unlabeled_clusters": len(unlabeled),
            "kept_clusters": len(cluster_label) - len(dropped),
            "remove": {o: cluster_label[c] or "unlabeled" for o, c in clusters["cluster_of"].items() if c in dropped},
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
