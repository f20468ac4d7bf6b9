"""What every subcommand shares: the recipe argument, `--set` overrides, loading with checks."""

from __future__ import annotations

from pathlib import Path

import click

from ..catalog import checks
from ..recipe import LoadedRecipe, RecipeError, load_recipe
from ..recipe.errors import Position, Problem
from ..recipe.load import known_recipe_names, resolve_recipe_ref
from . import start_collecting

recipe_argument = click.argument("recipe", metavar="RECIPE")
overrides_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe value, parsed as YAML (e.g. --set sft.learning_rate=1e-5). Repeatable.",
)


def folding_table(*columns: str, **options):
    """A rich Table whose cells wrap where they do not fit, never cut to "…": a Hub id, a path or a model is read for
    its whole value (found by review: `plan` cut them at any width a terminal has, and when piped)."""
    from rich.table import Table

    table = Table(**options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def recipe_path(reference: str) -> Path:
    """A recipe given as a file path, or as the name of a shipped recipe (`ii-medical-8b-1706`)."""
    if Path(reference).is_file():
        return Path(reference)
    found = resolve_recipe_ref(reference)
    if found is None and Path(reference).is_dir():
        inside = sorted(str(path) for path in Path(reference).glob("*.y*ml"))
        hint = f"recipes in it: {', '.join(inside)}" if inside else "give a recipe file (.yaml) or a shipped recipe's name"
        raise RecipeError([Problem(Position(reference), "", "this is a folder, not a recipe file", hint)])
    if found is None:
        import difflib

        close = difflib.get_close_matches(Path(reference).stem, known_recipe_names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"shipped recipes: {', '.join(known_recipe_names())}"
        raise RecipeError([Problem(Position(reference), "", "no such recipe file or recipe name", hint)])
    return found


def load(reference: str, overrides: tuple[str, ...] = (), warn: bool = True) -> tuple[LoadedRecipe, checks.Findings]:
    """Load and check a recipe; errors raise RecipeError (exit 2), warnings are printed."""
    findings = checks.Findings()

    def semantic_errors(loaded: LoadedRecipe) -> list[Problem]:
        result = checks.check(loaded)
        findings.errors, findings.warnings = result.errors, result.warnings
        return result.errors

    loaded = load_recipe(recipe_path(reference), overrides, checks=semantic_errors)
    start_collecting()
    if warn:
        for problem in findings.warnings:
            click.echo(f"warning: {problem}", err=True)
    return loaded, findings
