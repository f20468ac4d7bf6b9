"""The model and dataset cards: metadata built with huggingface_hub's own card classes, text from hub_cards/*.j2.

A card is a function of the recipe and of what the run has produced so far, passed in as data: without
scores the model card has no model-index and says how to evaluate; without the data stage's stats the
dataset card lists every curation step with its parameters and no counts. Nothing in a card depends on the
time or the machine, so an unchanged release renders the same bytes and re-publishing it makes no commit.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import DatasetCardData, EvalResult, ModelCardData

from ..catalog import benchmarks, checks
from ..recipe import LoadedRecipe
from ..recipe.derive import sft_batch
from ..recipe.model import (
    DecontaminateFuzzy,
    DecontaminateNgram,
    NearDedup,
    PolicyOptimization,
    PreferenceStage,
    Recipe,
    Reproduces,
)
from ..recipe.registry import resource_dir
from ..recipe.rules import step_names
from ..recipe.show import to_yaml
from .release import DATASET_FILES, HubRepo, Release, hub_url

RL_TITLES = {"dapo": "DAPO", "grpo": "GRPO", "dpo": "DPO", "reward_model": "Reward model"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_card(
    loaded: LoadedRecipe,
    release: Release,
    artifact: HubRepo,
    *,
    stats: dict | None = None,
    scores: dict | None = None,
    chart: str | None = None,
) -> str:
    """README.md of a model repository. `scores` (eval/scores.json) and `chart` (the score chart's path in the
    repository) count only on the card of the model the recipe evaluates; `stats` feeds the data summary."""
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
        "final": release.get("model") if artifact.kind == "sft" else None,
        "rl_title": RL_TITLES[recipe.rl.algorithm] if recipe.rl else None,
        "reproduces": recipe.hub.reproduces or Reproduces(),
        "sft_rows": _sft_rows(loaded) if recipe.sft and _trained_sft(recipe, artifact) else None,
        "rl": _rl_section(recipe) if artifact.stage == "rl" else None,
        "data": _data_summary(loaded, release, artifact, stats),
        "evaluation": _evaluation(recipe, release, artifact, scores, chart),
        "usage": _usage(recipe),
        "limitations": recipe.publish.card.limitations,
        "citation": recipe.publish.card.citation,
        "recipe_yaml": _recipe_text(loaded),
    }
    return _render("model_card.md.j2", context)


def dataset_card(loaded: LoadedRecipe, release: Release, artifact: HubRepo, *, stats: dict | None = None) -> str:
    """README.md of the dataset repository; `stats` is the data stage's stats.json."""
    recipe = loaded.recipe
    assert recipe.data is not None
    records = stats["output"]["records"] if stats else None
    context = {
        "metadata": _dataset_metadata(recipe, artifact, records).to_yaml(),
        "artifact": artifact,
        "release": release,
        "recipe": recipe,
        "model": release.get("model"),
        "reproduces": recipe.hub.reproduces or Reproduces(),
        "stats": stats is not None,
        "records": records,
        "files": len(stats["output"]["files"]) if stats else None,
        "sources": _sources(recipe, stats),
        "steps": _steps(recipe, stats),
        "dedup": [_describe_dedup(step) for step in recipe.data.steps if isinstance(step, NearDedup)],
        "decontamination": _decontamination(recipe, stats),
        "limitations": recipe.publish.card.limitations,
        "recipe_yaml": _recipe_text(loaded),
    }
    return _render("dataset_card.md.j2", context)


# --------------------------------------------------------------------------------------------- rendering


def _recipe_text(loaded: LoadedRecipe) -> str:
    """The resolved recipe for a card. to_yaml's first line names the recipe files by their path from the
    working directory; a card names them by file name, so that it does not change with the directory
    publish runs in (a changed card is a new commit) nor show a local path."""
    first, rest = to_yaml(loaded).split("\n", 1)
    assert first.startswith("# Resolved recipe:"), first
    return f"# Resolved recipe: {' <- '.join(Path(file).name for file in loaded.tree.files)}\n{rest}"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("hub_cards")),
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the render instead of vanishing from a card
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["cell"] = _cell
    environment.filters["text"] = markdown_text
    environment.filters["number"] = _number
    environment.filters["count"] = _count
    environment.filters["fence"] = _fence
    environment.filters["pystr"] = lambda text: json.dumps(text, ensure_ascii=False)  # a Python string literal
    return environment


def _render(template: str, context: dict) -> str:
    return _environment().get_template(template).render(context).rstrip("\n") + "\n"


def markdown_text(value: Any) -> str:
    """Text a recipe wrote, shown as text: HTML (<script>, onerror=...) escaped, and no inline link (a `](javascript:`
    written in a description stays words). Links a card shows are built by medrecipe from validated ids and URLs."""
    return html.escape(str(value), quote=False).replace("](", "]\\(")


def _cell(value: Any) -> str:
    """A value as a Markdown table cell: formatted, with pipes escaped and lines joined."""
    return _number(value).replace("|", "\\|").replace("\n", " ")


def _number(value: Any) -> str:
    """Recipe values as people write them: 5e-5, 0.28, 16378, yes/no, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
        return text
    if isinstance(value, (list, tuple)):
        return ", ".join(_number(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_number(item)}" for key, item in value.items())
    return "" if value is None else str(value)


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


# ------------------------------------------------------------------------------------------ model card


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
        return recipe.rl.init_from
    return checks.sft_base_model(loaded)


def _model_metadata(loaded: LoadedRecipe, release: Release, artifact: HubRepo, scores: dict | None) -> ModelCardData:
    recipe = loaded.recipe
    card = recipe.publish.card
    dataset = release.get("dataset")
    datasets = [dataset.repo_id] if dataset and _curated(recipe, artifact) else []
    datasets += [link["id"] for link in _named_data(loaded, artifact) if link["url"]]
    reward_model = artifact.stage == "rl" and recipe.rl is not None and recipe.rl.algorithm == "reward_model"
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
        benchmark = benchmarks.get(ref.name)
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


def _sft_rows(loaded: LoadedRecipe) -> list[tuple[str, Any]]:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    batch = sft_batch(sft, recipe.compute)
    global_batch = (
        f"{sft.batch.global_size} sequences" if sft.batch.global_size else f"{sft.batch.global_tokens} tokens"
    )
    if sft.warmup_steps is not None:
        warmup: Any = f"{sft.warmup_steps} steps"
    elif sft.warmup_ratio is not None:
        warmup = f"{_number(sft.warmup_ratio)} of all steps"
    else:
        warmup = "none"
    schedule = sft.lr_scheduler + (f", min lr {_number(sft.min_lr)}" if sft.min_lr is not None else "")
    rows: list[tuple[str, Any]] = [
        ("Base model", checks.sft_base_model(loaded)),
        ("Chat template", checks.chat_template(loaded)),
        ("Max sequence length", sft.sequence_len),
        ("Sample packing", sft.sample_packing),
        ("Epochs", sft.epochs),
        ("Global batch", global_batch),
        ("Micro batch x accumulation x GPUs", f"{batch.micro_batch_size} x {batch.gradient_accumulation} x {batch.gpus}"),
        ("Learning rate", sft.learning_rate),
        ("LR schedule", schedule),
        ("Warmup", warmup),
        ("Optimizer", f"{sft.optimizer} (betas {_number(sft.adam_betas)}, epsilon {_number(sft.adam_epsilon)})"),
        ("Weight decay", sft.weight_decay),
        ("Max grad norm", sft.max_grad_norm),
        ("NEFTune noise alpha", sft.neftune_noise_alpha if sft.neftune_noise_alpha is not None else "off"),
        ("Trained roles", sft.roles_to_train),
        ("Precision", "bf16" if sft.bf16 else "fp32"),
        ("Attention", sft.attention),
        ("Gradient checkpointing", sft.gradient_checkpointing),
        ("DeepSpeed", sft.deepspeed or "off"),
        ("Seed", recipe.seed),
    ]
    if sft.val_set_size:
        rows.append(("Validation split", sft.val_set_size))
    if sft.max_steps:
        rows.append(("Max steps", sft.max_steps))
    rows += [(f"Axolotl `{key}`", value) for key, value in sft.axolotl.items()]
    return rows


def _rl_section(recipe: Recipe) -> dict:
    rl = recipe.rl
    assert rl is not None
    start = "the SFT model above" if rl.init_from == "sft" else rl.init_from
    rows: list[tuple[str, Any]] = [("Initialised from", start)]
    if isinstance(rl, PolicyOptimization):
        overlong = "off"
        if rl.overlong:
            overlong = f"{rl.overlong.buffer_length} tokens, penalty factor {_number(rl.overlong.penalty_factor)}"
            overlong += ", truncated responses masked" if rl.overlong.filter else ""
        reward = f"{_number(rl.reward.correct)} correct, {_number(rl.reward.incorrect)} wrong"
        reward += " (an answer counts only inside `\\boxed{}`)" if rl.reward.require_box else ""
        rows += [
            ("Prompts", rl.data.hub or rl.data.path),
            ("Max prompt length", f"{rl.max_prompt_length} tokens"),
            ("Max response length", f"{rl.max_response_length} tokens"),
            ("Overlong buffer", overlong),
            ("Reward (rule-based verifier)", reward),
            ("Clip ratio low / high", f"{_number(rl.clip_ratio_low)} / {_number(rl.clip_ratio_high)}"),
            ("Rollout batch (train prompts)", rl.rollout_batch_size),
            ("Generation batch (prompts)", rl.generation_batch_size or rl.rollout_batch_size),
            ("Mini-batch (prompts)", rl.mini_batch_size),
            ("Responses per prompt", rl.samples_per_prompt),
            ("Rollout sampling", f"temperature {_number(rl.temperature)}, top-p {_number(rl.top_p)}, top-k {rl.top_k}"),
            ("Learning rate", rl.learning_rate),
            ("Warmup", _rl_warmup(rl)),
            ("Weight decay", rl.weight_decay),
            ("Loss aggregation", rl.loss_aggregation),
            ("Gradient clipping", rl.max_grad_norm),
            ("Entropy coefficient", rl.entropy_coef),
            ("KL coefficient", rl.kl_coef),
            ("Dynamic filtering", rl.dynamic_filtering),
        ]
    else:
        assert isinstance(rl, PreferenceStage)
        rows += [("Preference pairs", rl.data.path)]
        if rl.algorithm == "dpo":
            rows.append(("Beta", rl.beta))
        rows += [
            ("Max length", f"{rl.max_len} tokens"),
            ("Train batch (pairs)", rl.train_batch_size),
            ("Learning rate", rl.learning_rate),
            ("Warmup", _rl_warmup(rl)),
            ("Weight decay", rl.weight_decay),
            ("Gradient clipping", rl.max_grad_norm),
        ]
    schedule = rl.lr_scheduler + (f", down to {_number(rl.min_lr_ratio)} of the peak" if rl.lr_scheduler == "cosine" else "")
    rows += [
        ("LR schedule", schedule),
        ("Adam betas", rl.adam_betas),
        ("Epochs", rl.epochs),
        ("ZeRO stage", rl.zero_stage),
        ("Precision", "bf16" if rl.bf16 else "fp32"),
        ("Seed", recipe.seed),
    ]
    if rl.max_steps:
        rows.append(("Max steps", rl.max_steps))
    rows += [(f"OpenRLHF `--{flag}`", value) for flag, value in rl.openrlhf.items()]
    return {"title": RL_TITLES[rl.algorithm], "rows": rows}


def _hub_link(loaded: LoadedRecipe, path: tuple, value: str) -> dict:
    """{id, url} of a dataset the recipe names at `path`: a url when it is a Hub repository, not a local file."""
    is_hub = bool(_HUB_ID.match(value)) and not loaded.local_path(path).exists()
    return {"id": value, "url": hub_url(value, "dataset") if is_hub else None}


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
                                              else {"id": rl.data.path, "url": None})})
    elif artifact.stage == "rl" and rl:
        links.append({"role": "Preference pairs", **_hub_link(loaded, ("rl", "data", "path"), rl.data.path)})
    return links


def _rl_warmup(rl: PolicyOptimization | PreferenceStage) -> str:
    if rl.warmup_ratio is not None:
        return f"{_number(rl.warmup_ratio)} of all steps"
    return f"{rl.warmup_steps or 0} steps"


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
    header, align = ["Benchmark"], ["left"]
    if scores:
        header += ["This model", "n", "Without `\\boxed{}`"]
        align += ["right"] * 3
    if published:
        header.append(f"{markdown_text(published.reproduces)} (published)")
        align.append("right")
    if scores and published:
        header.append("Difference")
        align.append("right")
    rows, ours, theirs = [], [], []
    for ref in recipe.eval.benchmarks:
        benchmark = benchmarks.get(ref.name)
        row = [f"[{benchmark.title}]({hub_url(benchmark.hub, 'dataset')})"]
        score = scores["benchmarks"].get(ref.name) if scores else None
        if scores:
            row += [f"{score['score']:.2f} ± {score['stderr']:.2f}", f"{score['n']:,}", _fraction(score["unboxed"])] if score else ["–"] * 3
        if published:
            row.append(_percent(reference.get(ref.name)))
        if scores and published:
            both = score is not None and ref.name in reference
            row.append(f"{score['score'] - reference[ref.name]:+.2f}" if both else "–")
            if both:
                ours.append(score["score"])
                theirs.append(reference[ref.name])
        rows.append(row)
    if ours:
        complete = len(ours) == len(recipe.eval.benchmarks)
        mean_ours, mean_theirs = sum(ours) / len(ours), sum(theirs) / len(theirs)
        label = "**Average**" if complete else f"**Average** ({len(ours)} benchmarks)"
        rows.append([label, f"{mean_ours:.2f}", "", "", f"{mean_theirs:.2f}", f"{mean_ours - mean_theirs:+.2f}"])
    elif scores and not published:
        values = [scores["benchmarks"][ref.name]["score"] for ref in recipe.eval.benchmarks if ref.name in scores["benchmarks"]]
        if values:
            rows.append(["**Average**", f"{sum(values) / len(values):.2f}", "", ""])
    return {
        "this": release.evaluated == artifact,
        "evaluated": release.evaluated,
        "model": recipe.eval.model,
        "header": header,
        "align": align,
        "rows": rows,
        "generation": scores["generation"] if scores else None,
        "mode": scores.get("mode", "generative") if scores else None,
        "lighteval": scores["lighteval"] if scores else None,
        "reference": published.reproduces if published else None,
        "source": published.source if published else None,
        "chart": chart,
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _fraction(value: float | None) -> str:
    """A fraction as a whole percentage; None (a score with no boxed answer to look for) as a dash."""
    return "–" if value is None else f"{100 * value:.0f}%"


def _usage(recipe: Recipe) -> dict | None:
    """Recommended sampling and prompt: the evaluation's, so that users see the model as it was scored."""
    if recipe.eval is None:
        return None
    sampling, prompt = recipe.eval.sampling, recipe.eval.prompt
    return {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "max_new_tokens": sampling.max_new_tokens,
        "prompt": prompt.template.replace("{instruction}", prompt.instruction),
        "example": f"<question>\n\n{prompt.instruction}",
    }


# ---------------------------------------------------------------------------------------- dataset card


def _size_category(records: int) -> str:
    """The Hub's size bucket for a record count."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if records < bound), "n>1B")


def _dataset_metadata(recipe: Recipe, artifact: HubRepo, records: int | None) -> DatasetCardData:
    assert recipe.data is not None
    card = recipe.publish.card
    hub_sources = list(dict.fromkeys(source.hub for source in recipe.data.sources if source.hub))
    return DatasetCardData(
        pretty_name=artifact.name,
        license=recipe.license,
        language=card.language,
        task_categories=["text-generation", "question-answering"],
        size_categories=_size_category(records) if records is not None else None,
        source_datasets=hub_sources or None,
        tags=[*card.tags, "medrecipe"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": DATASET_FILES}]}],
    )


def _sources(recipe: Recipe, stats: dict | None) -> list[list[str]]:
    """One table row per source, plus a total row: where it is read from and what survived curation."""
    assert recipe.data is not None
    counted = {item["name"]: item for item in stats["sources"]} if stats else {}
    rows = []
    for source in recipe.data.sources:
        counts = counted.get(source.name, {})
        if source.hub:
            url = source.url or hub_url(source.hub, "dataset")
            where = f"[{source.hub}]({url})"
            detail = [part for part in (source.subset, source.split) if part] + list(source.data_files or [])
        else:
            where = f"local `{source.path}`"
            detail = []
        name = f"`{source.name}`" + (f" ({markdown_text(source.description)})" if source.description else "")
        expected = counts.get("expected") or source.expected_samples
        rows.append([name, where, " / ".join(detail), source.kind, source.group or "",
                     _count(counts.get("read")), _count(counts.get("kept")), _count(expected)])
    if stats:
        total_read = sum(item["read"] for item in stats["sources"])
        rows.append(["**Total**", "", "", "", "", _count(total_read), _count(stats["output"]["records"]),
                     _count(recipe.data.expected_samples)])
    return rows


def _steps(recipe: Recipe, stats: dict | None) -> list[dict]:
    assert recipe.data is not None
    counted = {item["name"]: item for item in stats["steps"]} if stats else {}
    steps = []
    for name, step in zip(step_names(recipe), recipe.data.steps):
        counts = counted.get(name)
        steps.append(
            {
                "name": name,
                "type": step.type,
                "summary": (type(step).__doc__ or "").strip().splitlines()[0],
                "sources": step.sources,
                "params": _parameters(step.model_dump(mode="json", exclude={"name", "type", "sources"})),
                "counts": counts,
                "resolved": _parameters(counts.get("resolved") or {}) if counts else [],
            }
        )
    return steps


def _parameters(values: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Step parameters as (dotted name, value) table rows, e.g. `kmeans.clusters`; unset ones are left out.
    Text is shown as code, so that values such as `<think>` stay visible in rendered Markdown."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            rows += _parameters(value, f"{prefix}{key}.")
        elif value is not None:
            rows.append((f"{prefix}{key}", _code(value) if isinstance(value, str) else _number(value)))
    return rows


def _code(text: str) -> str:
    """An inline code span that survives backticks inside the text."""
    text = text.replace("\n", " ")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def _describe_dedup(step: NearDedup) -> str:
    return (
        f"{step.ngram}-gram MinHash LSH on the {step.field} ({step.num_perm} permutations); records at Jaccard similarity "
        f">= {_number(step.threshold)} are duplicates, the first one read is kept"
        + ("; candidate pairs are confirmed by their MinHash estimate" if step.verify else "")
    )


def _decontamination(recipe: Recipe, stats: dict | None) -> dict | None:
    assert recipe.data is not None
    steps = [step for step in recipe.data.steps if isinstance(step, (DecontaminateNgram, DecontaminateFuzzy))]
    if not steps:
        return None
    if stats and stats.get("decontamination"):
        names = stats["decontamination"]["benchmarks"]
    else:
        default = [ref.name for ref in recipe.eval.benchmarks] if recipe.eval else []
        names = list(dict.fromkeys(name for step in steps for name in (step.benchmarks or default)))
    methods = []
    for step in steps:
        if isinstance(step, DecontaminateNgram):
            scope = "with their options" if step.include_options else "questions only"
            methods.append(f"{step.n}-gram overlap between the {step.field} and the evaluation items ({scope}); questions "
                           f"shorter than {step.n} words matched whole")
        else:
            scope = "each question alone and with its options" if step.include_options else "each question alone"
            methods.append(
                f"fuzzy match (rapidfuzz ratio >= {_number(step.threshold)}% on lower-cased text without punctuation) between "
                f"the {step.field} and {scope}"
            )
    known = [benchmarks.get(name) for name in names if name in benchmarks.BENCHMARKS]
    return {
        "methods": methods,
        "benchmarks": [f"[{b.title}]({hub_url(b.hub, 'dataset')})" for b in known],
    }
