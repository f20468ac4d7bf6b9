"""`--set KEY=VALUE` overrides: the value is read with a recipe file's parser, limits and checks, and every problem
is placed at the override; then set in a recipe's tree."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError

from .errors import Position, Problem, RecipeError, dotted
from .load import CONTROL_CHARACTERS, MAX_DEPTH, SURROGATES, NodeBuilder, Path_, Tree, recipe_yaml
from .untrusted import one_line
from .yaml_nodes import compose_nodes


class _OverrideBuilder(NodeBuilder):
    """Builds a `--set` value with a recipe file's limits and checks; every problem is placed at the override."""

    def __init__(self, label: Position):
        super().__init__(label.file, recipe_yaml())
        self.label = label

    def pos(self, node: Node) -> Position:
        return self.label


def parse_override(text: str) -> tuple[Path_, Any, Position]:
    """`a.b.c=value` -> (('a', 'b', 'c'), value parsed as YAML, its position label)."""
    label = Position(f"--set {one_line(text)}")  # printed with every problem: on one line, no terminal escapes
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError([Problem(label, "", "an override is written KEY=VALUE, e.g. sft.learning_rate=1e-5")])
    if SURROGATES.search(text):  # Python's stand-in for a byte of the command line that is not UTF-8
        raise RecipeError([Problem(label, "", "the override is not UTF-8 text", "write it in UTF-8")])
    if CONTROL_CHARACTERS.search(key):
        raise RecipeError([Problem(label, "", "control characters are not allowed in a recipe key", "write plain text")])
    path = tuple(int(part) if part.isascii() and part.isdigit() else part for part in key.strip().split("."))
    if not raw.strip():
        return path, "", label

    def refuse(message: str) -> RecipeError:
        return RecipeError([Problem(label, dotted(path), message)])

    try:
        node = compose_nodes(raw, MAX_DEPTH)
    except MarkedYAMLError as exc:
        raise refuse(f"cannot parse the value: {exc.problem or exc.context}") from None
    except ReaderError:
        raise refuse("control characters are not allowed in a recipe value") from None
    except RecursionError:
        raise refuse(f"the value is nested more than {MAX_DEPTH} levels deep") from None
    builder = _OverrideBuilder(label)
    if node is None:
        value = None
    elif isinstance(node, (MappingNode, SequenceNode)) and not raw.lstrip().startswith(("{", "[")):
        value = builder.text(raw, node, path)  # "a: b" or "- x" typed on a command line is text; collections are {...} or [...]
    else:
        value = builder.build(node, path)
    if builder.problems:
        raise RecipeError(builder.problems)
    return path, value, label


def apply_override(tree: Tree, text: str) -> None:
    """Set one `--set KEY=VALUE` override in `tree`, creating mappings on the way."""
    path, value, label = parse_override(text)
    node: Any = tree.data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list) and (not isinstance(part, int) or part >= len(node)):
            raise RecipeError([Problem(label, dotted(path[: depth + 1]), "no such list item")])
        if isinstance(node, dict) and node.get(part) is None:
            node[part] = {}  # a section or option the recipe leaves out (or sets to null) is created, by this --set
            tree.key_pos[path[: depth + 1]] = tree.value_pos[path[: depth + 1]] = label
        if not isinstance(node[part], (dict, list)):
            raise RecipeError([Problem(label, dotted(path[: depth + 1]), f"is {type(node[part]).__name__}, which has no "
                                       f"{path[depth + 1]!r} to set", f"set {dotted(path[: depth + 1])} itself instead")])
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise RecipeError([Problem(label, dotted(path), "no such list item")])
    node[last] = value
    for table in (tree.key_pos, tree.value_pos):
        for existing in [p for p in table if p[: len(path)] == path]:
            del table[existing]
        table[path] = label
