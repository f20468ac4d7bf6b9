"""`medrecipe compile`: the native inputs of every tool, written to a build folder."""

from __future__ import annotations

from pathlib import Path

import click

from ..compile.build import default_out
from ..compile.layout import STAGES
from .common import load, overrides_option, recipe_argument


@click.command(
    epilog="""\b
Examples:
  medrecipe compile recipes/ii-medical-8b-1706.yaml                 # -> build/ii-medical-8b-1706/
  medrecipe compile ii-medical-8b-1706 --out /shared/builds/iim --stage sft --stage rl
  medrecipe compile recipes/quickstart.yaml --check                 # also run the tools' own validators
"""
)
@recipe_argument
@overrides_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Build folder (default: build/<recipe name>).")
@click.option("--stage", "stages", multiple=True, type=click.Choice(STAGES), help="Compile only these stages. Repeatable.")
@click.option("--check", is_flag=True,
              help="Check each artifact with its tool's own validator in the tool's environment (`medrecipe env setup`).")
def command(recipe: str, overrides: tuple[str, ...], out: Path | None, stages: tuple[str, ...], check: bool) -> None:
    """Compile RECIPE into datatrove pipelines (data/plan.json), an Axolotl config (sft/), an OpenRLHF launch
    (rl/), a lighteval suite (eval/), plus recipe.resolved.yaml and lock.json. Whatever a tool cannot express
    exactly is printed as a warning naming the recipe field."""
    from rich.console import Console

    from ..compile.tool_checks import check_build
    from ..run import main_job

    loaded, _ = load(recipe, overrides)
    target = out or default_out(loaded)
    builds = main_job.build(loaded, target, list(stages) or None)
    console = Console(stderr=True)
    for build in builds:
        for warning in build.warnings:
            console.print(f"[yellow]warning[/] {build.stage}: {warning}")
    if check:
        check_build(loaded, target, [b.stage for b in builds if b.stage != "cards"], console)
    files = sorted({a.path for b in builds for a in b.artifacts} | {"recipe.resolved.yaml", "lock.json"})
    click.echo(f"compiled {loaded.recipe.name} -> {target}/")
    for path in files:
        click.echo(f"  {path}")
