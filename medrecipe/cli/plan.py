"""`medrecipe plan`: a readable dry run of the whole release."""

from __future__ import annotations

from pathlib import Path

import click

from ..compile.build import default_out
from ..compile.layout import Layout
from .common import folding_table, load, overrides_option, recipe_argument


@click.command(
    epilog="""\b
Examples:
  medrecipe plan recipes/ii-medical-8b-1706.yaml
  medrecipe plan ii-medical-8b-1706 --set compute.gpus_per_node=4 --set compute.nodes=2
  medrecipe plan recipes/my-fork.yaml --out /shared/builds/fork
"""
)
@recipe_argument
@overrides_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Build folder the plan refers to (default: build/<name>).")
def command(recipe: str, overrides: tuple[str, ...], out: Path | None) -> None:
    """Show, without running or writing anything: every stage, every curation step with its parameters, what
    each stage reads and writes, the derived numbers (per-device batch, gradient accumulation, steps), the
    evaluation tasks, the Hub repositories that would be created or updated, what the GPU stages will cost
    (tokens, FLOPs, GPU-hours, memory per GPU against the GPUs' with a verdict), and every warning."""
    from rich.console import Console

    from ..compile.plan import plan

    console = Console()
    loaded, findings = load(recipe, overrides, warn=False)
    recipe_ = loaded.recipe
    release = plan(loaded, out or default_out(loaded))
    console.rule(f"[bold]{recipe_.name}")
    console.print(f"{recipe_.description}\nbase model [bold]{recipe_.base_model}[/], seed {recipe_.seed}, license {recipe_.license}")
    console.print("from " + " <- ".join(str(f) for f in loaded.tree.files) + "".join(f"\n  --set {o}" for o in loaded.overrides))

    warnings = [str(w) for w in findings.warnings]
    for stage in release.stages:
        console.rule(f"[bold]{stage.stage}[/] (key {stage.key})")
        if stage.stage == "data":
            _data(console, recipe_, release.layout)
        if stage.derived:
            table = folding_table("derived", "value", show_header=False)
            for row in stage.derived:
                table.add_row(*row)
            console.print(table)
        _facts(console, stage.facts)
        warnings += [f"{stage.stage}: {w}" for w in stage.warnings]

    console.rule("[bold]hub")
    table = folding_table("artifact", "repository", "visibility")
    for row in release.repos:
        table.add_row(*row)
    console.print(table)
    if release.reproduces:
        console.print(f"reproduces {release.reproduces} (never pushed to by default)")
    _costs(console, release.costs)
    if warnings:
        console.rule("[bold yellow]warnings")
        for warning in warnings:
            console.print(f"[yellow]warning[/] {warning}")


def _costs(console, costs) -> None:
    """Tokens, FLOPs and GPU-hours per GPU stage, the memory verdicts, and what each figure rests on."""

    from ..compile.estimate import describe

    if not costs:
        return
    console.rule("[bold]cost")
    table = folding_table("stage", "model", "GPUs", "tokens", "FLOPs", "GPU-hours", "wall-clock hours", "memory per GPU")
    for cost in costs:
        verdicts = "; ".join(f"{m.phase}: {m.total_gib:,.1f} of {m.capacity_gib:g} GiB, {m.verdict}" for m in cost.memory)
        per = f" {cost.per}" if cost.per else ""
        table.add_row(cost.stage, cost.model, str(cost.gpus), describe(cost.tokens) + per if cost.tokens else "?",
                      describe(cost.flops) + per if cost.flops else "?",
                      f"{cost.gpu_hours:,.1f}{per}" if cost.gpu_hours is not None else "?",
                      f"{cost.wall_hours:,.1f}{per}" if cost.wall_hours is not None else "?", verdicts or "?")
    console.print(table)
    for cost in costs:
        for memory in cost.memory:
            parts = ", ".join(f"{what} {size:,.1f}" for what, size in memory.parts)
            console.print(f"[dim]{cost.stage}, {memory.phase} (GiB):[/] {parts}", highlight=False)
        for line in cost.basis:
            console.print(f"[dim]{cost.stage}:[/] {line}", highlight=False)
    console.print("[dim]How these are computed, and the sources: medrecipe/compile/estimate.py. Set compute.gpu to your GPUs "
                  "and their measured utilisation.[/]")


def _compact(params: dict, prefix: str = "") -> str:
    """`a=1, b.c=2`: nested settings flattened, long texts (prompt templates) abbreviated."""
    parts = []
    for key, value in params.items():
        if isinstance(value, dict) and value and all(isinstance(v, (str, int, float, bool, list, dict)) for v in value.values()):
            parts.append(_compact(value, f"{prefix}{key}."))
            continue
        text = str(value).replace("\n", " ")
        parts.append(f"{prefix}{key}={text if len(text) <= 60 else text[:40] + '…'}")
    return ", ".join(parts)


def _facts(console, facts: list[tuple[str, str]]) -> None:

    if facts:
        table = folding_table("", "", show_header=False, box=None)
        for key, value in facts:
            table.add_row(f"[dim]{key}[/]", value)
        console.print(table)


def _data(console, recipe, layout: Layout) -> None:

    from ..recipe.describe import describe_location, describe_mapping
    from ..recipe.rules import step_names

    data = recipe.data
    table = folding_table("source", "kind", "group", "location", "read as", "expected", title="sources", title_justify="left")
    for source in data.sources:
        table.add_row(source.name, source.kind, source.group or "", describe_location(source), describe_mapping(source.fields),
                      f"{source.expected_samples:,}" if source.expected_samples else "")
    console.print(table)
    console.print("[bold]curation steps[/]")
    for number, (step, name) in enumerate(zip(data.steps, step_names(recipe)), start=1):
        params = step.model_dump(mode="json", exclude={"name", "type", "sources"}, exclude_none=True)
        scope = ", ".join(step.sources) if step.sources else "all sources"
        console.print(f"  {number:>2}. [bold]{name}[/] ({step.type}, on {scope}): {_compact(params)}", highlight=False)
    console.print(f"reads: the sources above; writes: {layout.data_output()} (parquet), {layout.data_stats()}")
