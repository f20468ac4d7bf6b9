"""Rendering a card: the hub_cards/*.j2 templates, and how recipe values and text appear in Markdown."""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ...recipe import LoadedRecipe
from ...recipe.registry import resource_dir
from ...recipe.show import to_yaml
from ..release import hub_url


def recipe_text(loaded: LoadedRecipe) -> str:
    """The resolved recipe for a card. to_yaml's first line names the recipe files by their path from the
    working directory; a card names them by file name, so that it does not change with the directory
    publish runs in (a changed card is a new commit) nor show a local path; so are the local paths among the
    recipe's values and overrides (public_path)."""
    first, rest = to_yaml(loaded, shown_path=public_path).split("\n", 1)
    assert first.startswith("# Resolved recipe:"), first
    return f"# Resolved recipe: {' <- '.join(Path(file).name for file in loaded.tree.files)}\n{rest}"


def public_path(path: str) -> str:
    """A path as a card shows it (data, a local model, any recipe value). A relative one as the recipe wrote it:
    relative to the recipe, it is the same on every machine. An absolute one (often from ${env:...}) names this
    machine's folders, a home directory or a user name, so it shows as its last part only. Hub ids, URLs and other
    text are relative and unchanged."""
    if not path.startswith(("/", "~")):
        return path
    return ".../" + Path(path.rstrip("/")).name


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("hub_cards")),
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the render instead of vanishing from a card
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["cell"] = cell
    environment.filters["text"] = markdown_text
    environment.filters["number"] = format_value
    environment.filters["count"] = format_count
    environment.filters["fence"] = fence
    environment.filters["code"] = code_span
    environment.filters["link"] = link
    environment.filters["pystr"] = lambda text: json.dumps(text, ensure_ascii=False)  # a Python string literal
    return environment


def render(template: str, context: dict) -> str:
    return _environment().get_template(template).render(context).rstrip("\n") + "\n"


def markdown_text(value: Any) -> str:
    """Text a recipe wrote, shown as text: HTML (<script>, onerror=...) escaped, and square brackets escaped, so that
    no link or image can be written (inline, `[text][ref]` with a `[ref]: url` definition, `![x](pixel)`). Links a card
    shows are built by medrecipe (`link`) from validated ids and URLs."""
    text = html.escape(str(value), quote=False).replace("\\", "\\\\")  # a backslash of its own cannot escape an escape
    return text.replace("[", "\\[").replace("]", "\\]")


def link(text: Any, url: str) -> str:
    """A Markdown link to a URL the recipe gave (validated as http(s), with no spaces or quotes): its text escaped, and
    in its destination every character that could end it or open another ( `()<>[]\\` ) percent-encoded, which
    names the same resource (RFC 3986 2.1), so that `https://x/a)![pixel](https://evil/)` stays one link."""
    return f"[{markdown_text(text)}]({urllib.parse.quote(url, safe=_URL_KEPT)})"


_URL_KEPT = ":/?#@!$&'*+,;=%~-._"  # what `link` leaves in a URL; letters and digits are always kept


def code_span(text: Any) -> str:
    """Text as an inline code span that survives backticks inside it (CommonMark: a longer run of backticks fences
    it); nothing in a code span is read as HTML or Markdown."""
    text = str(text).replace("\n", " ")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def cell(value: Any) -> str:
    """A value as a Markdown table cell: formatted, with pipes escaped, lines joined, and `<` and `>` outside code spans
    escaped: a value that reached a table unescaped (an optimizer's name, say) shows its HTML as text. (A value's
    brackets are escaped where it is put into a row: a cell holds medrecipe's own links too.)"""
    text = format_value(value).replace("|", "\\|").replace("\n", " ")
    parts = re.split(r"((?<!`)(`+)(?!`).*?(?<!`)\2(?!`))", text)  # code spans (CommonMark: runs of equal length) kept
    return "".join(part if index % 3 == 1 else part.replace("<", "&lt;").replace(">", "&gt;")
                   for index, part in enumerate(parts) if index % 3 != 2)


def format_value(value: Any) -> str:
    """Recipe values as people write them: 5e-5, 0.28, 16378, yes/no, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
        return text
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {format_value(item)}" for key, item in value.items())
    return "" if value is None else str(value)


def format_count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def fence(text: str) -> str:
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def benchmark_link(benchmark, local_copy: str | None = None) -> str:
    """A benchmark's title, linked to its Hub dataset when it has one (a recipe's own may live only in a local file);
    a local copy the recipe reads instead is named, not linked: its items are not the Hub dataset's."""
    title = markdown_text(benchmark.title)
    if local_copy:
        return f"{title} (a local copy, {code_span(public_path(local_copy))})"
    return f"[{title}]({hub_url(benchmark.hub, 'dataset')})" if benchmark.hub else title
