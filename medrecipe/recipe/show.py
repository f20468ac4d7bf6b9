"""The fully resolved recipe as YAML: extends and overrides applied, defaults filled, source comments kept.

Comments are carried over by position: a key of the resolved recipe keeps the end-of-line comment and the
comment lines above it from whichever file (child or parent) set it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .load import display
from .model.root import MODEL_FIELDS
from .untrusted import one_line
from .validate import LoadedRecipe


def _split_comment(line: str) -> tuple[str, str | None]:
    """(content, trailing comment) of a YAML line, ignoring '#' inside quoted scalars: a quote opens one only where a
    scalar can begin (an apostrophe inside a word does not), and a double-quoted one escapes its quote with '\\'."""
    quote, escaped = None, False
    for index, char in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"" and (index == 0 or line[index - 1] in " \t[{,:"):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index], line[index + 1 :].strip()
    return line, None


def _file_comments(text: str) -> tuple[dict[int, str], dict[int, list[str]], list[str]]:
    """End-of-line comments by line, comment blocks by the line they precede, and the header block."""
    eol: dict[int, str] = {}
    before: dict[int, list[str]] = {}
    pending: list[str] = []
    header: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        content, comment = _split_comment(line)
        if not content.strip():
            if comment is not None:
                pending.append(comment)
            elif pending and header is None:
                header, pending = pending, []
            continue
        if header is None:
            header, pending = pending, []
        if pending:
            before[number] = pending
            pending = []
        if comment:
            eol[number] = comment
    return eol, before, header or []


class _Comments:
    def __init__(self, loaded: LoadedRecipe):
        self.loaded = loaded
        self.by_file = {name: _file_comments(file.read_text(encoding="utf-8")) for name, file in loaded.tree.sources.items()}
        self.given: set[tuple[str, int]] = set()

    def for_key(self, path: tuple) -> tuple[str | None, list[str]]:
        """The comments of the line that wrote `path`, once: the keys of a flow mapping (`{a: 1, b: 2}  # why`)
        share a line, and its comment goes to the first key that asks, its enclosing key when there is one."""
        position = self.loaded.tree.key_pos.get(path)
        if position is None or position.file not in self.by_file or (position.file, position.line) in self.given:
            return None, []
        self.given.add((position.file, position.line))
        eol, before, _ = self.by_file[position.file]
        return eol.get(position.line), before.get(position.line, [])

    def header(self) -> list[str]:
        top = next(name for name, file in self.loaded.tree.sources.items() if file == self.loaded.tree.files[0].resolve())
        return [c for c in self.by_file[top][2] if "yaml-language-server" not in c]


def _commented(value: Any, path: tuple, comments: _Comments) -> Any:
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            eol, before = comments.for_key(path + (key,))
            node[key] = _commented(item, path + (key,), comments)
            if before:
                node.yaml_set_comment_before_after_key(key, before="\n".join(before), indent=2 * len(path))
            if eol:
                node.yaml_add_eol_comment(eol, key)
        return node
    if isinstance(value, list):
        node = CommentedSeq()
        for index, item in enumerate(value):
            eol, _ = comments.for_key(path + (index,))
            node.append(_commented(item, path + (index,), comments))
            if eol and not isinstance(item, (dict, list)):
                node.yaml_add_eol_comment(eol, index)
        return node
    return value


def resolved_data(loaded: LoadedRecipe) -> dict:
    """The recipe as plain data with every default filled in (what `show` prints)."""
    return loaded.recipe.model_dump(mode="json")


def _shown_paths(value: Any, show) -> Any:
    """`value` with every line of text passed through `show`, which rewrites the local paths among them: data paths,
    but also a local base model, `rl.init_from` or a Slurm venv."""
    if isinstance(value, dict):
        return {key: _shown_paths(item, show) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown_paths(item, show) for item in value]
    return show(value) if isinstance(value, str) and "\n" not in value else value


def with_absolute_paths(loaded: LoadedRecipe, data: dict, relative_to: Path | None = None) -> dict:
    """`data` with every relative local path (data files, benchmark copies, local datasets and models) made absolute
    as it was read, against the folder of the recipe file that wrote it: so the shown recipe, saved anywhere, loads
    back the same. With `relative_to`, made relative to that folder instead, where the data will be saved (a fork)."""
    models = [("base_model",), *MODEL_FIELDS]  # a local folder or a Hub id
    for path in loaded.data_paths() + models:
        node = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else node[part] if isinstance(node, list) else None
        value = node.get(path[-1]) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute() or path not in loaded.tree.value_pos:
            continue  # unset, absolute already, or a default (which no recipe file wrote)
        always_local = path[:2] in (("data", "sources"), ("eval", "benchmarks"))
        if always_local or isinstance(loaded.local_or_hub(path), Path):  # else a Hub id (org/name)
            read = loaded.local_path(path)
            node[path[-1]] = os.path.relpath(read, relative_to) if relative_to else str(read)
    return data


def to_yaml(loaded: LoadedRecipe, comments: bool = True, shown_path=None, absolute_paths: bool = False) -> str:
    """The resolved recipe as commented YAML; `shown_path` rewrites how its text values and `--set` values show (a card
    hides this machine's folders); `absolute_paths` writes local paths so that the text loads back the same from any
    folder (`medrecipe show`)."""
    data = resolved_data(loaded)
    if absolute_paths:
        data = with_absolute_paths(loaded, data)
    if shown_path:
        data = _shown_paths(data, shown_path)
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    sources = " <- ".join(display(f) for f in loaded.tree.files)
    out.write(f"# Resolved recipe: {one_line(sources)}\n")
    for override in loaded.overrides:
        key, _, value = override.partition("=")
        out.write(f"# --set {one_line(f'{key}={shown_path(value)}' if shown_path else override)}\n")
    if comments:
        helper = _Comments(loaded)
        for line in helper.header():
            out.write(f"# {line}\n")
        yaml.dump(_commented(data, (), helper), out)
    else:
        yaml.dump(data, out)
    return out.getvalue()
