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
# Qwen3 trains with ChatML. Qwen3's own template (https://huggingface.co/Qwen/Qwen3-8B/blob/
# 895c8d171bc03c30e113cd7a28c02494b5e068b7/tokenizer_config.json) writes system and user turns and its generation
# prompt, `<|im_start|>assistant\n`, exactly as ChatML does, and the model opens <think> itself. But it rewrites the
# last assistant turn, writing the `<think>\n` opener itself, and Axolotl's chat-template strategy leaves what the
# template writes out of the loss: the model would never be trained to open the block its generation prompt leaves
# to it. Axolotl 0.19's own `qwen3` template instead ends the generation prompt with `<think>\n\n` (one newline more
# than training shows), so prompts begin inside a think block the responses never open. With ChatML the whole
# assistant text, `<think>` included, carries the loss, and prompts end where it starts (`medrecipe inspect` checks
# both with Axolotl's, OpenRLHF's and lighteval's own code).
_FAMILIES = [
    (r"qwen3", "chatml"),
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
