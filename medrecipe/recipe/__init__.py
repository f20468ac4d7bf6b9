"""The recipe language: the pydantic model, the positional YAML loader, and the cross-field rules.

This package imports nothing else of medrecipe, so any layer may depend on it.
"""

from .errors import Position, Problem, RecipeError
from .model import Recipe
from .validate import LoadedRecipe, load_recipe

__all__ = ["LoadedRecipe", "Position", "Problem", "Recipe", "RecipeError", "load_recipe"]
