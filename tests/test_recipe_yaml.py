"""Recipes are composed by libyaml where it reads a document as ruamel's own parser does, and by ruamel's parser
everywhere else (recipe/yaml_nodes.py). These tests hold the two to the same nodes: tags, values and the
line and column every error message points at."""

from __future__ import annotations

import platform
import random
import warnings
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.parser import Parser

from medrecipe.recipe import RecipeError, load_recipe
from medrecipe.recipe.load import MAX_DEPTH
from medrecipe.recipe.overrides import parse_override
from medrecipe.recipe.registry import shipped_recipes_dir
from medrecipe.recipe.yaml_nodes import compose_nodes

TRICKY = [
    "a: yes\nb: 010\nc: on\nd: 1_000\ne: 0o10\nf: 1:30\ng: 2001-12-14\nh: .inf\ni: ~\nj: 0x1F\nk: 1e3\nl: +1\nm: NULL\n",
    "x: &a [1, 2]\ny: *a\nz: {<<: {p: 1}, q: 2}\nw:\n  <<: [{r: 1}, {s: 2}]\n",
    "é: 'ünïcode 日本'\nnext: 3\n",
    "a: 1\r\nb:\r\n  - x\r\n  - y\r\n",  # CRLF
    "# a comment with a line separator \u2028 and a next-line \x85 in it\na: 1\nb: 2\n",  # libyaml reads it, ruamel not
    "a:\tx\n",  # a tab after the colon: libyaml reads it, ruamel not
    "a: 1\n\ufeff# a second file appended\nb: 2\n",  # a byte-order mark inside: libyaml skips it, ruamel refuses it
    "a:\n  \ufeffb: 1\n",  # libyaml drops it from the key (and places the value a column later)
    "a: |\n  block\n   more\n\nb: >-\n  folded\n  text\n\n  para\nc: |+\n  keep\n\nd: |2\n   indented\n",
    "a: \"dq \\x41\\u00e9\\N\\/\"\nb: 'it''s'\nc: multi\n  line plain\nd: \"dq\n  cont\"\n",
    "a: [b, [c, {d: e}], ]\nf: {g: [1, 2], h: i}\nj: []\nk: {}\nl: ''\nm: \"\"\n",
    "---\na: 1\n...\n",
    "\ufeffa: 1\n",
    "%YAML 1.1\n---\na: yes\nb: on\nc: 1:30\n",  # YAML 1.1 booleans and sexagesimals: libyaml ignores the directive
    "judge: {model: m, endpoint: http://127.0.0.1:8000/v1}\n",  # a YAML 1.2 plain scalar libyaml refuses
    "a: " + "[" * 60 + "]" * 60 + "\n",  # past the nesting limit: ruamel's parser, which raises, not libyaml's, which recurses
]


def nodes(node: Node | None, seen: set[int] | None = None) -> list:
    """Every node in document order: its kind, tag, position and scalar value (an alias once, by position)."""
    seen = set() if seen is None else seen
    if node is None:
        return [None]
    empty_value = node.value == "" and node.tag == "tag:yaml.org,2002:null"  # libyaml places `{b: }`'s one column on
    found = [(type(node).__name__, node.tag) + (() if empty_value else (node.start_mark.line, node.start_mark.column))]
    if id(node) in seen:
        return found
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            found += nodes(key, seen) + nodes(value, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            found += nodes(item, seen)
    else:
        found.append(node.value)
    return found


def fast(text: str) -> Node | None:
    return compose_nodes(text, MAX_DEPTH)


def pure(text: str) -> Node | None:
    return YAML(typ="safe", pure=True).compose(text)


def outcome(compose, text: str) -> list | tuple[str, str]:
    """The nodes a composer makes of `text`, or the error it raises, in its words."""
    try:
        return nodes(compose(text))
    except (YAMLError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="ruamel.yaml.clib is CPython's")
def test_libyaml_is_installed_so_the_fast_path_is_the_one_tested():
    assert YAML(typ="safe").Parser is not Parser


@pytest.mark.parametrize("recipe", sorted(shipped_recipes_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_composes_as_ruamel_composes_it(recipe: Path):
    text = recipe.read_text(encoding="utf-8")
    assert outcome(fast, text) == outcome(pure, text)


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_tricky_documents_compose_as_ruamel_composes_them(text: str):
    assert outcome(fast, text) == outcome(pure, text)


KEYS = ["a", "b c", "'q'", '"d q"', "k:v", "-x", "?y", ":z", "ü", "日本", "1", "yes", "~", "<<", "&an k", "!!str t"]
VALUES = [
    "1", "1.5", "yes", "No", "on", "~", "null", "http://h:80/p", "'s:q'", '"e\\/s"', '"\\x41\\u00e9\\N"', "a #c", "a# b",
    "a: b", "-1", ".5", "0o7", "012", "1:30", "2001-12-14", "*an", "&an v", "[1, 2]", "{x: y}", "{x: http://a:1}",
    "[http://a:1]", "{a:b}", "[a:b]", "{? c : d}", "!!int '3'", "'it''s'", '"tab\\tx"', "|\n  block\n   more\n",
    ">-\n  folded\n  text\n\n  para\n", "|+\n  keep\n\n", "|2\n   ind\n", "multi\n  line plain", '"dq\n  cont"',
    "'sq\n  cont'", "[a, [b, {c: d}], ]", "{a: [1, 2], b: }", "- x", "\tx", "x\t", "@x", "`x", "%x", "!x", "[]", "{}",
    "''", '""', "-", "- - a", "? k",
]
BETWEEN = ["# comment", "# c\u2028omment", "# c\x85d", "  # indented", "", "---", "...", "\t# tab", "\ufeff# appended"]


def random_document(rng: random.Random) -> str:
    """A few keys in block, nested and list layouts, from fragments chosen for where YAML parsers part ways."""
    lines = []
    for _ in range(rng.randint(1, 6)):
        key, value, layout = rng.choice(KEYS), rng.choice(VALUES), rng.random()
        if layout < 0.2:
            lines.append(f"{key}:\n  {value}")
        elif layout < 0.35:
            lines.append(f"{key}:\n  - {value}\n  - {rng.choice(VALUES)}")
        elif layout < 0.45:
            lines.append(f"{key}:\n  sub: {value}\n  {rng.choice(KEYS)}: {rng.choice(VALUES)}")
        else:
            lines.append(f"{key}: {value}")
        if rng.random() < 0.15:
            lines.append(rng.choice(BETWEEN))
    newline = rng.choice(["\n", "\n", "\r\n", "\r"])
    start = rng.choice(["%YAML 1.2\n---\n", "%YAML 1.1\n---\n", "---\n", "\ufeff"]) if rng.random() < 0.1 else ""
    return start + newline.join(lines) + newline


def test_random_documents_compose_as_ruamel_composes_them():
    """2,000 documents of the generator the parsers were compared on (200,000, from other seeds)."""
    rng = random.Random(20261130)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ruamel warns of an anchor defined twice, which the generator does
        for _ in range(2_000):
            text = random_document(rng)
            assert outcome(fast, text) == outcome(pure, text), text


SFT = "  learning_rate: 5.0e-5\n  epochs: 6\n  sequence_len: 4096\n  batch: {global_size: 128}\n  datasets: [{path: org/data}]\n"


def test_a_yaml_1_1_directive_is_honoured(write):
    recipe = write("r.yaml", "%YAML 1.1\n---\nname: r\nbase_model: Qwen/Qwen3-8B\nsft:\n  sample_packing: on\n" + SFT)
    assert load_recipe(recipe).recipe.sft.sample_packing is True


def test_a_syntax_error_is_worded_and_placed_by_ruamel(write):
    """A document libyaml refuses is read again by ruamel's parser: its message and position, not libyaml's."""
    text = "name: r\nbase_model: Qwen/Qwen3-8B\nsft:\n  epochs: [6\n" + SFT
    with pytest.raises(RecipeError) as info:
        load_recipe(write("r.yaml", text))
    with pytest.raises(MarkedYAMLError) as ruamel:
        YAML(typ="safe", pure=True).compose(text)
    mark = ruamel.value.problem_mark
    assert [str(p) for p in info.value.problems] == [f"r.yaml:{mark.line + 1}:{mark.column + 1}: invalid YAML: {ruamel.value.problem}"]


# ------------------------------------------------------------------ aliases, merge keys and keys: the loader's limits

QUICKSTART = str(shipped_recipes_dir() / "quickstart.yaml")


def refused(result, *fragments: str) -> None:
    assert result.code == 2 and "Traceback" not in result.err, result.err[-2000:]
    for fragment in fragments:
        assert fragment in result.err, result.err


@pytest.mark.parametrize("text, error", [
    ("a: &a\n  b: 1\n  <<: *a\n", "r.yaml:5:3: a: merge key `<<` refers to a mapping that contains it"),
    ("a: &a {<<: *a}\n", "r.yaml:3:8: a: merge key `<<` refers to a mapping that contains it"),
    ("a: &a {b: {<<: *a}}\n", "r.yaml:3:12: a.b: merge key `<<` refers to a mapping that contains it"),  # an enclosing one
    ("a: &a [{<<: *a}]\n", "r.yaml:3:9: a[0]: merge key `<<` refers to a mapping that contains it"),
    ("a: &a {b: *a}\n", "r.yaml:3:8: a.b: alias refers to a mapping that contains it"),
    ("a: &a [*a]\n", "r.yaml:3:4: a[0]: alias refers to a list that contains it"),
    ("a: {<<: 1}\n", "r.yaml:3:5: a: merge key `<<` takes a mapping or a list of mappings"),
])
def test_a_value_that_contains_itself_is_refused_where_it_is_written(write, cli, text, error):
    """A merge key was merged outside the node and depth limits: `a: &a {<<: *a}` recursed until Python gave up."""
    write("r.yaml", "name: x\nbase_model: Qwen/Qwen3-8B\n" + text)
    refused(cli("validate", "r.yaml"), f"error: {error}\n")


def test_merged_mappings_count_towards_the_node_limit(write, cli):
    """Merging empty mappings built nothing that was counted: nine lines of these took 10^9 steps."""
    levels = ["m0: &m0 {}"] + [f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * 10)}]}}" for n in range(1, 9)]
    write("r.yaml", "name: x\nbase_model: Qwen/Qwen3-8B\nbomb:\n" + "".join(f"  {line}\n" for line in levels))
    refused(cli("validate", "r.yaml"), "more than 100,000 values")


ALIAS_BOMB = "{" + ", ".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]) + "}"


@pytest.mark.parametrize("override, error", [
    ("rl.openrlhf={a: &a [*a]}", "rl.openrlhf.a[0]: alias refers to a list that contains it"),
    ("rl.openrlhf={a: &a {<<: *a}}", "rl.openrlhf.a: merge key `<<` refers to a mapping that contains it"),
    ("rl.openrlhf=" + ALIAS_BOMB, "more than 100,000 values"),
    ("rl.openrlhf={a: " + "[" * 60 + "]" * 60 + "}", f"nested more than {MAX_DEPTH} levels deep"),
    ('rl.openrlhf={a: [x, {b: "\\e[2K"}]}', "rl.openrlhf.a[1].b: control characters are not allowed in a recipe value"),
    ('rl.openrlhf={"trust_remote_code\\e[2K\\rX": 1}', "rl.openrlhf: control characters are not allowed in a recipe key"),
    ("rl.openrlhf=[!!python/object/apply:os.system [x]]", "rl.openrlhf[0]: YAML tag !!python/object/apply:os.system is not"),
    ("description=a\x1b[2Kb", "description: control characters are not allowed in a recipe value"),
    ("rl.open\x1b[2Krlhf=1", "control characters are not allowed in a recipe key"),
])
def test_a_set_value_is_built_with_a_recipe_files_limits(cli, tmp_path, override, error):
    """`--set` values were loaded by a bare YAML loader: a cycle passed validate and broke show and compile."""
    label = f"--set {override}".replace("\x1b", "\N{REPLACEMENT CHARACTER}")  # the override is printed, not obeyed
    for command in ("validate", "show", "compile"):
        result = cli(command, QUICKSTART, "--set", override, *(["--out", str(tmp_path / "b")] if command == "compile" else []))
        refused(result, f"error: {label}: ", error)
        assert "\x1b" not in result.out + result.err
    assert not (tmp_path / "b").exists()


def test_a_set_collection_is_still_merged_and_read():
    assert parse_override("rl.openrlhf={base: &b {x: 1}, tuned: {<<: *b, y: 2}}")[1] == {"base": {"x": 1}, "tuned": {"x": 1, "y": 2}}
    assert parse_override("description=a: b")[1] == "a: b"  # typed on a command line, it is text
    assert parse_override("seed=")[1] == "" and parse_override("seed=~")[1] is None


def test_a_key_with_control_characters_is_refused_like_a_value(write, cli):
    """A key reaches `plan` output and the cards as a value does: a terminal escape in one was obeyed there."""
    write("r.yaml", 'extends: quickstart\nsft: {axolotl: {"trust_remote_code\\e[2K\\rX": 1}}\n')
    for command in ("validate", "plan"):
        result = cli(command, "r.yaml")
        refused(result, "error: r.yaml:2:17: sft.axolotl: control characters are not allowed in a recipe key: "
                        "'trust_remote_code\\x1b[2K\\rX'\n  hint: write plain text\n")
        assert "\x1b" not in result.out + result.err
    write("r.yaml", "extends: quickstart\n!!python/name:os.system x: 1\n")
    refused(cli("validate", "r.yaml"), "error: r.yaml:2:1: mapping keys must be plain strings")


def test_what_cannot_be_written_as_utf8_is_refused_at_its_place(cli, write):
    """A lone surrogate (YAML's "\\ud800" escape, or Python's stand-in for a command-line byte that is not UTF-8)
    passed validate and crashed plan, compile and run when they wrote it."""
    write("r.yaml", 'extends: quickstart\ndescription: "\\ud800 A"\n')
    for command in ("validate", "plan"):
        refused(cli(command, "r.yaml"), "error: r.yaml:2:14: description: a lone surrogate ('\\ud800') is not a character")
    write("r.yaml", 'extends: quickstart\ndescription: "emoji \\ud83d\\ude00"\n')  # a pair, as json.dumps escapes one
    assert load_recipe("r.yaml").recipe.description == "emoji \N{GRINNING FACE}"
    write("r.yaml", 'extends: quickstart\nsft: {axolotl: {"a\\udc00": 1}}\n')
    refused(cli("validate", "r.yaml"), "sft.axolotl: control characters are not allowed in a recipe key: 'a\\udc00'")
    refused(cli("validate", QUICKSTART, "--set", 'sft.chat_template="\\ud800"'), "sft.chat_template: a lone surrogate")
    refused(cli("validate", QUICKSTART, "--set", "description=ab\udcffc"),
            "error: --set description=ab\N{REPLACEMENT CHARACTER}c: the override is not UTF-8 text")


def test_a_set_index_is_written_in_ascii_digits(cli):
    for digits in ("\u00b2", "\u0663"):  # superscript two, Arabic-Indic three: str.isdigit() accepts both
        refused(cli("validate", QUICKSTART, "--set", f"data.sources.{digits}.path=x"), f"data.sources.{digits}: no such list item")
