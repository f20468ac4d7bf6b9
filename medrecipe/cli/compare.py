"""`medrecipe compare`: evaluation scores against a recipe's published results table, as a table and a chart."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from .common import load


@click.command(
    epilog="""\b
Examples:
  medrecipe compare build/ii-medical-8b-1706/eval/scores.json            # the recipe named in scores.json
  medrecipe compare scores.json --reference ii-medical-8b-1706 --png card/scores.png
  medrecipe compare build/my-fork/eval/scores.json --reference recipes/ii-medical-8b-1706.yaml
"""
)
@click.argument("scores_file", metavar="SCORES.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reference", metavar="RECIPE",
              help="Recipe (file or shipped name) whose eval.published table to compare with. Default: the recipe in SCORES.json.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the bar chart. Default: scores.png beside SCORES.json.")
def command(scores_file: Path, reference: str | None, png: Path | None) -> None:
    """Print SCORES.json (from `medrecipe run --stage eval`) beside the published table of the reference
    recipe: every published model, our scores with their standard errors, our difference to the row the
    recipe reproduces, and averages over the benchmarks both have. Each of our scores gets a 95 % interval (Wilson
    over its items for an accuracy, else ± 1.96 standard errors) and a verdict: `consistent` when the reproduced
    score lies inside it, else `higher` or `lower`. Also writes a bar chart for the model card, with the intervals."""
    from rich.console import Console

    from ..hub.cards.rendering import public_path
    from ..report import compare

    scores = compare.load_scores(scores_file)
    reference = reference or scores.get("recipe")
    if not reference:
        raise UserError(f"{scores_file} names no recipe", "name the one to compare with: --reference RECIPE")
    loaded, _ = load(reference, warn=False)
    published = loaded.recipe.eval.published if loaded.recipe.eval else None
    if published is None:
        raise UserError(f"the recipe {loaded.recipe.name!r} has no published results table (eval.published)",
                        "compare with a recipe that reproduces a published model, e.g. --reference ii-medical-8b-1706")
    comparison = compare.compare(scores, published)
    Console(width=max(120, 16 + 13 * (len(comparison.columns) + 1))).print(compare.table(comparison))
    chart = png or scores_file.with_name("scores.png")
    for line in compare.verdict_lines(comparison):
        click.echo(line)
    if not compare.can_plot():
        click.echo("chart: none, matplotlib is not installed: pip install 'medrecipe[plot]'")
        return
    compare.plot(comparison, chart, public_path(comparison.model))  # as a card names a local model: no local folders
    click.echo(f"chart: {chart}")
