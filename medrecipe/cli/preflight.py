"""`medrecipe preflight`: every Hub resource a recipe names, checked and read before any GPU is spent."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import folding_table, load, overrides_option, recipe_argument


@click.command(
    epilog="""\b
Examples:
  medrecipe preflight recipes/ii-medical-8b-1706.yaml
  medrecipe preflight ultramedical-llama3-8b --rows 10
  HF_TOKEN=hf_... medrecipe preflight recipes/my-fork.yaml --set data.sources.0.split=validation
"""
)
@recipe_argument
@overrides_option
@click.option("--rows", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Rows read from each dataset (the first that maps is shown).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the checks and the rows as each stage will see them to this JSON file.")
def command(recipe: str, overrides: tuple[str, ...], rows: int, json_file: Path | None) -> None:
    """Check, with your Hub token, every model and dataset RECIPE names (existence, revisions, configurations,
    files, gated access), read the first rows of every dataset through the recipe's mapping, and show one mapped
    record per source, one RL prompt with its label, one preference pair and one evaluation prompt per benchmark.
    Exit 2 with the recipe's file:line:col of every problem found."""
    from rich.console import Console
    from rich.markup import escape

    from ..recipe import RecipeError
    from ..recipe.untrusted import printable
    from ..run.preflight import preflight

    loaded, _ = load(recipe, overrides)
    report = preflight(loaded, rows)
    console = Console(highlight=False)
    table = folding_table("", "what", "name", "result", title=f"preflight of {loaded.recipe.name}", title_justify="left")
    for check in report.checks:
        table.add_row("[green]ok[/]" if check.ok else "[red]error[/]", check.what, escape(check.name), escape(printable(check.result)))
    console.print(table)
    titles = {"source": "source {}", "rl_prompt": "RL prompt (what the policy sees)",
              "preference_pair": "preference pair (as OpenRLHF splits it)", "eval_prompt": "evaluation prompt {}"}
    for sample in report.samples:
        console.rule(titles[sample.kind].format(sample.name), align="left")
        console.print(printable(sample.text), markup=False)
    if json_file:
        json_file.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report.problems:
        raise RecipeError(report.problems)
