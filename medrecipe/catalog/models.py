"""What medrecipe knows about base models: the facts that must change when a recipe changes its base model.

A fork that swaps the base model gets its chat template derived from the family, and its sequence
lengths and tensor-parallel sizes checked against the architecture, instead of silently inheriting
values that only fit the parent's model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    max_positions: int
    attention_heads: int
    kv_heads: int
    billions: float


# Axolotl chat template by model family, matched on the lower-cased model id, first match wins.
# Qwen3 trains with its own template (tokenizer_default), not Axolotl 0.19's `qwen3`: Qwen3's generation prompt is
# `<|im_start|>assistant\n`, after which the model opens <think> itself, as it learns to in SFT (the template renders
# the last assistant turn as `<think>\n...\n</think>\n\n...`): https://huggingface.co/Qwen/Qwen3-8B/blob/
# 895c8d171bc03c30e113cd7a28c02494b5e068b7/tokenizer_config.json (the add_generation_prompt branch). Axolotl's
# templates/qwen3.jinja ends the generation prompt with `<think>\n\n` instead; saved into the trained tokenizer, it
# would open the think block in every RL and evaluation prompt, unlike anything the model saw in training, and
# lighteval, which strips reasoning only between both tags, would pass the whole chain of thought to judges.
_FAMILIES = [
    (r"qwen3", "tokenizer_default"),
    (r"qwen2\.5|qwen2_5|qwen-2\.5", "qwen_25"),
    (r"llama-?3", "llama3"),
    (r"mistral|mixtral", "mistral_v1"),
    (r"gemma-?3", "gemma3"),
    (r"smollm", "chatml"),
    (r"phi-?3", "phi_3"),
]

# From each model's config.json (max_position_embeddings, num_attention_heads, num_key_value_heads).
KNOWN: dict[str, ModelFacts] = {
    "Qwen/Qwen3-0.6B": ModelFacts(40960, 16, 8, 0.6),
    "Qwen/Qwen3-1.7B": ModelFacts(40960, 16, 8, 1.7),
    "Qwen/Qwen3-4B": ModelFacts(40960, 32, 8, 4.0),
    "Qwen/Qwen3-8B": ModelFacts(40960, 32, 8, 8.2),
    "Qwen/Qwen3-14B": ModelFacts(40960, 40, 8, 14.8),
    "Qwen/Qwen3-32B": ModelFacts(40960, 64, 8, 32.8),
    "Qwen/Qwen2.5-7B-Instruct": ModelFacts(32768, 28, 4, 7.6),
    "Qwen/Qwen2.5-32B-Instruct": ModelFacts(32768, 40, 8, 32.8),
    "meta-llama/Meta-Llama-3-8B": ModelFacts(8192, 32, 8, 8.0),
    "meta-llama/Meta-Llama-3-8B-Instruct": ModelFacts(8192, 32, 8, 8.0),
    "meta-llama/Llama-3.1-8B": ModelFacts(131072, 32, 8, 8.0),
    "meta-llama/Llama-3.1-8B-Instruct": ModelFacts(131072, 32, 8, 8.0),
    "mistralai/Mistral-7B-v0.1": ModelFacts(32768, 32, 8, 7.2),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ModelFacts(8192, 9, 3, 0.135),
}


def chat_template_for(model: str) -> str | None:
    """Axolotl's chat template for a model id, from its family; None when the family is unknown."""
    lowered = model.lower()
    for pattern, template in _FAMILIES:
        if re.search(pattern, lowered):
            return template
    return None


def facts(model: str) -> ModelFacts | None:
    return KNOWN.get(model)
