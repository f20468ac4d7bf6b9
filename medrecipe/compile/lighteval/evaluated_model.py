"""The evaluated model as lighteval receives it: which model, its context length and generation parameters."""

from __future__ import annotations

from pathlib import Path

from ...catalog import models
from ...recipe import LoadedRecipe
from ..layout import Layout


def scores_of_model(layout: Layout, model: str) -> dict | None:
    """The build's eval/scores.json when it holds this evaluation's (the eval stage's key) scores of `model`, as
    run/eval.py writes them; None otherwise. It has one place in a build, which an evaluation of another model
    (`run --stage eval --model ...`) or of an earlier training writes too."""
    from ..build import written_json

    scores = written_json(layout.eval_scores())
    return scores if scores and scores.get("key") == layout.keys["eval"] and scores.get("model") == model else None


def default_model(loaded: LoadedRecipe, layout: Layout) -> str | Path:
    """What `eval.model` names: a stage's output folder, a local folder, or a Hub id."""
    recipe = loaded.recipe
    choice = recipe.evaluated_model()
    if choice == "rl":
        return layout.rl_output()
    if choice == "sft":
        return layout.sft_output()
    if choice == "base":
        return loaded.local_or_hub(("base_model",))
    return loaded.local_or_hub(("eval", "model"))


def max_model_length(loaded: LoadedRecipe) -> int:
    """The context lighteval is given (Eval.context_length), within the model's positions when known (vLLM refuses a
    longer context than the model's; validation refuses an answer budget that does not leave the prompt its room)."""
    recipe = loaded.recipe
    ev = recipe.eval
    assert ev is not None
    if ev.max_model_length:
        return ev.max_model_length
    bounds = models.limits(recipe.evaluated_architecture())
    return min(ev.context_length(), bounds.max_positions) if bounds else ev.context_length()


def samples(loaded: LoadedRecipe) -> bool:
    ev = loaded.recipe.eval
    assert ev is not None
    return ev.mode == "generative" and ev.sampling.temperature > 0


def generation_parameters(loaded: LoadedRecipe) -> dict:
    """lighteval's GenerationParameters for the recipe. No top-k (unset, or -1) is no top_k for vLLM, whose default is
    none, and top_k 0 for the accelerate backend: transformers' generate() would otherwise take the model's
    generation_config.json value or its own default, 50 (found by review)."""
    recipe = loaded.recipe
    assert recipe.eval is not None
    sampling = recipe.eval.sampling
    parameters: dict = {"temperature": sampling.temperature, "top_p": sampling.top_p}
    if sampling.top_k is not None and sampling.top_k >= 0:
        parameters["top_k"] = sampling.top_k
    elif recipe.eval.backend == "accelerate":
        parameters["top_k"] = 0
    parameters["max_new_tokens"] = sampling.max_new_tokens
    parameters["seed"] = recipe.seed
    return parameters
