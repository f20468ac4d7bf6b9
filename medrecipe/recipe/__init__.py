"""The recipe language: the pydantic model, the positional YAML loader, and the cross-field rules.

This package imports nothing else of medrecipe, so any layer may depend on it. Its names load their modules on
first use: `medrecipe --help` and the untrusted-text helpers (`recipe.untrusted`, which every printed line passes)
need no pydantic model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import Position, Problem, RecipeError
    from .model import Recipe
    from .validate import LoadedRecipe, load_recipe

__all__ = ["LoadedRecipe", "Position", "Problem", "Recipe", "RecipeError", "load_recipe"]
_MODULES = {"Position": "errors", "Problem": "errors", "RecipeError": "errors", "Recipe": "model",
            "LoadedRecipe": "validate", "load_recipe": "validate"}


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
    globals()[name] = value
    return value
