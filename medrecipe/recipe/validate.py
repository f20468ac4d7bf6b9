"""Validate loaded recipe data against the model, reporting every error at the line that caused it."""

from __future__ import annotations

import difflib
import glob
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from . import rules
from .errors import Problem, RecipeError, dotted
from .load import Tree, load_tree
from .overrides import apply_override
from .model import Recipe
from .model.basics import PATTERN_WORDS
from .untrusted import printable


@dataclass
class LoadedRecipe:
    """A validated recipe with where each value came from."""

    recipe: Recipe
    tree: Tree
    file: Path
    overrides: tuple[str, ...] = ()

    def local_path(self, path: tuple) -> Path:
        """The file a recipe value names, resolved against the folder of the recipe file that wrote it
        (a parent's relative paths stay relative to the parent); `--set` values are relative to the working directory."""
        value = Path(str(self._value(path))).expanduser()
        if value.is_absolute():
            return value
        position = self.tree.value_pos.get(path)
        if position is None or position.file not in self.tree.sources:
            return Path.cwd() / value
        return self.tree.sources[position.file].parent / value

    def local_or_hub(self, path: tuple) -> Path | str:
        """What a value that may name a local folder or file or a Hub id (a model, an SFT dataset) names: the local path
        (local_path) where it is written as one (/, ., ~) or exists here, else the Hub id as written."""
        value = str(self._value(path))
        local = self.local_path(path)
        return local if value.startswith(("/", ".", "~")) or local.exists() else value

    def set_on_command_line(self, path: tuple) -> bool:
        """Whether the value at `path` was given with --set, not written in a recipe file: known by the file it came
        from, not by its label (found by review: a parent recipe file named `--set x.yaml` passed for the command line)."""
        where = self.tree.position(path)
        return where is not None and where.file not in self.tree.sources

    def data_paths(self) -> list[tuple]:
        """The recipe paths of the data it reads by path: sources and benchmark copies (always local files), SFT datasets
        and RL prompts (a local file or a Hub id)."""
        recipe = self.recipe
        paths = [("data", "sources", i, "path") for i, s in enumerate(recipe.data.sources if recipe.data else []) if s.path]
        paths += [("eval", "benchmarks", i, "path") for i, b in enumerate(recipe.eval.benchmarks if recipe.eval else []) if b.path]
        paths += [("sft", "datasets", i, "path") for i, _ in enumerate(recipe.sft.datasets or [] if recipe.sft else [])]
        return paths + ([("rl", "data", "path")] if getattr(getattr(recipe.rl, "data", None), "path", None) else [])

    def data_folders(self) -> list[tuple[tuple, Path]]:
        """(recipe path, folder) of every local folder the recipe reads data from (data_paths): a folder, or the folder a
        glob starts in. Hub ids and single files are not folders."""
        folders = []
        for path in self.data_paths():
            where = self.local_path(path)
            if glob.has_magic(str(where)):
                where = next(parent for parent in where.parents if not glob.has_magic(str(parent)))
            if where.is_dir():
                folders.append((path, where.resolve()))
        return folders

    def _value(self, path: tuple):
        node = self.tree.data
        for part in path:
            node = node[part]
        return node

    def problem(self, path: tuple, message: str, hint: str | None = None) -> Problem:
        """A problem found later (by semantic checks), placed at the line that set `path`."""
        return Problem(self.tree.position(path), dotted(path), message, hint)


def load_recipe(
    file: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    checks: Callable[[LoadedRecipe], list[Problem]] | None = None,
) -> LoadedRecipe:
    """Load, inherit, override and validate a recipe; raises RecipeError with every problem found.

    `checks` adds problems found by callers that know more than the recipe language (benchmarks,
    base models), so that all of them are reported at once.
    """
    path = Path(file)
    tree = load_tree(path)
    for override in overrides:
        apply_override(tree, override)
    recipe, problems = validate_tree(tree)
    loaded = LoadedRecipe(recipe, tree, path, tuple(overrides))
    if checks is not None:
        problems += checks(loaded)
    if problems:
        raise RecipeError(sorted(problems, key=_reading_order))
    return loaded


def validate_tree(tree: Tree) -> tuple[Recipe, list[Problem]]:
    """The recipe model of `tree` and the cross-field rules it breaks; schema errors raise RecipeError."""
    if not Recipe.__pydantic_complete__:
        _build_without_plugins()
    try:
        recipe = Recipe.model_validate(tree.data)
    except ValidationError as exc:
        problems = [_problem(tree, error) for error in exc.errors(include_url=False)]
        raise RecipeError(sorted(problems, key=_reading_order)) from None
    return recipe, [Problem(tree.position(v.path), dotted(v.path), v.message, v.hint) for v in rules.check(recipe)]


def _build_without_plugins() -> None:
    """Build the recipe model's validator (its models defer their build: model/basics.py) without pydantic's plugins,
    which observe validation for tools such as logfire: a recipe's validation is medrecipe's own, and finding plugins
    reads the entry points of every installed distribution (5 ms of `validate`'s 170). Pydantic reads the setting as
    it builds a validator, so it is set for this build alone; other models look for plugins as before."""
    previous = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    try:
        Recipe.model_rebuild()
    finally:
        if previous is None:
            del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = previous


def _reading_order(problem: Problem) -> tuple:
    position = problem.position
    return (position.file, position.line, position.col) if position else ("", 0, 0)


# --------------------------------------------------------------------------------- pydantic error mapping


def _data_path(data: Any, loc: tuple) -> tuple[tuple, tuple]:
    """Split a pydantic `loc` into the path that exists in the data and what is left.

    Discriminated unions put their tag into `loc` (`data.steps.0.near_dedup.ngram`); such parts name no
    data and are skipped, so the path points at what the user wrote.
    """
    path: list = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif index == len(loc) - 1:
            return tuple(path), (part,)
    return tuple(path), ()


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The recipe model class that `loc` (with union tags) leads to."""
    annotation: Any = Recipe
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if part not in annotation.model_fields:
                return None
            annotation = annotation.model_fields[part].annotation
        elif origin in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif origin in (typing.Union, types.UnionType):
            variants = [v for v in typing.get_args(annotation) if isinstance(v, type) and issubclass(v, BaseModel)]
            chosen = [v for v in variants if part in _tags(v)]
            if not chosen:
                return None
            annotation = chosen[0]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _tags(model: type[BaseModel]) -> set:
    tags: set = set()
    for name in ("type", "algorithm", "backend"):
        field = model.model_fields.get(name)
        if field is not None:
            tags |= set(typing.get_args(_unwrap(field.annotation)))
    return tags


def _problem(tree: Tree, error: dict) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    path, rest = _data_path(tree.data, loc)
    message = error["msg"].removeprefix("Value error, ")
    hint = None

    if kind == "extra_forbidden":
        key = loc[-1]
        model = _model_at(loc[:-1])
        close = difflib.get_close_matches(str(key), list(model.model_fields), n=1, cutoff=0.6) if model else []
        hint = f"did you mean {close[0]!r}?" if close else (
            f"known keys: {', '.join(model.model_fields)}" if model else None
        )
        return Problem(tree.position(path, of="key"), dotted(path), f"unknown key {key!r}", hint)

    if kind == "missing":
        return Problem(tree.position(path, of="key"), dotted(path + rest), "required field missing")

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        context = error.get("ctx", {})
        discriminator = str(context.get("discriminator", "type")).strip("'")
        expected = [t.strip(" '") for t in str(context.get("expected_tags", "")).split(",") if t.strip()]
        tag = context.get("tag")
        if kind == "union_tag_not_found":
            return Problem(tree.position(path, of="key"), dotted(path + (discriminator,)), "required field missing",
                           f"one of: {', '.join(expected)}")
        close = difflib.get_close_matches(str(tag), expected, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"one of: {', '.join(expected)}"
        where = path + (discriminator,)
        return Problem(tree.position(where), dotted(where), f"unknown {discriminator} {tag!r}", hint)

    if kind in ("model_type", "dict_type") and not rest:
        value = _value_at(tree.data, path)
        message = f"needs a mapping of its fields, not {printable(str(value))[:80]!r}"
        hint = f"write it as `key: value` lines, or --set {dotted(path)}={{key: value}}; ~ removes an optional section"

    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        words = PATTERN_WORDS.get(pattern)
        if words and not rest:
            message = f"not of the form this field takes: {printable(str(_value_at(tree.data, path)))[:80]!r}"
        hint = words

    if kind == "literal_error":
        value = _value_at(tree.data, path)
        expected = error.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip(" '")]
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = f"did you mean {close[0]!r}?" if close else None

    return Problem(tree.position(path), dotted(path + rest), message, hint)


def _value_at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data
