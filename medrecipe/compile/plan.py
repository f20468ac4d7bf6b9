"""What `medrecipe plan` shows, computed without writing anything: per stage its key, the numbers derived for it
and what its compiler reports (facts and warnings), the Hub repositories the release would fill, and what the GPU
stages will cost (compile/estimate.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..recipe import LoadedRecipe
from ..recipe.derive import sft_batch, sft_steps_per_epoch
from .build import compile_stage, stages_of
from .estimate import StageCost, estimate
from .layout import Layout


@dataclass
class StagePlan:
    stage: str
    key: str  # the content key of the stage's folder
    derived: list[tuple[str, str]] = field(default_factory=list)  # numbers derived from the recipe (SFT steps)
    facts: list[tuple[str, str]] = field(default_factory=list)  # what the compiler chose, named
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReleasePlan:
    layout: Layout
    stages: list[StagePlan]
    repos: list[tuple[str, str, str]]  # (artifact, repository, visibility)
    reproduces: str | None  # the published artifacts the release reproduces (never pushed to by default)
    costs: list[StageCost]  # GPU-hours and memory of the GPU stages


def plan(loaded: LoadedRecipe, out: Path) -> ReleasePlan:
    """Compile every stage in memory and collect what `plan` prints; writes nothing."""
    recipe = loaded.recipe
    layout = Layout(out.resolve(), recipe)
    stages = []
    for stage in stages_of(loaded):
        build = compile_stage(loaded, layout, stage)
        stages.append(StagePlan(stage, layout.keys[stage], _derived(loaded) if stage == "sft" else [], build.facts,
                                build.warnings))
    namespace = recipe.hub.namespace or "<your account>"
    repos = []
    for artifact in recipe.published():  # what `publish` pushes (an SFT checkpoint only where RL follows it)
        kind = "dataset" if artifact == "dataset" else "model"
        repos.append((artifact, f"{namespace}/{recipe.repo_name(artifact)} ({kind})", "private" if recipe.hub.private else "public"))
    reproduces = None
    if recipe.hub.reproduces:
        reproduces = f"{recipe.hub.reproduces.model or ''} {recipe.hub.reproduces.dataset or ''}".strip()
    return ReleasePlan(layout, stages, repos, reproduces, estimate(loaded, layout))


def _derived(loaded: LoadedRecipe) -> list[tuple[str, str]]:
    """SFT's tokens per step and steps, from the batch arithmetic and the data size the recipe expects."""
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    batch = sft_batch(sft, recipe.compute)
    samples = recipe.data.expected_samples if recipe.data and sft.datasets is None else None
    steps = sft_steps_per_epoch(sft, recipe.compute, samples)
    rows = []
    if batch.requested_tokens:
        rows.append(("tokens per step", f"{batch.tokens_per_step:,} (requested {batch.requested_tokens:,}, {batch.token_deviation:+.1%})"))
    rows.append(("steps per epoch", f"{steps:,} ({samples:,} samples)" if steps else
                 "depends on the data size" + (" and packing" if sft.sample_packing else "")))
    if steps:
        rows.append(("total steps", f"{steps * sft.epochs:,} ({sft.epochs} epochs)"))
    return rows
