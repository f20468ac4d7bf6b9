"""The recipe commands: validate, show, new, schema; exit codes and messages as a user sees them."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrecipe.recipe import load_recipe
from medrecipe.recipe.load import load_tree
from medrecipe.recipe.schema import json_schema_text
from medrecipe.recipe.show import resolved_data

from .conftest import RECIPES, REPO

SHIPPED = sorted(RECIPES.glob("*.yaml"))


def test_validate_ok_prints_one_line(cli):
    result = cli("validate", str(RECIPES / "ii-medical-8b-1706.yaml"))
    assert result.code == 0
    lines = result.out.strip().splitlines()
    assert len(lines) == 1
    assert "ii-medical-8b-1706: Qwen/Qwen3-8B" in lines[0]


def test_a_command_run_in_this_process_leaves_garbage_collection_as_it_found_it(cli, write):
    """The command pauses collection while it starts and freezes what start-up made (cli/__init__.py): whether it
    loads its recipe, fails on it, or takes none, collection is on and nothing is frozen once it returns."""
    for args in (("validate", str(RECIPES / "quickstart.yaml")), ("validate", str(write("bad.yaml", "name: [\n"))),
                 ("schema", "--check")):
        cli(*args)
        assert gc.isenabled() and gc.get_freeze_count() == 0, args


def test_validate_by_name_with_overrides(cli):
    result = cli("validate", "ii-medical-8b-1706", "--set", "sft.epochs=2", "--quiet")
    assert (result.code, result.out) == (0, "")


def test_validate_errors_exit_2_without_traceback(cli, write):
    path = write("bad.yaml", "name: bad\nbase_model: x\nsft: {learning_rat: 1}\n")
    result = cli("validate", str(path))
    assert result.code == 2
    assert "Traceback" not in result.err
    assert result.err.splitlines()[0] == "error: bad.yaml:3:7: sft.learning_rat: unknown key 'learning_rat'"
    assert result.err.splitlines()[-1] == "1 error in the recipe"


def test_validate_unknown_recipe_name(cli, write):
    result = cli("validate", "ii-medicl-8b-1706")
    assert result.code == 2
    assert "did you mean 'ii-medical-8b-1706'?" in result.err


def test_validate_as_a_real_process_exits_2_and_is_fast(write):
    """The console script end to end: exit code, no traceback, and the time a user waits."""
    bad = write("bad.yaml", "name: bad\nbase_model: x\nseed: -1\n")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    failed = subprocess.run([sys.executable, "-m", "medrecipe.cli.main", "validate", str(bad)],
                            capture_output=True, text=True, env=env)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    assert "bad.yaml:3:7: seed: Input should be greater than or equal to 0" in failed.stderr
    probe = ("import sys, medrecipe.cli.main as m; sys.argv=['medrecipe','validate','ii-medical-8b-1706','-q']\n"
             "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(k for k in ('torch', 'datatrove', 'datasets') if k in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO)
    assert imported.stdout.strip() == "[]", "validate must not import the heavy libraries"


def test_the_recipe_model_is_built_without_looking_for_pydantic_plugins():
    """Finding pydantic's plugins reads every installed distribution's entry points (5 ms of validate); the recipe
    model is built without them, and the setting that says so is left as it was found."""
    probe = ("import os, pydantic.plugin._loader as plugins\nfrom medrecipe.recipe import load_recipe\n"
             "load_recipe('recipes/quickstart.yaml')\nprint(plugins._plugins, os.environ.get('PYDANTIC_DISABLE_PLUGINS'))")
    for setting in (None, "logfire"):
        env = {key: value for key, value in os.environ.items() if key != "PYDANTIC_DISABLE_PLUGINS"}
        env |= {"PYDANTIC_DISABLE_PLUGINS": setting} if setting else {}
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO, check=True)
        assert done.stdout.split() == ["None", str(setting)]


def test_import_medrecipe_is_light():
    probe = "import sys, medrecipe, medrecipe.recipe; print(sorted(k for k in ('torch', 'datatrove', 'datasets') if k in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------- show


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.stem)
def test_show_loads_back_to_the_same_recipe(cli, recipe, tmp_path, monkeypatch):
    """Saved in another folder and loaded from a third: its local paths are absolute, so each names the same file (they
    were relative to the recipe, and read from the folder of the saved copy)."""
    from medrecipe.recipe.show import resolved_data, with_absolute_paths

    result = cli("show", str(recipe))
    assert result.code == 0, result.err
    resolved = tmp_path / "elsewhere" / "resolved.yaml"
    resolved.parent.mkdir()
    resolved.write_text(result.out)
    monkeypatch.chdir(tmp_path)
    shown, original = load_recipe(resolved), load_recipe(recipe)
    assert resolved_data(shown) == with_absolute_paths(original, resolved_data(original))
    if original.recipe.data:
        assert [shown.local_path(("data", "sources", i, "path")) for i, s in enumerate(shown.recipe.data.sources) if s.path] == \
               [original.local_path(("data", "sources", i, "path")) for i, s in enumerate(original.recipe.data.sources) if s.path]


def test_show_keeps_comments_from_child_and_parent(cli, write):
    write("base.yaml", """
        name: base  # the parent's name
        base_model: Qwen/Qwen3-8B
        sft:
          # the learning rate from the card
          learning_rate: 5.0e-5
          datasets: [{path: org/data}]
        """)
    child = write("child.yaml", "extends: base\nname: child\nsft:\n  epochs: 2  # two is enough here\n"
                                "  adam_betas: [0.9, 0.95]  # the card's betas\n  batch: {global_size: 8}  # said once\n")
    out = cli("show", str(child)).out
    assert "# the learning rate from the card" in out
    assert "epochs: 2  # two is enough here" in out
    # a flow collection's comment is said once, on its key, not again on each of its items
    assert out.count("# the card's betas") == 1 and "adam_betas:  # the card's betas" in out
    assert out.count("# said once") == 1 and "batch:  # said once" in out
    assert "# Resolved recipe: child.yaml <- base.yaml" in out


_scalar_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85\ufeff"), max_size=40
) | st.sampled_from(["yes", "no", "null", "~", "1e5", "0x10", "# not a comment", "a: b", "'quoted'", '"dq"', "${x}", "- item"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    description=_scalar_text,
    # a Hub namespace as huggingface_hub's validate_repo_id allows it: no '-' at either end, no '--'
    namespace=st.none() | st.from_regex(r"[A-Za-z0-9](-?[A-Za-z0-9]){0,10}", fullmatch=True),
    learning_rate=st.floats(min_value=1e-9, max_value=1.0, allow_nan=False),
    epochs=st.integers(min_value=1, max_value=100),
    packing=st.booleans(),
    neftune=st.none() | st.floats(min_value=0.1, max_value=20, allow_nan=False),
    benchmarks=st.lists(st.sampled_from(["medmcqa", "medqa", "pubmedqa", "mmlu_anatomy"]), min_size=1, max_size=4, unique=True),
    limitations=st.lists(_scalar_text, max_size=3),
)
def test_property_show_round_trips(tmp_path_factory, description, namespace, learning_rate, epochs, packing, neftune,
                                   benchmarks, limitations):
    """Whatever values a recipe holds, `show` writes YAML that loads back to the same model."""
    from medrecipe.recipe.show import to_yaml

    folder = tmp_path_factory.mktemp("roundtrip")
    tree = load_tree(RECIPES / "ii-medical-8b-1706.yaml")
    data = tree.data
    data["description"] = description
    data["hub"]["namespace"] = namespace
    data["sft"].update(learning_rate=learning_rate, epochs=epochs, sample_packing=packing, neftune_noise_alpha=neftune)
    data["eval"]["benchmarks"] = benchmarks
    data["eval"].pop("published")
    data["publish"]["card"]["limitations"] = limitations
    source = folder / "source.yaml"
    from ruamel.yaml import YAML

    with source.open("w") as handle:
        YAML().dump(data, handle)
    original = load_recipe(source)
    written = folder / "written.yaml"
    written.write_text(to_yaml(original))
    assert load_recipe(written).recipe == original.recipe


# -------------------------------------------------------------------------------------------------- new


def test_new_writes_only_the_overrides_and_validates(cli, write, tmp_path):
    result = cli("new", "ii-medical-qwen3-4b", "--from", "ii-medical-8b-1706", "--set", "base_model=Qwen/Qwen3-4B",
                 "--set", "data.sources.19.path=/data/evol.jsonl")
    assert result.code == 0, result.err
    fork = tmp_path / "recipes" / "ii-medical-qwen3-4b.yaml"
    from ruamel.yaml import YAML

    text = fork.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    raw = YAML(typ="safe").load(text)
    # The child's own file: extends, name, the override, the one list it had to copy, and no claim to reproduce: its
    # cards open with a description of its own, not the parent's overview ("This build reproduces it", found by review).
    assert set(raw) == {"extends", "name", "base_model", "data", "hub", "publish", "description"}
    assert raw["hub"] == {"reproduces": None} and raw["publish"] == {"card": {"overview": ""}}
    assert raw["description"] == "The ii-medical-8b-1706 recipe on Qwen/Qwen3-4B."
    assert raw["extends"] == "ii-medical-8b-1706"
    assert "note: the license is the parent's" in result.out
    parent = resolved_data(load_recipe(RECIPES / "ii-medical-8b-1706.yaml"))
    child = resolved_data(load_recipe(fork))
    differences = {key for key in parent if parent[key] != child[key]}
    assert differences == {"name", "base_model", "data", "hub", "publish", "description"}
    assert {k for k in parent["hub"] if parent["hub"][k] != child["hub"][k]} == {"reproduces"}
    parent_sources, child_sources = parent["data"]["sources"], child["data"]["sources"]
    assert [i for i, (a, b) in enumerate(zip(parent_sources, child_sources)) if a != b] == [19]
    assert child_sources[19]["path"] == "/data/evol.jsonl"


def test_new_refuses_to_overwrite_and_rejects_invalid_forks(cli, write, tmp_path):
    assert cli("new", "fork", "--from", "ii-medical-8b-1706").code == 0
    again = cli("new", "fork", "--from", "ii-medical-8b-1706")
    assert again.code == 2 and "already exists" in again.err
    bad = cli("new", "bad-fork", "--from", "ii-medical-8b-1706", "--set", "sft.epochs=0")
    assert bad.code == 2
    assert "error: --set sft.epochs=0" in bad.err and "sft.epochs" in bad.err  # not a line of a fork that is removed
    assert "bad-fork.yaml" not in bad.err and not (tmp_path / "recipes" / "bad-fork.yaml").exists()
    # Named as its parent, the fork extends the parent's file, not itself (an `extends` cycle).
    same = cli("new", "ii-medical-8b-1706", "--from", "ii-medical-8b-1706", "--dir", "mine")
    assert same.code == 0, same.err
    assert "extends: ../" in (tmp_path / "mine" / "ii-medical-8b-1706.yaml").read_text()
    assert cli("validate", "mine/ii-medical-8b-1706.yaml").code == 0
    suffixed = cli("new", "my-fork.yaml", "--from", "ii-medical-8b-1706")
    assert suffixed.code == 2 and "without .yaml" in suffixed.err and "medrecipe new my-fork --from" in suffixed.err
    assert not list((tmp_path / "recipes").glob("my-fork*"))
    outside = cli("new", "../../escaped", "--from", "ii-medical-8b-1706", "--set", "sft.epochs=2")
    assert outside.code == 2 and "NAME is the new recipe's name, and '../../escaped' is not one" in outside.err
    assert not list(tmp_path.parent.parent.glob("escaped*")) and not list(tmp_path.rglob("escaped*"))
    # NAME names the recipe and its file; --set name= would make them disagree (found by review)
    renamed = cli("new", "x2", "--from", "quickstart", "--set", "name=other")
    assert renamed.code == 2 and "a fork is named by NAME" in renamed.err and not (tmp_path / "recipes" / "x2.yaml").exists()
    # a fork may say what it reproduces itself
    assert cli("new", "x3", "--from", "ii-medical-8b-1706", "--set", "hub.reproduces.model=org/model").code == 0


def test_a_fork_reproduces_nothing_of_its_parents_even_on_the_parents_model(cli, tmp_path):
    """Found by review: a fork onto the model its parent reproduces was refused ("trains from ... the model it says it
    reproduces"), its parent being validated with the overrides before the fork's `hub.reproduces: ~` was written; and
    the hint's `--set hub.reproduces.model=~` left the fork claiming the parent's dataset and paper."""
    def reproduces(name):
        return resolved_data(load_recipe(tmp_path / f"{name}.yaml"))["hub"]["reproduces"]

    onto = cli("new", "on-um", "--from", "ultramedical-llama3-8b", "--set", "base_model=TsinghuaC3I/Llama-3-8B-UltraMedical",
               "--dir", str(tmp_path))
    assert onto.code == 0, onto.err
    assert "reproduces" not in onto.err and reproduces("on-um") is None
    assert cli("new", "hinted", "--from", "ultramedical-llama3-8b", "--set", "hub.reproduces.model=~", "--dir", str(tmp_path)).code == 0
    assert reproduces("hinted") is None
    # what a fork says it reproduces is all it reproduces
    assert cli("new", "own", "--from", "ultramedical-llama3-8b", "--set", "hub.reproduces.model=org/model", "--dir", str(tmp_path)).code == 0
    assert reproduces("own") == {"model": "org/model", "dataset": None, "paper": None}
    for name, setting in (("whole", "hub.reproduces={model: org/model}"), ("hub", "hub={namespace: org, reproduces: {model: org/model}}")):
        assert cli("new", name, "--from", "ultramedical-llama3-8b", "--set", setting, "--dir", str(tmp_path)).code == 0
        assert reproduces(name) == {"model": "org/model", "dataset": None, "paper": None}, setting  # none of the parent's
    assert cli("new", "no-claim", "--from", "ultramedical-llama3-8b", "--set", "hub={namespace: org}", "--dir", str(tmp_path)).code == 0
    assert reproduces("no-claim") is None
    # and one that says it reproduces its own base model is still refused, naming the --set
    said = cli("new", "same", "--from", "ultramedical-llama3-8b", "--set", "hub.reproduces.model=meta-llama/Meta-Llama-3-8B",
               "--dir", str(tmp_path))
    assert said.code == 2 and ("--set hub.reproduces.model=meta-llama/Meta-Llama-3-8B: hub.reproduces.model: this recipe "
                               "trains from meta-llama/Meta-Llama-3-8B, the model it says it reproduces") in said.err


def test_a_fork_in_another_folder_reads_the_files_its_parent_and_its_overrides_name(cli, write, tmp_path):
    """Found by review: an override inside a list copied the parent's list, relative paths and all, into a fork in
    another folder, which then read its data beside itself (recipes/data/... did not exist); and a relative path
    given with --set, checked against the working folder, was read by the fork against its own."""
    write("own/zh.jsonl", "{}\n")
    made = cli("new", "mine", "--from", "quickstart", "--dir", "forks", "--set", "data.sources.0.description=x",
               "--set", "data.sources.1.path=own/zh.jsonl")
    assert made.code == 0, made.err
    parent, fork = load_recipe(RECIPES / "quickstart.yaml"), load_recipe(tmp_path / "forks" / "mine.yaml")
    read = [fork.local_path(("data", "sources", i, "path")).resolve() for i in range(3)]
    assert read == [parent.local_path(("data", "sources", 0, "path")).resolve(), tmp_path / "own" / "zh.jsonl",
                    parent.local_path(("data", "sources", 2, "path")).resolve()]
    assert all(path.exists() for path in read)
    assert "path: ../own/zh.jsonl" in (tmp_path / "forks" / "mine.yaml").read_text()  # relative still: the folders move together


def test_a_line_break_in_an_override_stays_inside_its_comment(cli, write, tmp_path):
    """`show` and `new` write each override in a comment: a line break in one ended the comment, and the rest became
    recipe YAML (a `seed` the user never set, or a file that no longer loaded)."""
    injected = 'description="harmless\nseed: 7 #"'
    shown = cli("show", "quickstart", "--set", injected)
    assert shown.code == 0 and "# --set description=\"harmless\\nseed: 7 #\"\n" in shown.out
    write("shown.yaml", shown.out)
    assert cli("validate", "shown.yaml").code == 0  # `show` output loads back
    assert cli("new", "fork", "--from", "quickstart", "--set", injected, "--set", "description=line1\nline2").code == 0
    fork = (tmp_path / "recipes" / "fork.yaml").read_text()
    assert [line for line in fork.splitlines() if "seed" in line] == [
        "# Created with: medrecipe new fork --from quickstart --set 'description=\"harmless\\nseed: 7 #\"' "
        "--set 'description=line1\\nline2'"]


# ----------------------------------------------------------------------------------------------- schema


def test_schema_is_in_sync_with_the_model():
    checked_in = (REPO / "schemas" / "recipe.schema.json").read_text()
    assert checked_in == json_schema_text(), "run `medrecipe schema` and commit schemas/recipe.schema.json"


def test_schema_documents_every_field():
    schema = json.loads(json_schema_text())
    missing = []
    for name, definition in [("Recipe", schema), *schema["$defs"].items()]:
        for field, spec in definition.get("properties", {}).items():
            if "description" not in spec:
                missing.append(f"{name}.{field}")
    assert missing == []


def test_schema_check_command(cli):
    assert cli("schema", "--check").code == 0


def test_show_finds_comments_only_outside_quoted_scalars(cli, write):
    """An escaped quote ended the double-quoted value for show, which then took its '#' for a comment and wrote one
    into recipe.resolved.yaml and the cards (review); an apostrophe inside a word opened a quote that never closed."""
    import yaml

    write("r.yaml", 'extends: quickstart\ndescription: "x\\"\\"\\" #c"\npublish:\n  card:\n    overview: it\'s ours  # the note\n')
    shown = cli("show", "r.yaml")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    description = next(line for line in lines if line.startswith("description:"))
    assert yaml.safe_load(description) == {"description": 'x""" #c'} and "  #" not in description
    assert next(line for line in lines if line.strip().startswith("overview:")).endswith("# the note")
