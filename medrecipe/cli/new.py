"""`medrecipe new`: fork a recipe into a new file that holds only the differences."""

from __future__ import annotations

from pathlib import Path

import click

from ..recipe.fork import write_fork
from .common import load, recipe_path


@click.command(
    epilog="""\b
Examples:
  medrecipe new ii-medical-qwen3-1.7b --from ii-medical-8b-1706 --set base_model=Qwen/Qwen3-1.7B
  medrecipe new my-run --from recipes/quickstart.yaml --set sft.epochs=1 --set compute.workers=4
  medrecipe new ii-medical-llama31 --from ii-medical-8b-1706 \\
      --set base_model=meta-llama/Llama-3.1-8B-Instruct --set hub.namespace=my-org
"""
)
@click.argument("name")
@click.option("--from", "parent", required=True, metavar="PARENT", help="Recipe to extend: a shipped recipe's name or a path.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="A value that differs from the parent. Repeatable.")
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where to write NAME.yaml (default: ./recipes).")
def command(name: str, parent: str, overrides: tuple[str, ...], directory: Path | None) -> None:
    """Write DIR/NAME.yaml that `extends` PARENT with only the given overrides, validate it, and
    refuse to overwrite an existing file."""
    target, extends = write_fork(name, parent, recipe_path(parent), directory or Path("recipes"), overrides,
                                 validate=lambda path, given, quiet: load(str(path), given, warn=not quiet)[0])
    click.echo(f"wrote {target} (extends {extends}; {len(overrides)} override{'s' if len(overrides) != 1 else ''}); "
               f"next: medrecipe plan {target}")
    if any(override.startswith("base_model=") for override in overrides) and not any(o.startswith("license=") for o in overrides):
        click.echo("note: the license is the parent's; the new base model's may differ: --set license=...")
