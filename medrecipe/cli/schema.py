"""`medrecipe schema`: write the recipe JSON Schema that editors use."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from ..recipe.registry import resource_dir
from ..recipe.schema import json_schema_text


@click.command(
    epilog="""\b
Examples:
  medrecipe schema                      # rewrite schemas/recipe.schema.json
  medrecipe schema --check              # exit 2 if the checked-in schema is stale
  medrecipe schema --out my.schema.json
Point an editor at it with a first line in the recipe:
  # yaml-language-server: $schema=../schemas/recipe.schema.json
"""
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write (default: schemas/recipe.schema.json).")
@click.option("--check", is_flag=True, help="Do not write; fail when the file differs from the model.")
def command(out: Path | None, check: bool) -> None:
    """Generate the JSON Schema of recipes from the pydantic model (field descriptions included)."""
    target = out or resource_dir("schemas") / "recipe.schema.json"
    text = json_schema_text()
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            raise UserError(f"{target} is stale", "run `medrecipe schema` and commit the result")
        click.echo(f"ok: {target} is up to date")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}")
