"""`compile --check`: every compiled artifact checked by its own tool, in the tool's environment."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import UserError
from ..recipe import LoadedRecipe
from .build import COMPILERS
from .layout import Layout


def check_build(loaded: LoadedRecipe, out: Path, stages: list[str], console) -> None:
    """Run `medrecipe.compile.<tool>.check(loaded, layout)` per stage; raise with every problem found."""
    layout = Layout(out.resolve(), loaded.recipe)
    problems: list[str] = []
    for stage in stages:
        module = importlib.import_module(COMPILERS[stage])
        found = module.check(loaded, layout)
        if found:
            problems += [f"{stage}: {problem}" for problem in found]
        else:
            console.print(f"[green]ok[/] {stage}: accepted by {module.TOOL}")
    if problems:
        raise UserError("the tools reject the compiled artifacts:\n  " + "\n  ".join(problems))
