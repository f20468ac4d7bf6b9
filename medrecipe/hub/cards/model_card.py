"""README.md of a model repository: huggingface_hub's ModelCardData metadata (with the model-index of the
scores), the training recipe, the data and the evaluation."""

from __future__ import annotations

import re

from huggingface_hub import EvalResult, ModelCardData

from ...catalog import benchmarks, checks
from ...recipe import LoadedRecipe
from ...recipe.model import (
    PolicyOptimization,
    Recipe,
    Reproduces,
)
from ...report.compare import score_text
from ..release import HubRepo, Release, hub_url
from .rendering import benchmark_link, markdown_text, public_path, recipe_text, render
from .training import RL_TITLES, rl_section, sft_rows


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_card(
    loaded: LoadedRecipe,
    release: Release,
    artifact: HubRepo,
    *,
    stats: dict | None = None,
    scores: dict | None = None,
    chart: str | None = None,
    rl_trained: bool = False,
) -> str:
    """README.md of a model repository. `scores` (eval/scores.json) and `chart` (the score chart's path in the
    repository) count only on the card of the model the recipe evaluates; `stats` feeds the data summary. An SFT
    card names the final model trained from it once `rl_trained` says it has been."""
    recipe = loaded.recipe
    evaluated = release.evaluated == artifact
    if not evaluated:
        scores, chart = None, None
    context = {
        "metadata": _model_metadata(loaded, release, artifact, scores).to_yaml(),
        "artifact": artifact,
        "release": release,
        "recipe": recipe,
        "overview": recipe.publish.card.overview or recipe.description,
        "base_model": _base_model(loaded, artifact),
        "methods": _methods(recipe, artifact),
        "final": release.get("model") if artifact.kind == "sft" and rl_trained else None,
        "rl_title": RL_TITLES[recipe.rl.algorithm] if recipe.rl else None,
        "reproduces": recipe.hub.reproduces or Reproduces(),
        "sft_rows": sft_rows(loaded) if recipe.sft and _trained_sft(recipe, artifact) else None,
        "rl": rl_section(recipe) if artifact.stage == "rl" else None,
        "data": _data_summary(loaded, release, artifact, stats),
        "evaluation": _evaluation(recipe, release, artifact, scores, chart),
        "usage": None if _reward_model(recipe, artifact) else _usage(recipe),
        "reward_server": _reward_server(recipe, artifact),
        "limitations": recipe.publish.card.limitations,
        "citation": recipe.publish.card.citation,
        "recipe_yaml": recipe_text(loaded),
    }
    return render("model_card.md.j2", context)


def _reward_model(recipe: Recipe, artifact: HubRepo) -> bool:
    """Whether the artifact is a reward model: it scores conversations, it does not generate."""
    return artifact.stage == "rl" and recipe.rl is not None and recipe.rl.algorithm == "reward_model"


def _reward_server(recipe: Recipe, artifact: HubRepo) -> dict | None:
    """How to serve a reward model. OpenRLHF saves it as its own `RewardModel` class (a value head on the language
    model, read at the last token), which vLLM and SGLang do not load; OpenRLHF's reward server does
    (openrlhf/cli/serve_rm.py at 0.11.2). Its requests carry whole conversations rendered as in training: the chat
    template, and the EOS appended where the template does not end with it (datasets/reward_dataset.py)."""
    if not _reward_model(recipe, artifact):
        return None
    assert recipe.rl is not None
    return {"max_len": recipe.rl.max_len}


def _trained_sft(recipe: Recipe, artifact: HubRepo) -> bool:
    """Whether the SFT stage is part of this model's history."""
    return artifact.stage == "sft" or (recipe.rl is not None and recipe.rl.init_from == "sft")


def _methods(recipe: Recipe, artifact: HubRepo) -> list[str]:
    methods = ["SFT"] if recipe.sft and _trained_sft(recipe, artifact) else []
    if artifact.stage == "rl":
        assert recipe.rl is not None
        methods.append(RL_TITLES[recipe.rl.algorithm])
    return methods


def _base_model(loaded: LoadedRecipe, artifact: HubRepo) -> str:
    """The model this one derives from: the SFT base, or where RL started when it did not start from SFT."""
    recipe = loaded.recipe
    if artifact.stage == "rl" and recipe.rl and recipe.rl.init_from != "sft":
        return public_path(recipe.rl.init_from)
    return public_path(checks.sft_base_model(loaded))


def _model_metadata(loaded: LoadedRecipe, release: Release, artifact: HubRepo, scores: dict | None) -> ModelCardData:
    recipe = loaded.recipe
    card = recipe.publish.card
    dataset = release.get("dataset")
    datasets = [dataset.repo_id] if dataset and _curated(recipe, artifact) else []
    datasets += [link["id"] for link in _named_data(loaded, artifact) if link["url"]]
    reward_model = _reward_model(recipe, artifact)
    methods = [method.lower().replace(" ", "-") for method in _methods(recipe, artifact)]
    base = _base_model(loaded, artifact)
    results = _eval_results(recipe, scores)
    return ModelCardData(
        base_model=base if _HUB_ID.match(base) else None,
        datasets=datasets or None,
        eval_results=results or None,
        model_name=artifact.name if results else None,  # the model-index's name; without results it has no use
        language=card.language,
        license=recipe.license,
        license_name=recipe.license_name,
        license_link=recipe.license_link,
        library_name="transformers",
        pipeline_tag="text-classification" if reward_model else "text-generation",
        tags=[*card.tags, *methods, "medrecipe"],
    )


def _eval_results(recipe: Recipe, scores: dict | None) -> list[EvalResult]:
    """One EvalResult per benchmark that has a score, in the recipe's order (the Hub's model-index)."""
    if not scores or recipe.eval is None:
        return []
    results = []
    for ref in recipe.eval.benchmarks:
        score = scores["benchmarks"].get(ref.name)
        if score is None:
            continue
        benchmark = benchmarks.of(recipe, ref.name)
        # The model index says a Hub dataset's split scored this: a local copy, the split's first `max_samples` items
        # (found by review: 400 of MedMCQA's 4,183 were claimed as its validation split) or the rows a filter keeps
        # (MMLU-Pro's health and biology questions, 1,535 of 12,032) are only in the card's table.
        if not benchmark.hub or ref.path or ref.max_samples or benchmark.where:
            continue
        results.append(
            EvalResult(
                task_type="text-generation",
                task_name="Medical question answering",
                dataset_type=benchmark.hub,
                dataset_name=benchmark.title,
                dataset_config=benchmark.subset,
                dataset_split=ref.split or benchmark.split,
                metric_type=score["metric"],
                metric_name=f"{score['metric']} (%)",
                metric_value=round(score["score"], 2),
            )
        )
    return results


def _hub_link(loaded: LoadedRecipe, path: tuple, value: str) -> dict:
    """{id, url} of a dataset the recipe names at `path`: a url when it is a Hub repository, not a local file."""
    is_hub = bool(_HUB_ID.match(value)) and not loaded.local_path(path).exists()
    return {"id": value if is_hub else public_path(value), "url": hub_url(value, "dataset") if is_hub else None}


def _curated(recipe: Recipe, artifact: HubRepo) -> bool:
    """Whether this model's SFT trained on the data stage's curated output."""
    return bool(recipe.data and recipe.sft and recipe.sft.datasets is None and _trained_sft(recipe, artifact))


def _named_data(loaded: LoadedRecipe, artifact: HubRepo) -> list[dict]:
    """Training data the recipe names directly (SFT datasets, RL prompts), as {role, id, url} links."""
    recipe = loaded.recipe
    links = []
    if recipe.sft and recipe.sft.datasets and _trained_sft(recipe, artifact):
        for index, item in enumerate(recipe.sft.datasets):
            links.append({"role": "SFT data", **_hub_link(loaded, ("sft", "datasets", index, "path"), item.path)})
    rl = recipe.rl
    if artifact.stage == "rl" and isinstance(rl, PolicyOptimization):
        links.append({"role": "RL prompts", **({"id": rl.data.hub, "url": hub_url(rl.data.hub, "dataset")} if rl.data.hub
                                              else {"id": public_path(rl.data.path), "url": None})})
    elif artifact.stage == "rl" and rl:
        links.append({"role": "Preference pairs", **_hub_link(loaded, ("rl", "data", "path"), rl.data.path)})
    return links


def _data_summary(loaded: LoadedRecipe, release: Release, artifact: HubRepo, stats: dict | None) -> dict:
    recipe = loaded.recipe
    reproduces = recipe.hub.reproduces
    curated = None
    if _curated(recipe, artifact):
        assert recipe.data is not None
        curated = {
            "dataset": release.get("dataset"),
            "records": stats["output"]["records"] if stats else None,
            "sources": len(recipe.data.sources),
            "steps": len(recipe.data.steps),
            "expected": recipe.data.expected_samples,
        }
    original = reproduces.dataset if reproduces else None
    return {
        "curated": curated,
        "named": _named_data(loaded, artifact),
        "original": {"id": original, "url": hub_url(original, "dataset")} if original else None,
    }


def _evaluation(recipe: Recipe, release: Release, artifact: HubRepo, scores: dict | None, chart: str | None) -> dict | None:
    """The eval table: this model's scores beside the published reference row, when the recipe has one;
    without scores, the reference row alone."""
    if recipe.eval is None:
        return None
    published = recipe.eval.published
    reference = published.scores[published.reproduces] if published else {}
    # The other published rows (another size, the paper's best) after the difference: the source may cite them.
    others = [name for name in published.scores if name != published.reproduces] if published else []
    header, align = ["Benchmark"], ["left"]
    # Only a boxed answer's benchmark counts answers without one: an evaluation by likelihood, or of HealthBench alone,
    # had a column of dashes that only a generative evaluation's text explains (found by review on Internist's card)
    unboxed = bool(scores) and any(entry.get("unboxed") is not None for entry in scores["benchmarks"].values())
    if scores:
        header += ["This model", "n", *(["Without `\\boxed{}`"] if unboxed else [])]
        align += ["right"] * (2 + unboxed)
    if published:
        header.append(f"{markdown_text(published.reproduces)} (published)")
        align.append("right")
    if scores and published:
        header.append("Difference")
        align.append("right")
    header += [f"{markdown_text(name)} (published)" for name in others]
    align += ["right"] * len(others)
    rows, ours, theirs = [], [], []
    for ref in recipe.eval.benchmarks:
        benchmark = benchmarks.of(recipe, ref.name)
        row = [benchmark_link(benchmark, ref.path)]
        score = scores["benchmarks"].get(ref.name) if scores else None
        if scores:
            measured = [score_text(score["score"], score["stderr"]), f"{score['n']:,}", _fraction(score["unboxed"])] if score else ["–"] * 3
            row += measured if unboxed else measured[:2]
        if published:
            row.append(_percent(reference.get(ref.name)))
        if scores and published:
            both = score is not None and ref.name in reference
            row.append(f"{score['score'] - reference[ref.name]:+.2f}" if both else "–")
            if both:
                ours.append(score["score"])
                theirs.append(reference[ref.name])
        row += [_percent(published.scores[name].get(ref.name)) for name in others]
        rows.append(row)
    if ours:
        complete = len(ours) == len(recipe.eval.benchmarks)
        mean_ours, mean_theirs = sum(ours) / len(ours), sum(theirs) / len(theirs)
        label = "**Average**" if complete else f"**Average** ({len(ours)} benchmark{'s' * (len(ours) > 1)})"
        rows.append([label, f"{mean_ours:.2f}", "", *[""] * unboxed, f"{mean_theirs:.2f}", f"{mean_ours - mean_theirs:+.2f}",
                     *[""] * len(others)])
    elif scores and not published:
        values = [scores["benchmarks"][ref.name]["score"] for ref in recipe.eval.benchmarks if ref.name in scores["benchmarks"]]
        if values:
            rows.append(["**Average**", f"{sum(values) / len(values):.2f}", "", *[""] * unboxed])
    return {
        "this": release.evaluated == artifact,
        "evaluated": release.evaluated,
        "model": recipe.eval.model,
        "header": header,
        "align": align,
        "unboxed": unboxed,
        "rows": rows,
        "generation": scores["generation"] if scores else None,
        "mode": scores.get("mode", "generative") if scores else None,
        "lighteval": scores["lighteval"] if scores else None,
        "reference": published.reproduces if published else None,
        "others": others,
        "source": published.source if published else None,
        "chart": chart,
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _fraction(value: float | None) -> str:
    """A fraction as a whole percentage; None (a score with no boxed answer to look for) as a dash."""
    return "–" if value is None else f"{100 * value:.0f}%"


def _usage(recipe: Recipe) -> dict | None:
    """Recommended sampling and prompt: the evaluation's, so that users see the model as it was scored. An evaluation
    by likelihood samples nothing (its sampling settings are the schema's unused defaults): only its prompt is said."""
    if recipe.eval is None:
        return None
    sampling, prompt = recipe.eval.sampling, recipe.eval.prompt
    return {
        "generative": recipe.eval.mode == "generative",
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "max_new_tokens": sampling.max_new_tokens,
        "prompt": prompt.template.replace("{instruction}", prompt.instruction),
        "example": f"<question>\n\n{prompt.instruction}",
    }
