"""A small release to publish in tests: a recipe with every stage, and the outputs its run would leave.

The outputs follow the stages' contracts (the data stage's parquet shards and stats.json, HF-format SFT and RL
model folders, eval/scores.json; publish draws the score chart itself), written directly so that publishing is tested
on its own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECIPE = """\
name: tiny-med
description: A tiny medical reasoning model, for publishing tests.
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
license: apache-2.0
hub:
  private: true
  reproduces:
    model: original-org/Tiny-Med
    dataset: original-org/Tiny-Med-Data
data:
  expected_samples: 10
  sources:
    - name: local-qa
      path: data/qa.jsonl
      fields: {prompt: question, response: answer_text, answer: answer}
      expected_samples: 8
      description: Local question-answer pairs
  steps:
    - type: min_prompt_words
      more_than: 3
    - type: near_dedup
      ngram: 4
      threshold: 0.7
    - type: decontaminate_ngram
      n: 8
sft:
  sequence_len: 512
  epochs: 1
  learning_rate: 5.0e-5
  batch: {global_size: 8, micro_batch_size: 1}
  deepspeed: null
  bf16: false
  attention: sdpa
rl:
  algorithm: dapo
  data: {path: data/rl.jsonl, fields: {prompt: question, answer: answer}}
  max_prompt_length: 256
  max_response_length: 512
  overlong: {buffer_length: 128, penalty_factor: 1.0}
  clip_ratio_high: 0.28
  rollout_batch_size: 4
  mini_batch_size: 2
  samples_per_prompt: 4
  learning_rate: 1.0e-6
  warmup_steps: 1
eval:
  benchmarks: [medmcqa, pubmedqa]
  backend: accelerate
  sampling: {temperature: 0.6, top_p: 0.9, max_new_tokens: 256}
  published:
    source: the Tiny-Med card
    reproduces: Tiny-Med
    scores:
      Tiny-Med: {medmcqa: 40.5, pubmedqa: 55.0}
publish:
  card:
    overview: Tiny-Med is a tiny test model.
    limitations: [Not for medical use]
    language: [en]
compute:
  gpus_per_node: 1
"""

QA = [
    {"question": f"Which vitamin deficiency causes condition number {i}?", "answer_text": f"Vitamin {i}.", "answer": str(i)}
    for i in range(10)
]


def write_recipe(folder: Path, text: str = RECIPE) -> Path:
    """recipe.yaml plus the local files it names."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(row) + "\n" for row in QA)
    (folder / "data" / "qa.jsonl").write_text(lines, encoding="utf-8")
    (folder / "data" / "rl.jsonl").write_text(lines, encoding="utf-8")
    path = folder / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_dataset(layout, shards: int = 2, records_per_shard: int = 4) -> list[Path]:
    """The data stage's output: parquet shards with the contract's columns, and stats.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    output = layout.data_output()
    output.mkdir(parents=True, exist_ok=True)
    for stale in output.glob("*.parquet"):
        stale.unlink()
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([("id", pa.string()), ("source", pa.string()), ("messages", pa.list_(message)),
                        ("answer", pa.string()), ("metadata", pa.string())])
    files = []
    for shard in range(shards):
        rows = [QA[(shard * records_per_shard + i) % len(QA)] for i in range(records_per_shard)]
        table = pa.table(
            {
                "id": [f"local-qa/{shard}-{i}" for i in range(len(rows))],
                "source": ["local-qa"] * len(rows),
                "messages": [[{"role": "user", "content": r["question"]},
                              {"role": "assistant", "content": f"<think>Recall.</think>{r['answer_text']}"}] for r in rows],
                "answer": [r["answer"] for r in rows],
                "metadata": ["{}"] * len(rows),
            },
            schema=schema,
        )
        path = output / f"{shard:05d}.parquet"
        pq.write_table(table, path)
        files.append(path)
    records = shards * records_per_shard
    stats = {
        "recipe": "tiny-med",
        "key": layout.keys["data"],
        "sources": [{"name": "local-qa", "location": "data/qa.jsonl", "read": 10, "kept": records, "expected": 8}],
        "steps": [
            {"name": "min_prompt_words", "type": "min_prompt_words", "params": {"more_than": 3}, "in": 10, "out": 10,
             "removed": 0, "by_source": {"local-qa": {"in": 10, "out": 10}}, "resolved": {}},
            {"name": "near_dedup", "type": "near_dedup", "params": {"ngram": 4, "threshold": 0.7}, "in": 10, "out": 9,
             "removed": 1, "by_source": {"local-qa": {"in": 10, "out": 9}}, "resolved": {"bands": 16, "rows": 8}},
            {"name": "decontaminate_ngram", "type": "decontaminate_ngram", "params": {"n": 8}, "in": 9, "out": records,
             "removed": 9 - records, "by_source": {"local-qa": {"in": 9, "out": records}}, "resolved": {}},
        ],
        "output": {"records": records, "files": [f"output/{p.name}" for p in files], "bytes": sum(p.stat().st_size for p in files)},
        "decontamination": {
            "benchmarks": ["medmcqa", "pubmedqa"],
            "excluded": {"decontaminate_ngram": "excluded/decontaminate_ngram.jsonl"},
        },
    }
    layout.data_stats().write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return files


def write_checkpoint(folder: Path, seed: str, weights_bytes: int = 300_000) -> None:
    """An HF-format model folder (deterministic bytes per seed) with the training state trainers leave beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "seed": seed}), encoding="utf-8")
    (folder / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "top_p": 0.9}), encoding="utf-8")
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(_bytes(seed, weights_bytes))
    (folder / "README.md").write_text("# trainer's own card\n", encoding="utf-8")
    (folder / "training_args.bin").write_bytes(_bytes(seed + "args", 100))
    (folder / "checkpoint-2").mkdir(exist_ok=True)
    (folder / "checkpoint-2" / "optimizer.pt").write_bytes(_bytes(seed + "optimizer", 1000))


CHECKPOINT_FILES = {"config.json", "generation_config.json", "tokenizer.json", "model.safetensors"}


def write_scores(layout, medmcqa: float = 41.25, pubmedqa: float = 52.0) -> None:
    scores = {
        "key": layout.keys["eval"],  # as run/eval.py writes them: the evaluation's key and the model it scored
        "model": str(layout.rl_output()),
        "lighteval": "0.13.0",
        "generation": {"temperature": 0.6, "top_p": 0.9, "top_k": None, "max_new_tokens": 256, "seed": 42},
        "benchmarks": {
            "medmcqa": {"score": medmcqa, "stderr": 1.5, "n": 400, "metric": "accuracy", "unboxed": 0.05},
            "pubmedqa": {"score": pubmedqa, "stderr": 2.0, "n": 200, "metric": "accuracy", "unboxed": 0.0},
        },
    }
    layout.eval_scores().parent.mkdir(parents=True, exist_ok=True)
    layout.eval_scores().write_text(json.dumps(scores, indent=2), encoding="utf-8")


def write_run(layout, scores: bool = True) -> None:
    """Everything a finished run of RECIPE leaves."""
    write_dataset(layout)
    write_checkpoint(layout.sft_output(), "sft")
    write_checkpoint(layout.rl_output(), "rl")
    if scores:
        write_scores(layout)


def _bytes(seed: str, size: int) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]

