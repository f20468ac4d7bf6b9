"""Forking a recipe: a new file that `extends` its parent and holds only the differences."""

from __future__ import annotations

import copy
import io
import os
import shlex
from pathlib import Path
from typing import Callable

from ruamel.yaml import YAML

from ..errors import UserError
from .load import load_tree
from .model.basics import SLUG
from .model.root import MODEL_FIELDS
from .overrides import parse_override
from .registry import resource_dir, shipped_recipes_dir
from .show import with_absolute_paths
from .untrusted import one_line, printable, redact
from .validate import LoadedRecipe


def write_fork(name: str, parent: str, parent_file: Path, directory: Path, overrides: tuple[str, ...],
               validate: Callable[[Path, tuple[str, ...], bool], LoadedRecipe]) -> tuple[Path, str]:
    """Write directory/NAME.yaml extending `parent_file` (named `parent` on the command line) with `overrides`,
    and check it with `validate(file, overrides, quiet)`, which returns the recipe loaded: first the parent with the
    overrides (their errors and warnings name the `--set` that made them, not a fork that is then removed), then
    quietly the fork as written; an invalid fork is removed, not left behind. Returns the file and what it extends.
    An existing file is never overwritten."""
    if name.endswith((".yaml", ".yml")):  # the recipe's name, which the file is named after: not x.yaml.yaml
        raise UserError(f"NAME is the new recipe's name, written without {Path(name).suffix}",
                        f"medrecipe new {Path(name).stem} --from {parent} ...")
    if not SLUG.fullmatch(name):  # it names the file too: no folder of its own, no way out of `directory`
        raise UserError(f"NAME is the new recipe's name, and {printable(name)!r} is not one",
                        "use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit; --dir says "
                        "where the file goes")
    target = directory / f"{name}.yaml"
    if target.exists():
        raise UserError(f"{target} already exists", "choose another name, or edit that file")
    parent_file = parent_file.resolve()
    # checked as it will be written: reproducing nothing, unless the overrides say what (fork_data), so a fork onto the
    # model its parent reproduces is no recipe that "trains from the model it says it reproduces" (found by review)
    as_checked = validate(parent_file, ("hub.reproduces=~", *overrides), False)
    directory.mkdir(parents=True, exist_ok=True)
    # A shipped recipe's bare name reads the file of that name beside the fork first: the fork itself when it is named
    # as its parent (an `extends` cycle), or another recipe of that name in its folder.
    beside = directory / f"{parent_file.stem}.yaml"
    if parent_file.parent == directory.resolve() or (
            parent_file.parent == shipped_recipes_dir().resolve() and parent_file.stem != name and not beside.exists()):
        extends = parent_file.stem
    else:
        extends = os.path.relpath(parent_file, directory.resolve())
    schema_file = resource_dir("schemas") / "recipe.schema.json"
    schema = os.path.relpath(schema_file, directory.resolve()) if schema_file.exists() else None
    # The parent's relative paths (in a list copied for an override inside it) are relative to its folder, and the
    # overrides' to the working one: each is rewritten relative to the fork's folder, which reads it from there.
    child = with_absolute_paths(as_checked, fork_data(load_tree(parent_file).data, name, extends, overrides),
                                relative_to=directory.resolve())
    target.write_text(render(child, parent, overrides, schema), encoding="utf-8")
    try:
        validate(target, (), True)
    except BaseException:
        target.unlink()
        raise
    return target, extends


def fork_data(parent_data: dict, name: str, extends: str, overrides: tuple[str, ...]) -> dict:
    """The child recipe's own data: `extends`, `name`, `hub.reproduces: ~` (a fork reproduces nothing: an override under
    it says what, and inherits none of the parent's artifacts), and the overrides.
    A fork onto another base model leaves out the parent's card overview (its cards would describe the parent's model,
    "This build reproduces it"), and its description says what it is unless one is given.

    Lists are replaced whole by inheritance, so an override inside a list (`data.sources.3.path=...`)
    copies the parent's list into the child with that one item changed.
    """
    parsed = [parse_override(text)[:2] for text in overrides]
    paths = [path for path, _ in parsed]
    if ("name",) in paths:
        raise UserError("a fork is named by NAME, which names its file too, not by --set name=...",
                        f"medrecipe new NEW-NAME --from {extends} ...")
    child: dict = {"extends": extends, "name": name}
    reproduced = (parent_data.get("hub") or {}).get("reproduces")
    if reproduced:  # a fork is a new system: its cards must not claim to reproduce the parent's; each of the parent's
        # artifacts is cleared by name, so that `--set hub.reproduces.model=...` keeps none of the others (found by review)
        child["hub"] = {"reproduces": dict.fromkeys(reproduced, None) if isinstance(reproduced, dict) else None}
    base = next((value for path, value in parsed if path == ("base_model",)), None)
    if base is not None and base != parent_data.get("base_model"):
        _refuse_kept_models(parent_data, paths, base, extends)
        if ((parent_data.get("publish") or {}).get("card") or {}).get("overview") and ("publish", "card", "overview") not in paths:
            child["publish"] = {"card": {"overview": ""}}  # the card opens with the description
        if ("description",) not in paths:
            child["description"] = f"The {extends} recipe on {base}."
    for text, (path, value) in zip(overrides, parsed):
        list_at = next((i for i, part in enumerate(path) if isinstance(part, int)), None)
        node, parent_node = child, parent_data
        try:
            for depth, part in enumerate(path[:-1]):
                parent_node = parent_node.get(part) if isinstance(parent_node, dict) else (
                    parent_node[part] if isinstance(parent_node, list) and isinstance(part, int) and part < len(parent_node) else None
                )
                if list_at is not None and depth + 1 == list_at and part not in node:
                    node[part] = copy.deepcopy(parent_node) if isinstance(parent_node, list) else []
                elif isinstance(node, dict) and part not in node:
                    node[part] = {}
                node = node[part]
            if isinstance(node, list) and (not isinstance(path[-1], int) or path[-1] >= len(node)):
                raise IndexError(path[-1])
            node[path[-1]] = value
        except (IndexError, KeyError, TypeError):  # a list item past the end, a key under a value that is not a mapping
            raise UserError(f"--set {text}: the parent has no such item", "check the path with: medrecipe show PARENT") from None
    hub = child.setdefault("hub", {}) if reproduced else None
    if isinstance(hub, dict):  # not `--set hub=~`, which drops the parent's hub whole
        own = hub.get("reproduces")
        if isinstance(own, dict) and isinstance(reproduced, dict):  # `--set 'hub.reproduces={model: a/b}'` or
            own = {**dict.fromkeys(reproduced), **own}  # `--set 'hub={...}'` clears the others too (found by review)
        hub["reproduces"] = own if own and (not isinstance(own, dict) or any(own.values())) else None
    return child


def _refuse_kept_models(parent_data: dict, paths: list[tuple], base: str, extends: str) -> None:
    """A fork onto another base model that would keep a model the parent names in its stead: the reward-model recipe
    trains its `rl.init_from`, so its fork onto Qwen3 trained the parent's Llama 3 model (found by review)."""
    kept = []
    for field, own in MODEL_FIELDS.items():
        section = parent_data.get(field[0])
        value = section.get(field[1]) if isinstance(section, dict) else None
        if value is not None and value not in own and field not in paths:
            kept.append((".".join(field), value))
    if kept:
        names = "; ".join(f"{field}: {value}" for field, value in kept)
        sets = " ".join(f"--set {field}=..." for field, _ in kept)
        raise UserError(f"--set base_model={base}: the parent {extends} also names the model a stage starts from or "
                        f"evaluates ({names}), which base_model does not change", f"say which model each is on {base}: "
                        f"{sets} (the parent's value, if it is meant)")


def render(child: dict, parent: str, overrides: tuple[str, ...], schema: str | None) -> str:
    out = io.StringIO()
    if schema:
        out.write(f"# yaml-language-server: $schema={schema}\n")
    out.write(f"# Fork of {one_line(parent)}: only what differs is written here; everything else is inherited.\n")
    command = shlex.join(["medrecipe", "new", child["name"], "--from", parent, *(arg for o in overrides for arg in ("--set", o))])
    out.write(f"# Created with: {one_line(command)}\n")
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "~"))
    yaml.dump(child, out)
    return redact(out.getvalue())  # a value given on the command line may hold a token
