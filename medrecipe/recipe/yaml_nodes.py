"""Which parser composes a recipe: libyaml where it reads the document as ruamel's own parser does, ruamel's
parser everywhere else."""

from __future__ import annotations

import re

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, DocumentStartEvent
from ruamel.yaml.nodes import Node
from ruamel.yaml.parser import Parser

_READ_APART = re.compile("[\t\x85\u2028\u2029\ufeff]")  # characters libyaml and ruamel's parser read apart


def compose_nodes(text: str, max_depth: int) -> Node | None:
    """The nodes of a YAML document, composed by libyaml (ruamel.yaml.clib) where it reads the document as ruamel's own
    parser does, which defines a recipe's YAML; by ruamel's parser everywhere else.

    libyaml composes a recipe 7x faster, which was the largest part of `validate`. Compared on 200,000 random
    documents (tricky scalars, flow URLs, tabs, comments with line separators, CR and CRLF, anchors, merges,
    directives), the two give the same nodes, positions included (but an empty value in a flow mapping, `{b: }`,
    which libyaml places one column later), except where handled here:
    - libyaml refuses YAML 1.2 plain scalars such as a URL in a flow mapping: any libyaml error is read again by
      ruamel's parser, which also keeps its messages;
    - it ignores a `%YAML 1.1` directive: a document that names a version goes to ruamel's parser;
    - it reads a tab after `key:` and a line separator (NEL, LS, PS) in a comment, which ruamel refuses, and skips
      a byte-order mark at the start of any line, which ruamel reads as text (the file's leading one is removed
      when it is decoded): a document with any of these characters goes to ruamel's parser;
    - its composer recurses in C, where deep nesting crashes the process instead of raising: nesting past the
      limit, counted on the event stream, which needs no recursion, goes to ruamel's parser, which raises."""
    fast = YAML(typ="safe")
    if fast.Parser is not Parser and not _READ_APART.search(text):
        try:
            if _libyaml_reads_alike(fast, text, max_depth):
                return fast.compose(text)
        except YAMLError:
            pass
    return YAML(typ="safe", pure=True).compose(text)


def _libyaml_reads_alike(fast: YAML, text: str, max_depth: int) -> bool:
    depth = 0
    for event in fast.parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > max_depth + 1:
                return False
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        elif isinstance(event, DocumentStartEvent) and event.version:
            return False
    return True
