"""README.md of the dataset repository: huggingface_hub's DatasetCardData metadata, the sources, every curation
step with its counts, and the decontamination."""

from __future__ import annotations

from typing import Any

from huggingface_hub import DatasetCardData

from ...catalog import benchmarks
from ...recipe import LoadedRecipe
from ...recipe.model import (
    DecontaminateFuzzy,
    DecontaminateNgram,
    NearDedup,
    Recipe,
    Reproduces,
)
from ...recipe.rules import step_names
from ..release import DATASET_FILES, HubRepo, Release, hub_url
from .rendering import benchmark_link, code_span, format_count, format_value, link, markdown_text, public_path, recipe_text, render


def dataset_card(loaded: LoadedRecipe, release: Release, artifact: HubRepo, *, stats: dict | None = None) -> str:
    """README.md of the dataset repository; `stats` is the data stage's stats.json."""
    # The output's columns come with the writer's module, which imports pyarrow and datatrove's writers (~0.3 s): at
    # the top, `medrecipe run` paid that before it started the data stage's fork server, and the stage waited for it.
    from ...blocks.output import columns

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
        "columns": columns(recipe.data.output.keep_metadata),  # those the data stage writes (blocks/output.py)
        "sources": _sources(recipe, stats),
        "steps": _steps(recipe, stats),
        "dedup": [_describe_dedup(step) for step in recipe.data.steps if isinstance(step, NearDedup)],
        "decontamination": _decontamination(recipe, stats),
        "limitations": recipe.publish.card.limitations,
        "recipe_yaml": recipe_text(loaded),
    }
    return render("dataset_card.md.j2", context)


def _size_category(records: int) -> str:
    """The Hub's size bucket for a record count: the values huggingface_hub's DatasetCardData documents."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
              (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T")]
    return next((label for bound, label in bounds if records < bound), "n>1T")


def _dataset_metadata(recipe: Recipe, artifact: HubRepo, records: int | None) -> DatasetCardData:
    assert recipe.data is not None
    card = recipe.publish.card
    hub_sources = list(dict.fromkeys(source.hub for source in recipe.data.sources if source.hub))
    return DatasetCardData(
        pretty_name=artifact.name,
        license=recipe.license,
        license_name=recipe.license_name,  # DatasetCardData keeps keys it has no argument for, and leaves out a None
        license_link=recipe.license_link,
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
            where = link(source.hub, source.url or hub_url(source.hub, "dataset"))
            # subset and split are names (validated); a file pattern may hold anything, and shows as code
            detail = [part for part in (source.subset, source.split) if part] + [code_span(f) for f in source.data_files or []]
        else:
            where = f"local {code_span(public_path(source.path))}"
            detail = []
        name = code_span(source.name) + (f" ({markdown_text(source.description)})" if source.description else "")
        expected = counts.get("expected") or source.expected_samples
        rows.append([name, where, " / ".join(detail), source.kind, source.group or "",
                     format_count(counts.get("read")), format_count(counts.get("kept")), format_count(expected)])
    if stats:
        total_read = sum(item["read"] for item in stats["sources"])
        rows.append(["**Total**", "", "", "", "", format_count(total_read), format_count(stats["output"]["records"]),
                     format_count(recipe.data.expected_samples)])
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
                "summary": step.summary(),
                "sources": step.sources,
                "params": _parameters(step.model_dump(mode="json", exclude={"name", "type", "sources"})),
                "counts": counts,
                "resolved": _parameters(counts.get("resolved") or {}) if counts else [],
            }
        )
    return steps


def _parameter_value(value: Any) -> str:
    """A parameter's value for a table: text as a code span (`<think>` stays visible), a list's items as escaped text."""
    if isinstance(value, str):
        return code_span(value)
    if isinstance(value, list):
        return ", ".join(markdown_text(format_value(item)) for item in value)
    return format_value(value)


def _parameters(values: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Step parameters as (dotted name, value) table rows, e.g. `kmeans.clusters`; unset ones are left out.
    Text is shown as code, so that values such as `<think>` stay visible in rendered Markdown; names are escaped,
    since a recipe writes the keys of some (classifier labels, synonyms)."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            rows += _parameters(value, f"{prefix}{key}.")
        elif value is not None:
            rows.append((markdown_text(f"{prefix}{key}"), _parameter_value(value)))
    return rows


def _describe_dedup(step: NearDedup) -> str:
    return (
        f"{step.ngram}-gram MinHash LSH on the {step.field} ({step.num_perm} permutations); records at Jaccard similarity "
        f">= {format_value(step.threshold)} are duplicates, the first one read is kept"
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
            methods.append(f"{step.n}-gram overlap (NFKC, lower case) between the {step.field} and the evaluation items ({scope}); "
                           f"questions shorter than {step.n} words matched whole")
        else:
            scope = "each question alone and with its options" if step.include_options else "each question alone"
            methods.append(
                f"fuzzy match (rapidfuzz ratio >= {format_value(step.threshold)}% on NFKC, lower-cased text without punctuation) between "
                f"the {step.field} and {scope}"
            )
    registry = benchmarks.known(recipe)
    copies = {ref.name: ref.path for ref in recipe.eval.benchmarks} if recipe.eval else {}
    return {
        "methods": methods,
        "benchmarks": [benchmark_link(registry[name], copies.get(name)) for name in names if name in registry],
    }
