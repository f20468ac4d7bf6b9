"""Load a recipe: YAML with positions, `extends` and `${env:...}` interpolation (`--set`: overrides.py).

The YAML is composed into nodes and turned into plain Python data here (not by a YAML constructor), so
that every key and value keeps the file, line and column it came from, through inheritance and
overrides, and so that no tag can ever construct a Python object.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Position, Problem, RecipeError, dotted
from .registry import shipped_recipes_dir
from .untrusted import credential_value, links_into_hidden, secret_variable
from .yaml_nodes import compose_nodes

Path_ = tuple  # a path into the recipe data: str keys and int list indices

_STANDARD_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")
# A recipe is untrusted input (recipes are shared and forked): it is bounded before it is read, and no value may
# pull a secret from the environment into files and cards that are written and pushed.
MAX_BYTES = 1 << 20  # a recipe file; the largest shipped one is 20 KB
MAX_NODES = 100_000  # values built, aliases counted each time they are used (a "billion laughs" stops here)
MAX_DEPTH = 48  # nesting of mappings and lists
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")  # tabs and newlines are text
# Halves of a UTF-16 pair, which YAML's "\ud800" escape writes: not characters, and no file can be written with them.
SURROGATES = re.compile(r"[\ud800-\udfff]")
_SURROGATE_PAIR = re.compile(r"[\ud800-\udbff][\udc00-\udfff]")
# Mappings whose discriminator differs describe different things: the child's replaces the parent's.
_DISCRIMINATORS = ("type", "algorithm", "backend")


def _whole_characters(text: str) -> tuple[str, str | None]:
    """`text` with each pair of surrogates (JSON's escape of a character beyond U+FFFF, "\\ud83d\\ude00") made the
    character it stands for, and the first surrogate left alone, if any."""
    joined = _SURROGATE_PAIR.sub(lambda pair: pair.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le"), text)
    lone = SURROGATES.search(joined)
    return joined, lone.group() if lone else None


@dataclass
class Tree:
    """Plain recipe data with the position of every key and value."""

    data: dict
    key_pos: dict[Path_, Position] = field(default_factory=dict)
    value_pos: dict[Path_, Position] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # the inheritance chain, child first
    sources: dict[str, Path] = field(default_factory=dict)  # a position's file name -> that file, absolute

    def position(self, path: Path_, of: str = "value") -> Position | None:
        """The position of `path`, or of its nearest ancestor that has one."""
        table = self.key_pos if of == "key" else self.value_pos
        for end in range(len(path), -1, -1):
            found = table.get(path[:end]) or self.key_pos.get(path[:end])
            if found:
                return found
        return None


def display(path: Path) -> str:
    """A file name as a user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------------ YAML nodes


class NodeBuilder:
    """Turns composed YAML nodes into data, recording positions and collecting problems."""

    def __init__(self, name: str, yaml: YAML):
        self.name = name
        self.yaml = yaml
        self.tree = Tree(data={})
        self.problems: list[Problem] = []
        self.nodes = 0
        self.open: set[int] = set()  # the mappings and lists being built: an alias to one of them is a cycle

    def pos(self, node: Node) -> Position:
        return Position(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or len(path) > MAX_DEPTH:
            what = f"more than {MAX_NODES:,} values (aliases count each time they are used)" if self.nodes > MAX_NODES \
                else f"nested more than {MAX_DEPTH} levels deep"
            raise RecipeError([Problem(self.pos(node), dotted(path), f"the recipe is {what}", "a recipe is a small file of settings")])
        if node.tag not in _STANDARD_TAGS:
            self.problems.append(
                Problem(
                    self.pos(node),
                    dotted(path),
                    f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed",
                    "a recipe is plain data: mappings, lists, strings, numbers, booleans and null",
                )
            )
            return None
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in self.open:  # an alias to an enclosing collection: a value without end
                kind = "mapping" if isinstance(node, MappingNode) else "list"
                self.problems.append(Problem(self.tree.key_pos.get(path, self.pos(node)), dotted(path),
                                             f"alias refers to a {kind} that contains it", "a recipe is a tree of settings"))
                return None
            self.open.add(id(node))
            result = self.mapping(node, path) if isinstance(node, MappingNode) else self.sequence(node, path)
            self.open.discard(id(node))
            return result
        try:
            value = self.yaml.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # an integer of thousands of digits, say
            reason = ("a number of more than 4,300 digits" if "int_max_str_digits" in str(exc)  # Python's own limit
                      else str(exc).splitlines()[0][:120])
            self.problems.append(Problem(self.pos(node), dotted(path), f"cannot read this value: {reason}"))
            return None
        return self.text(value, node, path) if isinstance(value, str) else value

    def text(self, value: str, node: Node, path: Path_) -> str:
        value = self.interpolate(value, node, path)
        if CONTROL_CHARACTERS.search(value):
            self.problems.append(Problem(self.pos(node), dotted(path), "control characters are not allowed in a recipe value",
                                         "write plain text (tabs and newlines are fine)"))
        elif SURROGATES.search(value):
            value, lone = _whole_characters(value)
            if lone:
                self.problems.append(Problem(self.pos(node), dotted(path), f"a lone surrogate ({ascii(lone)}) is not a character: "
                                             "nothing with it can be written as UTF-8", 'write the character itself, or the '
                                             'escape of its whole code point, e.g. "\\U0001F600"'))
        return value

    def sequence(self, node: SequenceNode, path: Path_) -> list:
        result = []
        for index, item in enumerate(node.value):
            self.tree.key_pos[path + (index,)] = self.pos(item)
            self.tree.value_pos[path + (index,)] = self.pos(item)
            result.append(self.build(item, path + (index,)))
        return result

    def mapping(self, node: MappingNode, path: Path_) -> dict:
        result: dict = {}
        merged: dict = {}
        first_seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        self.problems.append(Problem(self.pos(key_node), dotted(path),
                                                     "merge key `<<` takes a mapping or a list of mappings"))
                    elif id(source) in self.open:  # merging it would merge this mapping into itself, without end
                        self.problems.append(Problem(self.pos(key_node), dotted(path),
                                                     "merge key `<<` refers to a mapping that contains it"))
                    else:
                        merged.update(self.build(source, path) or {})
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in first_seen:
                line = first_seen[key].line
                self.problems.append(
                    Problem(self.pos(key_node), dotted(path + (key,)), f"duplicate key {key!r} (first set at line {line})")
                )
                continue
            first_seen[key] = self.pos(key_node)
            self.tree.key_pos[path + (key,)] = self.pos(key_node)
            # A value's own position, except a block collection's: there the key's line names the section.
            same_line = value_node.start_mark.line == key_node.start_mark.line
            self.tree.value_pos[path + (key,)] = (
                self.pos(value_node) if isinstance(value_node, ScalarNode) or same_line else self.pos(key_node)
            )
            result[key] = self.build(value_node, path + (key,))
        return {**merged, **result}

    def key(self, node: Node, path: Path_) -> str | None:
        """A mapping key as text, or None (and a problem) when it is not plain text."""
        if not isinstance(node, ScalarNode) or node.tag not in _STANDARD_TAGS:
            self.problems.append(Problem(self.pos(node), dotted(path), "mapping keys must be plain strings"))
            return None
        try:
            key = self.yaml.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            self.problems.append(Problem(self.pos(node), dotted(path), f"cannot read this key: {str(exc).splitlines()[0][:120]}"))
            return None
        key = key if isinstance(key, str) else str(key)
        if SURROGATES.search(key):
            key = _whole_characters(key)[0]
        if CONTROL_CHARACTERS.search(key) or SURROGATES.search(key):  # keys are printed too: in plans, warnings and cards
            self.problems.append(Problem(self.pos(node), dotted(path), f"control characters are not allowed in a recipe key: {ascii(key)}",
                                         "write plain text"))
            return None
        return key

    def interpolate(self, text: str, node: Node, path: Path_) -> str:
        def replace(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if secret_variable(name):
                self.problems.append(Problem(self.pos(node), dotted(path), f"${{env:{name}}} would write a secret into the build, "
                                             "its cards and the Hub", "fields that need a key name its variable (api_key_env); "
                                             "the Hub token is read by medrecipe itself"))
                return match.group(0)
            if name in os.environ:
                if shape := credential_value(os.environ[name]):
                    self.problems.append(Problem(self.pos(node), dotted(path), f"${{env:{name}}} holds {shape}: it would be "
                                                 "written into the build, its cards and the Hub", "give the value itself"))
                    return match.group(0)
                return os.environ[name]
            if default is not None:
                return default
            self.problems.append(
                Problem(
                    self.pos(node),
                    dotted(path),
                    f"environment variable {name} is not set",
                    f"export {name}=..., or give a default: ${{env:{name},default}}",
                )
            )
            return match.group(0)

        return _ENV.sub(replace, text)


def recipe_yaml() -> YAML:
    return YAML(typ="safe", pure=True)


def _read_text(file: Path, name: str) -> str:
    """A recipe file's text: at most MAX_BYTES of UTF-8, no binary."""
    def refuse(message: str, hint: str | None = None, line: int = 0) -> RecipeError:
        return RecipeError([Problem(Position(name, line, 1 if line else 0), "", message, hint)])

    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise refuse(f"cannot read the recipe: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise refuse(f"the recipe is larger than {MAX_BYTES >> 20} MiB", "a recipe is a small file of settings")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise refuse("the recipe is UTF-16 text", "save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse(f"the recipe is not UTF-8 text (byte {exc.start})", "save it as UTF-8",
                     line=data[: exc.start].count(b"\n") + 1) from None
    if "\x00" in text:
        raise refuse("the recipe holds NUL bytes: it is not a text file", line=text[: text.index("\x00")].count("\n") + 1)
    return text


def parse_file(file: Path) -> Tree:
    """One YAML file as a Tree (no inheritance); raises RecipeError with every problem found."""
    name = display(file)
    text = _read_text(file, name)
    try:
        node = compose_nodes(text, MAX_DEPTH)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(name, mark.line + 1, mark.column + 1) if mark else Position(name)
        raise RecipeError([Problem(where, "", f"invalid YAML: {exc.problem or exc.context}")]) from None
    except ReaderError as exc:  # a character YAML does not allow in a document (a terminal escape, say)
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else 0
        raise RecipeError([Problem(Position(name, line, 1 if line else 0), "",
                                   f"invalid YAML: character {exc.character!r} is not allowed in a recipe")]) from None
    except RecursionError:  # the composer recurses once per level: deep nesting ends it before anything is built
        raise RecipeError([Problem(Position(name), "", f"the recipe is nested more than {MAX_DEPTH} levels deep")]) from None
    builder = NodeBuilder(name, recipe_yaml())
    builder.tree.key_pos[()] = Position(name, 1, 1)
    if node is None:
        builder.tree.data = {}
    elif not isinstance(node, MappingNode):
        raise RecipeError([Problem(builder.pos(node), "", "a recipe must be a mapping of sections (name:, data:, sft:, ...)")])
    else:
        builder.tree.data = builder.build(node, ())
    if builder.problems:
        raise RecipeError(builder.problems)
    builder.tree.files = [file]
    builder.tree.sources = {name: file.resolve()}
    return builder.tree


# -------------------------------------------------------------------------------------------- extends


def recipe_dirs(near: Path | None = None) -> list[Path]:
    """Where recipe names are looked up: beside the extending file, ./recipes, then the shipped recipes."""
    dirs = [near] if near else []
    dirs += [Path.cwd() / "recipes", shipped_recipes_dir()]
    unique: list[Path] = []
    for d in dirs:
        if d is not None and d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def resolve_recipe_ref(ref: str, near: Path | None = None) -> Path | None:
    """A recipe given by path (relative to `near`) or by name (looked up in `recipe_dirs`)."""
    candidate = Path(ref).expanduser()
    if candidate.suffix in (".yaml", ".yml") or "/" in ref or os.sep in ref:
        full = candidate if candidate.is_absolute() else (near or Path.cwd()) / candidate
        return full if full.is_file() else None
    for directory in recipe_dirs(near):
        for suffix in (".yaml", ".yml"):
            if (directory / f"{ref}{suffix}").is_file():
                return directory / f"{ref}{suffix}"
    return None


def known_recipe_names(near: Path | None = None) -> list[str]:
    return sorted({p.stem for d in recipe_dirs(near) for p in d.glob("*.y*ml")})


def _merge(parent: Tree, child: Tree, at: Path_ = ()) -> None:
    """Deep-merge `child` onto `parent` in place: mappings merge, everything else (lists included) replaces."""

    def drop_positions(prefix: Path_) -> None:
        for table in (parent.key_pos, parent.value_pos):
            for path in [p for p in table if p[: len(prefix)] == prefix and len(p) > len(prefix)]:
                del table[path]

    def walk(target: dict, source: dict, path: Path_) -> None:
        for key, value in source.items():
            here = path + (key,)
            old = target.get(key)
            same_kind = isinstance(old, dict) and isinstance(value, dict) and all(
                value.get(d, old.get(d)) == old.get(d) for d in _DISCRIMINATORS
            )
            if same_kind:
                walk(old, value, here)
            else:
                drop_positions(here)
                target[key] = value
                for table, src in ((parent.key_pos, child.key_pos), (parent.value_pos, child.value_pos)):
                    table.update({p: pos for p, pos in src.items() if p[: len(here)] == here and len(p) > len(here)})
            for table, src in ((parent.key_pos, child.key_pos), (parent.value_pos, child.value_pos)):
                if here in src:
                    table[here] = src[here]

    walk(parent.data, child.data, at)


def load_tree(file: Path, _chain: tuple[Path, ...] = ()) -> Tree:
    """A recipe file with its `extends` chain resolved (child values win)."""
    file = file.resolve()
    if file in _chain:
        names = " -> ".join(display(p) for p in (*_chain, file))
        raise RecipeError([Problem(Position(display(_chain[-1])), "extends", f"extends cycle: {names}")])
    tree = parse_file(file)
    ref = tree.data.pop("extends", None)
    if ref is None:
        return tree
    where = tree.key_pos.pop(("extends",), None)
    value_where = tree.value_pos.pop(("extends",), where)
    takes = "extends takes one recipe: its name, or the path of its .yaml file (relative to this file)"
    if not isinstance(ref, str) or not ref:
        raise RecipeError([Problem(where, "extends", takes)])
    if ("/" in ref or os.sep in ref) and Path(ref).suffix not in (".yaml", ".yml"):  # a parent is a recipe, not any file
        raise RecipeError([Problem(value_where, "extends", f"{ref!r} is not a recipe file", takes)])
    parent_file = resolve_recipe_ref(ref, near=file.parent)
    if parent_file is None:
        close = difflib.get_close_matches(ref, known_recipe_names(file.parent), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known recipes: {', '.join(known_recipe_names(file.parent))}"
        raise RecipeError([Problem(value_where, "extends", f"no recipe named {ref!r}", hint)])
    if parent_file.resolve() in (*_chain, file):
        names = " -> ".join(display(p) for p in (*_chain, file, parent_file.resolve()))
        raise RecipeError([Problem(where, "extends", f"extends cycle: {names}")])
    parent_at = parent_file.resolve()
    if links_into_hidden(parent_at.parent, file.parent) and not parent_at.is_relative_to(shipped_recipes_dir().resolve()):
        raise RecipeError([Problem(value_where, "extends", f"{ref!r} lies in a hidden folder ({parent_at}), where "
                                   "credentials and settings are kept: a recipe does not read them into its own",
                                   "copy the parent recipe beside yours")])
    parent = load_tree(parent_file, (*_chain, file))
    _merge(parent, tree)
    parent.key_pos[()] = tree.key_pos[()]  # a missing top-level key is the extending file's to fix
    parent.files = [file, *parent.files]
    parent.sources.update(tree.sources)
    return parent
