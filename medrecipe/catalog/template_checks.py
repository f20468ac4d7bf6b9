"""The SFT chat template against the model it trains: its family's format, the format a chat model was tuned in, the
turn end its vocabulary holds, and the <think> opener of the Qwen3 templates. Errors fail `validate`; warnings are
printed."""

from __future__ import annotations

from . import models
from ..recipe import LoadedRecipe, Problem

AT = ("sft", "chat_template")


def check(loaded: LoadedRecipe, model: str, template: str) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of training `model` with `template`, the Axolotl template the recipe's resolves to: one
    problem at most, the first of another family's template, a format other than the one the model was tuned in, and
    a turn end its vocabulary lacks."""
    named = loaded.recipe.sft.chat_template
    own, kin, owner = models.chat_template_for(model), models.family(model), models.FAMILY_TEMPLATES.get(template)
    if named == "auto" and own is None:
        return [], [loaded.problem(AT, f"no chat template known for {model}; the tokenizer's own is used",
                                   "set sft.chat_template to an Axolotl template name")]
    if owner and kin and owner != kin:  # a fork onto another family that kept its parent's template (found by review)
        return [loaded.problem(AT, f"{template} is {owner}'s chat template, and {model} is a {kin} model: its tokenizer "
                               "lacks that format's tokens", f"chat_template: auto ({own} for {kin})")], []
    if owner and kin is None:  # found by review: a fork onto Gemma-2 kept llama3
        return [], [loaded.problem(AT, f"{template} is {owner}'s chat template, and medrecipe does not know {model}'s "
                                   f"family: unless it is a {owner} model, its tokenizer lacks that format's tokens",
                                   "chat_template: tokenizer_default (the model's own), or a template whose tokens its "
                                   "tokenizer has")]
    # found by review: chatml on Llama-3.2-1B-Instruct, alpaca on Qwen3-8B (a chat model the name did not say was one).
    # tokenizer_default, the tokenizer's own, and the family's own templates write the format it was tuned in.
    if own and template not in (own, "tokenizer_default") and not (owner and owner == kin) and models.chat_tuned(model):
        return [], [loaded.problem(AT, f"{model} was tuned to chat in the {own} format, and {template} writes another: "
                                   "the model is trained on a format it never saw, with turn tokens its tokenizer may "
                                   "lack", f"chat_template: auto ({own})")]
    end, held = models.TURN_ENDS.get(template), models.turn_ends(model)
    # found by review: chatml on Mistral-7B-v0.1 and Meta-Llama-3-8B. The SFT config makes the turn end the EOS
    # (special_tokens.eos_token), a token Axolotl 0.19.0 adds when the tokenizer lacks it (loaders/tokenizer.py:235-261,
    # add_special_tokens), and loaders/model.py:383-402 grows the embeddings for it: a new row no training has seen.
    if end and held is not None and end not in held:
        own_end = models.TURN_ENDS.get(own) if own else None  # none: the family's template ends turns with the EOS
        fits = own is not None and (own_end is None or own_end in held)
        return [], [loaded.problem(AT, f"{template} ends each turn with {end}, a token {model}'s vocabulary lacks: Axolotl "
                                   "adds it as a new token, its embedding untrained but for what this data teaches it",
                                   f"chat_template: auto ({own})" if fits else "a template whose turn end the tokenizer "
                                   "has, or alpaca, which ends turns with its EOS")]
    return [], []


def thinking(loaded: LoadedRecipe, model: str, template: str) -> list[Problem]:
    """A Qwen3 or Qwen3.5 model trained with Axolotl's `qwen3` or `qwen3_5` template or with its tokenizer's own never
    learns to open its <think> block: each writes the opener itself, outside the loss (catalog/models.py says how;
    Axolotl 0.19.0's templates/qwen3_5.jinja too, lines 96-103). The template checked is the one trained: `auto` picks
    ChatML for Qwen3, and the tokenizer's own for Qwen3.5, a version the catalog does not place (found by review)."""
    if template not in ("qwen3", "qwen3_5", "tokenizer_default") or "qwen3" not in model.lower():
        return []
    named = loaded.recipe.sft.chat_template
    named = named if named == template else f"{named} ({template} for {model})"
    hint = "auto (ChatML for Qwen3)" if models.family(model) == "Qwen3" else "a template that writes the whole answer, as chatml does"
    return [loaded.problem(AT, f"{named}: with this template Axolotl leaves the <think> opener of the answer out of the loss, "
                           "so the model is never trained to write it, and prompts end where no trained response begins",
                           f"chat_template: {hint}; `medrecipe inspect` shows both")]
