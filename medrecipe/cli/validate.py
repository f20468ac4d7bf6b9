"""`medrecipe validate`: check a recipe, print one line, exit 0; or print every error, exit 2."""

from __future__ import annotations

import click

from .common import load, overrides_option, recipe_argument


def summary(recipe) -> str:
    parts = [f"{recipe.name}: {recipe.base_model}"]
    if recipe.data:
        parts.append(f"data {len(recipe.data.sources)} sources, {len(recipe.data.steps)} steps")
    if recipe.sft:
        parts.append(f"sft {recipe.sft.epochs} epochs at lr {recipe.sft.learning_rate:g}")
    if recipe.rl:
        parts.append(f"rl {recipe.rl.algorithm}" + (f" from {recipe.rl.init_from}" if recipe.rl.init_from != "sft" else ""))
    if recipe.eval:
        parts.append(f"eval {len(recipe.eval.benchmarks)} benchmarks")
    return "; ".join(parts)


@click.command(
    epilog="""\b
Examples:
  medrecipe validate recipes/ii-medical-8b-1706.yaml
  medrecipe validate ii-medical-8b-1706 --set sft.learning_rate=1e-5 --set compute.gpus_per_node=4
  medrecipe validate recipes/my-fork.yaml --quiet && echo valid
"""
)
@recipe_argument
@overrides_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (warnings included).")
def command(recipe: str, overrides: tuple[str, ...], quiet: bool) -> None:
    """Check RECIPE (a file or a shipped recipe's name): its YAML, every field, the rules between
    sections and what medrecipe knows of its benchmarks and base model. Every error is reported with
    its file:line:col; the exit code is 2 when there is any."""
    loaded, findings = load(recipe, overrides, warn=not quiet)
    if not quiet:
        warned = f" ({len(findings.warnings)} warnings)" if findings.warnings else ""
        click.echo(f"ok: {loaded.file}: {summary(loaded.recipe)}{warned}")
