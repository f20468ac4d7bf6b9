"""Domain curation: k-means on every backend (torch, numpy, faiss) and both methods, exactly K clusters from
two-level, chunks sized by K; strict label parsing; a cluster without a valid label is listed and, past the
recipe's limit, fails the step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datatrove.data import Document
from datatrove.pipeline.writers import JsonlWriter

from medrecipe.blocks import kmeans as kmeans_module
from medrecipe.blocks.base import StepFailed
from medrecipe.blocks.domain import VoteDomains, majority, nearest_per_cluster, parse_label
from medrecipe.blocks.kmeans import Backend, kmeans, seed_centres, shares


def _mixture(groups: int, per_group: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim)) * 10
    return np.concatenate([c + rng.normal(size=(per_group, dim)) for c in centres]).astype(np.float32)


@pytest.mark.parametrize("backend", ["torch", "numpy", "faiss"])
@pytest.mark.parametrize("method", ["lloyd", "two_level"])
def test_kmeans_finds_separated_clusters_on_every_backend(backend, method):
    points = _mixture(40, 30)  # K = 40: two_level runs its coarse and fine levels (it falls back to Lloyd at K <= 16)
    _, labels, distances, ran = kmeans(points, 40, 20, method, seed=0, backend=Backend.choose(backend))
    assert ran["method"] == method and ran["backend"].startswith(backend)
    groups = [set(labels[i * 30 : (i + 1) * 30]) for i in range(40)]
    # every planted group lands in one cluster; at most a couple of groups share one where seeding put two centres close
    assert sum(len(g) == 1 for g in groups) >= 38, method
    assert np.unique(labels).size == 40
    nearest = nearest_per_cluster(labels, distances, points, 3)
    assert sum(len(members) == 3 for members in nearest.values()) >= 38


def test_backends_agree_from_the_same_seeds():
    points = _mixture(12, 50, dim=32, seed=1)
    seeds = seed_centres(points, 20, np.random.default_rng(0))
    inertia = {}
    for name in ("torch", "numpy", "faiss"):
        backend = Backend.choose(name)
        centres = backend.refine(points, seeds, 10, seed=0)
        inertia[name] = float(backend.assign(points, centres)[1].sum())
    assert inertia["torch"] == pytest.approx(inertia["numpy"], rel=1e-4)
    assert inertia["faiss"] == pytest.approx(inertia["numpy"], rel=0.05)


@pytest.mark.parametrize("name", ["torch", "numpy"])
def test_lloyd_stops_when_no_point_changes_cluster_with_the_same_centres(name, monkeypatch):
    """`iterations` is a most: once the labels repeat, every further step gives the same centres (a recipe asking for
    2**31 iterations ran until killed, found by review)."""
    points = _mixture(12, 50, dim=32, seed=1)
    seeds = seed_centres(points, 12, np.random.default_rng(0))
    backend = Backend.choose(name)
    converged = backend.refine(points, seeds, 100, seed=0)
    steps = []
    assign = getattr(kmeans_module, f"_{name}_assign")
    monkeypatch.setattr(kmeans_module, f"_{name}_assign", lambda *args: steps.append(1) or assign(*args))
    assert np.array_equal(backend.refine(points, seeds, 10**6, seed=0), converged)
    assert len(steps) < 100


def test_two_level_returns_exactly_k_clusters_close_to_lloyd():
    points = _mixture(1000, 6, dim=24, seed=2)  # many small topics, as prompts are
    for k in (37, 250, 1500):
        centres, labels, _, _ = kmeans(points, k, 10, "two_level", seed=0, backend=Backend("numpy"))
        assert centres.shape[0] == k and np.unique(labels).size == k
    _, _, lloyd_distances, _ = kmeans(points, 250, 10, "lloyd", seed=0, backend=Backend("numpy"))
    _, _, two_level_distances, _ = kmeans(points, 250, 10, "two_level", seed=0, backend=Backend("numpy"))
    assert two_level_distances.sum() <= 1.1 * lloyd_distances.sum()


def test_shares_add_up_to_k_and_respect_group_sizes():
    rng = np.random.default_rng(3)
    for _ in range(200):
        sizes = rng.integers(0, 50, size=rng.integers(2, 30))
        if sizes.sum() == 0:
            continue
        k = int(rng.integers(1, sizes.sum() + 1))
        given = shares(sizes, k)
        assert given.sum() == k and (given <= sizes).all() and (given[sizes == 0] == 0).all()
        if k >= (sizes > 0).sum():
            assert (given[sizes > 0] >= 1).all()
        room = np.where(sizes > 0, rng.integers(1, np.maximum(sizes, 1) + 1), 0)  # different points, duplicates aside
        k = int(rng.integers(1, room.sum() + 1))
        given = shares(sizes, k, room)
        assert given.sum() == k and (given <= room).all()


def test_two_level_gives_every_cluster_members_when_prompts_repeat():
    """Several responses to one prompt make copies of its embedding. Two-level gave a group of copies as many centres
    as it has points, and the centres beyond its different points stayed empty (review: 19 of 40 clusters had
    members); a group now gets no more centres than it has different points."""
    rng = np.random.default_rng(0)
    repeated = rng.standard_normal((10, 8)).astype(np.float32) + 20  # 10 prompts, 30 responses each
    once = rng.standard_normal((90, 8)).astype(np.float32) - 20
    points = np.concatenate([np.repeat(repeated, 30, axis=0), once])
    for method in ("two_level", "lloyd"):
        centres, labels, _, _ = kmeans(points, 40, 10, method, seed=0, backend=Backend("numpy"))
        assert centres.shape[0] == 40 and np.unique(labels).size == 40, method
    # Copies that differ in their last bits (one prompt embedded in two batches) count as different points but
    # cannot all be told apart: the group of copies left centres empty (35 of 40 clusters had members); the centres
    # it cannot fill now go to the other group
    near = points + np.concatenate([rng.standard_normal((300, 8)) * 1e-6, np.zeros((90, 8))]).astype(np.float32)
    assert np.unique(near, axis=0).shape[0] > 100, "copies that differ in their last bits"
    centres, labels, _, _ = kmeans(near, 40, 10, "two_level", seed=0, backend=Backend("numpy"))
    assert centres.shape[0] == 40 and np.unique(labels).size == 40
    # 2,000 prompts with 8 responses in one topic and 8,000 with one: the default method on a CPU
    distinct = rng.standard_normal((10_000, 16)).astype(np.float32)
    distinct[:2000] += 6
    points = np.concatenate([np.repeat(distinct[:2000], 8, axis=0), distinct[2000:]])
    centres, labels, _, ran = kmeans(points, 5000, 3, "auto", seed=0, backend=Backend("numpy"))
    assert ran["method"] == "two_level" and np.unique(labels).size == 5000
    # Lloyd beyond 4,096 centres (a GPU's `auto`) seeded with random points put several centres on copies of one
    # prompt, and moved empty ones onto copies too (found by review: 3,257 of 5,000 clusters after one iteration)
    for name in ("numpy", "torch"):
        _, labels, _, _ = kmeans(points, 5000, 1, "lloyd", seed=0, backend=Backend(name))
        assert np.unique(labels).size == 5000, name


def test_an_empty_cluster_is_moved_onto_a_point():
    points = _mixture(4, 25, seed=4)
    seeds = np.stack([points[0], points[0], points[30], points[60], points[90]])  # two identical seeds: one stays empty
    for name in ("torch", "numpy"):
        backend = Backend(name)
        centres = backend.refine(points, seeds, 5, seed=0)
        assert np.unique(backend.assign(points, centres)[0]).size == 5, name


def test_assignment_chunks_follow_k_and_the_budget(monkeypatch):
    points = _mixture(8, 40, seed=5)
    centres = points[::7].copy()
    whole = Backend("numpy").assign(points, centres)
    monkeypatch.setattr(kmeans_module, "_CPU_BUDGET", 4 * centres.shape[0] * 3)  # three rows per chunk
    assert kmeans_module._chunk_rows(centres.shape[0], kmeans_module._CPU_BUDGET) == 3
    for name in ("numpy", "torch"):
        chunked = Backend(name).assign(points, centres)
        assert np.array_equal(chunked[0], whole[0]) and np.allclose(chunked[1], whole[1], atol=1e-3)


def test_auto_uses_the_device_present():
    backend = Backend.choose("auto")
    assert backend == (Backend("torch", "cuda") if kmeans_module.cuda_present() else Backend("numpy"))
    centres, _, _, ran = kmeans(_mixture(500, 10, dim=8, seed=6), 4200, 2, "auto", seed=0)
    assert centres.shape[0] == 4200
    assert (ran["method"], ran["backend"]) == (("lloyd", "torch (cuda)") if kmeans_module.cuda_present() else ("two_level", "numpy (cpu)"))


# --------------------------------------------------------------------------------------------------- labels


def test_labels_are_parsed_strictly():
    labels = ["Medical", "Biology", "Mathematics"]
    assert majority(["Mathematics", "Medical", "Medical"], labels) == "Medical"
    assert majority(["Mathematics", "Biology"], labels) == "Biology", "ties go to the label listed first"
    assert majority([None, "unknown"], labels) is None
    named = {" medical.": "Medical", "**Biology**": "Biology", "Label: Mathematics": "Mathematics",
             "The domain is Biology.": "Biology", "<think>a patient, so medical?</think>\nMedical": "Medical",
             "Medical\n\nIt asks about a patient.": "Medical"}
    for answer, label in named.items():
        assert parse_label(answer, labels) == label, answer
    for answer in ("not medical", "Non-medical", "Medical or Biology", "Medicine", "biomedical", "chemistry", "",
                   "It is not about biology but medicine", "Neither Medical nor Biology",
                   # sentences that name one label and deny it, which a list of negation words let through (review)
                   "Anything but Medical", "Other than Medical", "I cannot say it is Medical", "None of: Medical",
                   "Medical: false", "Medical is incorrect", "Medical (wrong)", "The domain is not Medical",
                   # reasoning cut off by max_tokens before its </think>: no answer yet
                   "<think>The question mentions enzymes, so biology", "<think>Is this Medical or"):
        assert parse_label(answer, labels) is None, answer
    assert parse_label("Medicine", labels, {"Medicine": "Medical"}) == "Medical"
    assert parse_label("The topic is medicine", labels, {"Medicine": "Medical"}) == "Medical"
    assert parse_label("The domain of this question is: **Mathematics**.", labels) == "Mathematics"


def test_labels_are_read_as_reasoning_models_and_markdown_write_them():
    """Found by review: a model whose chat template opens the think block (DeepSeek-R1's prompt ends "<think>\\n";
    vllm/reasoning/basic_parsers.py assumes such reasoning starts the output) answers "...</think>\\n\\nMedical", and
    every such answer named no label; so did a bold lead ("**Label:** Medical") and typographic quotes."""
    labels = ["Medical", "Biology", "Mathematics"]
    named = {"Okay, the patient has a fever, so this is clinical.\n</think>\n\nMedical": "Medical",
             "Enzymes... biology.</think>\n**Biology**": "Biology", "**Label:** Medical": "Medical",
             "**Answer**: Mathematics": "Mathematics", "\u201cBiology\u201d": "Biology", "_Medical_": "Medical"}
    for answer, label in named.items():
        assert parse_label(answer, labels) == label, answer
    # what the reasoning says is not the answer; nor is a bare reasoning cut off before its </think>
    for answer in ("Is it Medical?\n</think>\n\nNot Medical", "Medical, I think.\n</think>\n\n", "**Label:** not medical",
                   "<think>Medical?</think>\nNeither Medical nor Biology"):
        assert parse_label(answer, labels) is None, answer


def _vote(tmp_path, answers: dict[int, str | None], max_unlabeled: int, cut: tuple[int, ...] = ()) -> tuple[VoteDomains, dict]:
    """Clusters 0 (orders 0-2) and 1 (orders 3-5), representatives classified with the given answers, those of `cut`
    ended by max_tokens."""
    clusters = {"clusters": 2, "cluster_of": {str(o): o // 3 for o in range(6)},
                "representatives": {"0": [0, 1, 2], "1": [3, 4, 5]}}
    (tmp_path / "clusters.json").write_text(json.dumps(clusters))
    labels = ["Medical", "Mathematics"]
    with JsonlWriter(str(tmp_path / "classified"), output_filename="00000.jsonl.gz") as writer:
        for order, answer in answers.items():
            results = [] if answer is None else [{"label": parse_label(answer, labels), "answer": answer,
                                                  "finish_reason": "length" if order in cut else "stop"}]
            writer.write(Document(text="x", id=str(order), metadata={
                "order": order, "source": "traces", "rollout_results": results,
                "messages": [{"role": "user", "content": f"prompt {order}"}, {"role": "assistant", "content": "x"}]}))
    step = VoteDomains("domain_filter", str(tmp_path / "clusters.json"), str(tmp_path / "decisions" / "domain_filter.json"),
                       labels, ["Medical"], max_unlabeled, classified_folder=str(tmp_path / "classified"))
    return step, clusters


def test_a_cluster_without_a_valid_label_fails_the_step_and_is_listed(tmp_path):
    step, _ = _vote(tmp_path, {0: "Medical", 1: "Medical", 2: "not medical", 3: "Medicine", 4: "Maths", 5: None}, 0)
    with pytest.raises(StepFailed, match="1 of 2 clusters got no valid label"):
        list(step.run())
    listing = json.loads((tmp_path / "decisions" / "domain_filter-unlabeled.json").read_text())
    assert listing["clusters"] == [{"cluster": 1, "representatives": [
        {"order": 3, "prompt": "prompt 3", "answer": "Medicine", "finish_reason": "stop"},
        {"order": 4, "prompt": "prompt 4", "answer": "Maths", "finish_reason": "stop"},
        {"order": 5, "prompt": "prompt 5", "answer": None, "finish_reason": None}]}]
    assert not (tmp_path / "decisions" / "domain_filter.json").exists()


def test_answers_cut_off_at_max_tokens_are_named_as_such(tmp_path):
    """Found by review: a reasoning model spends the classifier's default 16 tokens inside its <think> block, every
    cluster went unlabeled, and the step said to map answers with synonyms, which cannot help."""
    thinking = "<think>\nOkay, the user asks about a patient with"
    step, _ = _vote(tmp_path, {0: "Medical", 1: "Medical", 2: "Medical", 3: thinking, 4: thinking, 5: "Maths"}, 0, cut=(3, 4))
    with pytest.raises(StepFailed, match=r"2 of their answers were cut off at `classifier.max_tokens`: raise it"):
        list(step.run())
    listing = json.loads((tmp_path / "decisions" / "domain_filter-unlabeled.json").read_text())
    assert [r["finish_reason"] for r in listing["clusters"][0]["representatives"]] == ["length", "length", "stop"]
    step, _ = _vote(tmp_path, {0: "Medical", 1: "Medical", 2: "Medical", 3: "Maths", 4: "Maths", 5: "Maths"}, 0)
    with pytest.raises(StepFailed) as failed:
        list(step.run())
    assert "max_tokens" not in str(failed.value)


def test_unlabeled_clusters_within_the_limit_are_removed_and_counted(tmp_path):
    step, _ = _vote(tmp_path, {0: "Medical", 1: "not medical", 2: None, 3: "Medicine", 4: "Maths", 5: None}, 1)
    list(step.run())
    decision = json.loads((tmp_path / "decisions" / "domain_filter.json").read_text())
    assert decision["labels"] == {"0": "Medical", "1": None} and decision["unlabeled_clusters"] == 1
    assert decision["remove"] == {"3": "unlabeled", "4": "unlabeled", "5": "unlabeled"}


def test_the_gpu_check_runs_small_on_any_machine(tmp_path):
    """benchmarks/gpu.py, the script the GPU machine runs, end to end at a small size (on the CPU here), with only
    what that machine has: none of medrecipe's other dependencies (found by review: importing medrecipe.blocks
    imported datatrove, which that machine lacks)."""
    import subprocess
    import sys

    from .conftest import REPO

    out = tmp_path / "gpu.json"
    absent = ("datatrove", "rapidfuzz", "ruamel", "faiss")  # medrecipe's, not those of torch, transformers or sentence-transformers
    script = f"""
import runpy, sys
sys.modules.update(dict.fromkeys({absent!r}))  # absent, as importlib and the libraries' probes see it
sys.argv = ["gpu.py", "--prompts", "600", "--clusters", "40", "--iterations", "3", "--subsample", "0.5", "--out", {str(out)!r}]
runpy.run_path({str(REPO / "benchmarks" / "gpu.py")!r}, run_name="__main__")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["full"]["clusters"] == 40 and report["model"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    assert {row["clusters"] for row in report["subsample"]["rows"].values()} == {20}
    assert "two_level on numpy (cpu)" in {row["ran"] for row in report["subsample"]["rows"].values()}


def test_a_prompt_is_embedded_once_per_batch_and_its_copies_share_its_vector(tmp_path):
    """Records sharing a prompt (its several responses) get its vector byte for byte, embedded once: copies embedded
    apart could differ in their last bits and count as different points in two-level k-means."""
    from medrecipe.blocks.domain import EmbeddingCollector, Encoder
    from medrecipe.blocks.record import build_record

    prompts = ["What causes Koplik spots?", "Which nerve supplies the deltoid?", "What causes Koplik spots?",
               "What causes Koplik spots?", "Name the drug of choice for absence seizures."]
    records = [Document(**build_record({"q": prompt, "r": f"answer {i}"}, {"prompt": "q", "response": "r"}, "src",
                                       "conversations", row_id=str(i), order=i)) for i, prompt in enumerate(prompts)]
    collector = EmbeddingCollector("domain_filter", str(tmp_path), {"model": "sentence-transformers/all-MiniLM-L6-v2"})
    collector.encoder = Encoder("sentence-transformers/all-MiniLM-L6-v2")
    encode, embedded = collector.encoder.encode, []
    collector.encoder.encode = lambda texts: embedded.append(list(texts)) or encode(texts)  # what it is asked to embed
    arrays = collector.arrays(records)
    assert embedded == [list(dict.fromkeys(prompts))]
    vectors = arrays["embeddings"]
    assert vectors.shape == (5, 384)
    assert vectors[0].tobytes() == vectors[2].tobytes() == vectors[3].tobytes()
    alone = encode([prompts[1]])[0]
    assert float(alone @ vectors[1]) > 0.999 and float(vectors[0] @ vectors[1]) < 0.9


def test_synonyms_cannot_redefine_a_label_or_mean_two_labels():
    """Found by review: answers are read case aside, and {Biology: Medical} silently counted every "Biology" answer as
    Medical; {medicine: Medical, Medicine: Biology} kept whichever came last."""
    from pydantic import ValidationError

    from medrecipe.recipe.model.steps import LLMClassifier

    for labels, synonyms, said in ((["Medical", "Biology"], {"biology": "Medical"}, "it is a label"),
                                   (["Medical", "Biology"], {"medicine": "Medical", "Medicine": "Biology"}, "to both"),
                                   (["Medical", "medical"], {}, "differ only in case")):
        with pytest.raises(ValidationError, match=said):
            LLMClassifier(backend="llm", labels=labels, synonyms=synonyms)
    fine = LLMClassifier(backend="llm", labels=["Medical", "Biology"], synonyms={"medicine": "Medical", "MEDICINE": "Medical",
                                                                                 "medical": "Medical"})
    assert parse_label("Medicine", fine.labels, fine.synonyms) == "Medical" == parse_label("medical", fine.labels, fine.synonyms)


def test_the_corpus_is_read_in_reading_order_holding_one_copy_of_the_vectors(tmp_path):
    """Found by review: the tasks' arrays were loaded, concatenated, then sorted into a copy: three copies of the
    corpus at once (10 GB for 2.3M prompts of 384 dimensions)."""
    import tracemalloc

    from medrecipe.blocks.base import save_arrays
    from medrecipe.blocks.domain import _corpus

    rng, tasks, per_task = np.random.default_rng(0), 4, 5000
    for rank in range(tasks):  # the tasks' records interleave in reading order, and task 2 collected none
        orders = np.arange(rank, tasks * per_task, tasks)[: 0 if rank == 2 else per_task]
        vectors = np.repeat(orders[:, None], 384, axis=1).astype(np.float32) + rng.random((orders.size, 384), dtype=np.float32) / 2
        save_arrays(str(tmp_path), rank, order=orders.astype(np.int64), embeddings=vectors)
    tracemalloc.start()
    orders, vectors = _corpus(str(tmp_path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(orders, np.sort(orders)) and orders.size == 3 * per_task
    assert np.array_equal(np.floor(vectors[:, 0]), orders) and np.array_equal(np.floor(vectors[:, -1]), orders)
    assert peak < 1.3 * vectors.nbytes, f"{peak / vectors.nbytes:.2f} copies of the corpus"


def test_prompts_are_told_apart_by_their_vectors_without_copying_them():
    """Found by review: np.unique over the rows' bytes made two copies of the corpus (7 GB at 2.3M x 384)."""
    import tracemalloc

    from medrecipe.blocks.kmeans import row_ids, row_keys

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((20000, 384)).astype(np.float32)
    vectors[1::3] = vectors[0::3][: vectors[1::3].shape[0]]  # a prompt's copies (several responses) share its vector
    vectors[5, -1] = np.nextafter(vectors[4, -1], np.inf)  # one embedded in another batch: its last bit differs
    tracemalloc.start()
    ids = row_ids(vectors, chunk=1024)  # two chunks of rows are compared at a time
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(ids, np.unique(row_keys(vectors), return_inverse=True)[1].ravel())
    assert ids[0] == ids[1] and ids[3] == ids[4] != ids[5]
    assert peak < 0.2 * vectors.nbytes, f"{peak / vectors.nbytes:.2f} copies of the corpus"
