"""`medrecipe show`: the fully resolved recipe as YAML."""

from __future__ import annotations

import click

from ..recipe.show import to_yaml
from .common import load, overrides_option, recipe_argument


@click.command(
    epilog="""\b
Examples:
  medrecipe show recipes/ii-medical-8b-1706.yaml
  medrecipe show recipes/my-fork.yaml --set sft.epochs=3 > resolved.yaml
  medrecipe show ii-medical-8b-1706 --no-comments
"""
)
@recipe_argument
@overrides_option
@click.option("--comments/--no-comments", default=True, help="Carry the source files' comments over (default: on).")
def command(recipe: str, overrides: tuple[str, ...], comments: bool) -> None:
    """Print RECIPE after `extends` and `--set` are applied and every default is filled in. The output is
    itself a valid recipe that loads back to the same thing, wherever it is saved (local paths are absolute)."""
    loaded, _ = load(recipe, overrides)
    click.echo(to_yaml(loaded, comments=comments, absolute_paths=True), nl=False)
