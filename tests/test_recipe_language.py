"""The recipe language: every error path with its file:line:col, inheritance, overrides, env interpolation."""

from __future__ import annotations

import pytest

from medrecipe.recipe import RecipeError, load_recipe

MINIMAL = """
name: tiny
base_model: Qwen/Qwen3-8B
sft:
  learning_rate: 5.0e-5
  epochs: 6
  sequence_len: 16378
  batch: {global_size: 128}
  datasets: [{path: org/data}]
"""


def problems(path, *overrides) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    return [str(p) for p in info.value.problems]


# ------------------------------------------------------------------------------------------ schema errors


def test_minimal_recipe_loads_with_defaults(write):
    recipe = load_recipe(write("r.yaml", MINIMAL)).recipe
    assert recipe.sft.learning_rate == 5e-5
    assert recipe.sft.batch.micro_batch_size == 1
    assert recipe.compute.gpus_per_node == 8
    assert recipe.hub.private is True


def test_a_default_list_is_each_recipes_own(write):
    """A list default is given as a list (`Field([])`), which pydantic copies for each model: with the builtin `list` as
    its factory, pydantic read the builtin's signature, which compiled Python's tokenizer (9 ms of `validate`)."""
    first, second = (load_recipe(write(f"{name}.yaml", MINIMAL)).recipe for name in ("a", "b"))
    first.publish.card.limitations.append("changed")
    first.publish.card.tags.append("changed")
    assert (second.publish.card.limitations, second.publish.card.tags) == ([], ["medical"])


def test_misspelt_key_names_its_line_and_suggests(write):
    path = write("r.yaml", MINIMAL.replace("learning_rate:", "learning_rat:"))
    assert problems(path) == [
        "r.yaml:4:3: sft.learning_rat: unknown key 'learning_rat'\n  hint: did you mean 'learning_rate'?"
    ]


def test_every_error_is_reported_at_once_in_reading_order(write):
    text = MINIMAL.replace("epochs: 6", "epochs: -1").replace("sequence_len: 16378", "sequence_len: lots")
    text += "seed: [1]\n"
    found = problems(write("r.yaml", text))
    assert found[0].startswith("r.yaml:5:11: sft.epochs: Input should be greater than 0")
    assert found[1].startswith("r.yaml:6:17: sft.sequence_len: Input should be a valid integer")
    assert found[2].startswith("r.yaml:9:7: seed: Input should be a valid integer")
    assert len(found) == 3


def test_missing_required_field_points_at_the_mapping(write):
    found = problems(write("r.yaml", MINIMAL.replace("name: tiny\n", "")))
    assert found == ["r.yaml:1:1: name: required field missing"]
    nested = MINIMAL + "rl:\n  algorithm: dapo\n  learning_rate: 1.0e-6\n  mini_batch_size: 32\n  samples_per_prompt: 16\n  data: {path: x, fields: {prompt: q, answer: a}}\n"
    found = problems(write("r2.yaml", nested))
    assert found == ["r2.yaml:9:1: rl.rollout_batch_size: required field missing"]


def test_unknown_step_type_suggests_the_nearest(write):
    text = MINIMAL + """\
data:
  sources: [{name: s, path: data.jsonl}]
  steps:
    - type: near_dedupe
      threshold: 0.7
"""
    assert problems(write("r.yaml", text)) == [
        "r.yaml:12:13: data.steps[0].type: unknown type 'near_dedupe'\n  hint: did you mean 'near_dedup'?"
    ]


def test_misspelt_key_inside_a_union_member_suggests_from_that_member(write):
    text = MINIMAL + """\
data:
  sources: [{name: s, path: data.jsonl}]
  steps:
    - type: near_dedup
      ngrams: 4
"""
    assert problems(write("r.yaml", text)) == [
        "r.yaml:13:7: data.steps[0].ngrams: unknown key 'ngrams'\n  hint: did you mean 'ngram'?"
    ]


def test_literal_value_suggests_the_nearest_choice(write):
    found = problems(write("r.yaml", MINIMAL + "compute: {executor: slrum}\n"))
    assert found[0].startswith("r.yaml:9:21: compute.executor: Input should be 'local', 'ray' or 'slurm'")
    assert found[0].endswith("hint: did you mean 'slurm'?")


def test_model_validator_message_is_placed_on_its_mapping(write):
    text = MINIMAL.replace("batch: {global_size: 128}", "batch: {global_size: 128, global_tokens: 1000}")
    assert problems(write("r.yaml", text)) == [
        "r.yaml:7:10: sft.batch: give exactly one of `global_size` or `global_tokens`"
    ]


# ---------------------------------------------------------------------------------------------- YAML errors


def test_duplicate_key_is_an_error(write):
    found = problems(write("r.yaml", MINIMAL + "seed: 1\nseed: 2\n"))
    assert found == ["r.yaml:10:1: seed: duplicate key 'seed' (first set at line 9)"]


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/name:os.system", "!custom"])
def test_tags_cannot_construct_objects(write, tag):
    found = problems(write("r.yaml", MINIMAL + f"description: {tag} x\n"))
    assert len(found) == 1
    assert found[0].startswith("r.yaml:9:14: description: YAML tag")
    assert "is not allowed" in found[0]


def test_syntax_error_has_a_position(write):
    found = problems(write("r.yaml", "name: [unclosed\nbase_model: x\n"))
    assert found[0].startswith("r.yaml:")
    assert "invalid YAML" in found[0]


def test_yaml_1_2_plain_scalars_hold_colons_in_flow_mappings(write):
    """A URL written plainly inside {...} is YAML 1.2; libyaml (YAML 1.1) refuses it ("found unexpected ':'"), which
    is why recipes are composed by ruamel's own parser."""
    recipe = write("r.yaml", MINIMAL + "eval:\n  benchmarks: [medmcqa]\n  judge: {model: m, endpoint: http://127.0.0.1:8000/v1}\n")
    assert load_recipe(recipe).recipe.eval.judge.endpoint == "http://127.0.0.1:8000/v1"


def test_a_recipe_must_be_a_mapping(write):
    assert problems(write("r.yaml", "- a\n- b\n")) == [
        "r.yaml:1:1: a recipe must be a mapping of sections (name:, data:, sft:, ...)"
    ]


def test_missing_file_is_a_recipe_error(write):
    found = problems(write("r.yaml", MINIMAL).parent / "nope.yaml")
    assert found[0].startswith("nope.yaml: cannot read the recipe")


# ------------------------------------------------------------------------------------- env interpolation


def test_env_interpolation(write, monkeypatch):
    monkeypatch.setenv("MY_NS", "my-org")
    text = MINIMAL + "hub: {namespace: '${env:MY_NS}', dataset_repo: '${env:UNSET_REPO_VAR,medical-data}'}\n"
    recipe = load_recipe(write("r.yaml", text)).recipe
    assert recipe.hub.namespace == "my-org"
    assert recipe.hub.dataset_repo == "medical-data"


def test_unset_env_without_default_is_an_error_at_its_line(write, monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    found = problems(write("r.yaml", MINIMAL + "description: 'run on ${env:NOPE_NOT_SET}'\n"))
    assert found == [
        "r.yaml:9:14: description: environment variable NOPE_NOT_SET is not set\n"
        "  hint: export NOPE_NOT_SET=..., or give a default: ${env:NOPE_NOT_SET,default}"
    ]


# ------------------------------------------------------------------------------------------- inheritance


def test_three_levels_of_inheritance(write):
    write("base.yaml", MINIMAL + "description: base\nseed: 1\n")
    write("middle.yaml", "extends: base\nname: middle\nsft: {epochs: 3}\n")
    child = write("child.yaml", "extends: middle.yaml\nname: child\nsft: {learning_rate: 1.0e-5}\nseed: 7\n")
    loaded = load_recipe(child)
    recipe = loaded.recipe
    assert (recipe.name, recipe.description, recipe.seed) == ("child", "base", 7)
    assert (recipe.sft.epochs, recipe.sft.learning_rate, recipe.sft.sequence_len) == (3, 1e-5, 16378)
    assert [p.name for p in loaded.tree.files] == ["child.yaml", "middle.yaml", "base.yaml"]


def test_lists_replace_and_null_removes_an_optional_value(write):
    write("base.yaml", MINIMAL + "eval: {benchmarks: [medmcqa, medqa]}\nsft_extra: 1\n".replace("sft_extra: 1\n", ""))
    child = write(
        "child.yaml",
        "extends: base\nname: child\neval: {benchmarks: [pubmedqa]}\nsft: {neftune_noise_alpha: 5}\n",
    )
    recipe = load_recipe(child).recipe
    assert [b.name for b in recipe.eval.benchmarks] == ["pubmedqa"]
    assert recipe.sft.neftune_noise_alpha == 5
    grandchild = write("grandchild.yaml", "extends: child\nname: gc\nsft: {neftune_noise_alpha: ~}\neval: ~\n")
    recipe = load_recipe(grandchild).recipe
    assert recipe.sft.neftune_noise_alpha is None
    assert recipe.eval is None


def test_null_on_a_required_field_is_an_error_in_the_child(write):
    write("base.yaml", MINIMAL)
    child = write("child.yaml", "extends: base\nname: child\nsft: {epochs: ~}\n")
    found = problems(child)
    assert found[0].startswith("child.yaml:3:15: sft.epochs: Input should be a valid integer")


def test_a_changed_discriminator_replaces_instead_of_merging(write):
    rl = (
        "rl:\n  algorithm: dapo\n  data: {path: prompts, fields: {prompt: q, answer: a}}\n  learning_rate: 1.0e-6\n  rollout_batch_size: 512\n"
        "  mini_batch_size: 32\n  samples_per_prompt: 16\n"
    )
    write("base.yaml", MINIMAL + rl)
    child = write(
        "child.yaml",
        "extends: base\nname: child\nrl: {algorithm: dpo, data: {path: pairs}, learning_rate: 5.0e-7, beta: 0.1}\n",
    )
    recipe = load_recipe(child).recipe
    assert recipe.rl.algorithm == "dpo"
    assert recipe.rl.beta == 0.1


def test_error_inside_a_parent_points_at_the_parent(write):
    write("base.yaml", MINIMAL.replace("epochs: 6", "epochs: many"))
    child = write("child.yaml", "extends: base\nname: child\n")
    found = problems(child)
    assert found[0].startswith("base.yaml:5:11: sft.epochs: Input should be a valid integer")


def test_extends_cycle_names_the_chain(write):
    write("a.yaml", "extends: b\nname: a\n")
    write("b.yaml", "extends: c.yaml\nname: b\n")
    write("c.yaml", "extends: a\nname: c\n")
    found = problems(write("a.yaml", "extends: b\nname: a\n"))
    assert len(found) == 1
    assert "extends cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml" in found[0]


def test_extends_of_an_unknown_recipe_suggests(write):
    found = problems(write("r.yaml", "extends: ii-medical-8b-176\nname: x\n"))
    assert found == ["r.yaml:1:10: extends: no recipe named 'ii-medical-8b-176'\n  hint: did you mean 'ii-medical-8b-1706'?"]


def test_extends_reads_only_recipe_files(write, tmp_path):
    """A parent named by path must be a .yaml file: a recipe is untrusted, and any other file it pointed at (a tool's
    config, a key file) would be read as recipe values. A .yaml file anywhere, absolute or relative, is a recipe."""
    (tmp_path / "settings.conf").write_text("description: copied from another tool's config\n")
    assert problems(write("r.yaml", "extends: ./settings.conf\nname: x\n")) == [
        "r.yaml:1:10: extends: './settings.conf' is not a recipe file\n"
        "  hint: extends takes one recipe: its name, or the path of its .yaml file (relative to this file)"]
    assert problems(write("r.yaml", "extends: /etc/hostname\nname: x\n"))[0].startswith("r.yaml:1:10: extends: '/etc/hostname' is not")
    parent = write("forks/base.yaml", "name: base\nbase_model: Qwen/Qwen3-8B\nseed: 3\n")
    assert load_recipe(write("r.yaml", f"extends: {parent}\nname: x\n")).recipe.seed == 3
    assert load_recipe(write("r.yaml", "extends: forks/base.yaml\nname: x\n")).recipe.seed == 3


def test_extends_a_shipped_recipe_by_name(write):
    child = write("fork.yaml", "extends: ii-medical-8b-1706\nname: fork\nsft: {epochs: 2}\n")
    recipe = load_recipe(child).recipe
    assert recipe.sft.epochs == 2
    assert recipe.sft.learning_rate == 5e-5
    assert recipe.rl.clip_ratio_high == 0.28


# --------------------------------------------------------------------------------------------- overrides


def test_overrides_are_parsed_as_yaml_and_validated(write):
    path = write("r.yaml", MINIMAL)
    recipe = load_recipe(path, ["sft.learning_rate=1e-5", "sft.sample_packing=true", "compute.nodes=2",
                                "description='a: b'"]).recipe
    assert recipe.sft.learning_rate == 1e-5 and recipe.sft.sample_packing is True
    assert recipe.compute.nodes == 2 and recipe.description == "a: b"


def test_override_errors_name_the_override(write):
    path = write("r.yaml", MINIMAL)
    assert problems(path, "sft.learning_rate=fast") == [
        "--set sft.learning_rate=fast: sft.learning_rate: Input should be a valid number, unable to parse string as a number"
    ]
    assert problems(path, "sft.learnin_rate=1") == [
        "--set sft.learnin_rate=1: sft.learnin_rate: unknown key 'learnin_rate'\n  hint: did you mean 'learning_rate'?"
    ]
    assert problems(path, "no-equals-sign")[0].startswith("--set no-equals-sign: an override is written KEY=VALUE")


def test_override_inside_a_list(write):
    path = write("r.yaml", MINIMAL)
    recipe = load_recipe(path, ["sft.datasets.0.split=validation"]).recipe
    assert recipe.sft.datasets[0].split == "validation"
    assert problems(path, "sft.datasets.3.split=x") == ["--set sft.datasets.3.split=x: sft.datasets[3]: no such list item"]


# ------------------------------------------------------------------------------------- cross-field rules


def test_global_batch_must_divide_over_the_gpus(write):
    text = MINIMAL.replace("batch: {global_size: 128}", "batch: {global_size: 100, micro_batch_size: 2}")
    assert problems(write("r.yaml", text)) == [
        "r.yaml:7:24: sft.batch.global_size: global batch 100 is not divisible by 8 GPUs x micro batch 2 = 16\n"
        "  hint: use a global batch that is a multiple of the 8 GPUs"
    ]
    text = MINIMAL.replace("batch: {global_size: 128}", "batch: {global_size: 120, micro_batch_size: 2}")
    found = problems(write("r.yaml", text))
    assert found[0].endswith("hint: micro_batch_size values that divide it on 8 GPUs: 1, 3, 5, 15")


def test_token_batch_is_derived_within_tolerance(write):
    text = MINIMAL.replace("batch: {global_size: 128}", "batch: {global_tokens: 192000}\n  sample_packing: true")
    text = text.replace("sequence_len: 16378", "sequence_len: 4096") + "compute: {gpus_per_node: 4}\n"
    from medrecipe.recipe.derive import sft_batch

    recipe = load_recipe(write("r.yaml", text)).recipe
    batch = sft_batch(recipe.sft, recipe.compute)
    assert (batch.gpus, batch.micro_batch_size, batch.gradient_accumulation) == (4, 1, 12)
    assert batch.tokens_per_step == 196_608
    assert abs(batch.token_deviation - 0.024) < 0.001
    found = problems(write("r.yaml", text.replace("batch: {global_tokens: 192000}", "batch: {global_tokens: 192000, token_tolerance: 0.01}")))
    assert "192,000 tokens cannot be reached within 1%: the nearest is 196,608" in found[0]


def test_steps_must_select_known_sources_and_prompts_need_generation(write):
    text = MINIMAL + """\
data:
  sources:
    - {name: traces, path: t.jsonl, group: r1}
    - {name: questions, path: q.jsonl, kind: prompts, fields: {prompt: q}}
  steps:
    - {type: min_prompt_words, sources: [r2]}
"""
    found = problems(write("r.yaml", text))
    assert found[0] == "r.yaml:12:46: data.sources[1].kind: source 'questions' has prompts only, and no generate step completes it\n" \
        "  hint: add a `type: generate` step selecting it, or map its responses and use kind: conversations"
    assert found[1] == "r.yaml:14:41: data.steps[0].sources: no source or group named 'r2'\n  hint: sources: traces, questions; groups: r1"


def test_decontamination_needs_evaluation_sets(write):
    text = MINIMAL + "data:\n  sources: [{name: s, path: s.jsonl}]\n  steps: [{type: decontaminate_ngram, n: 8}]\n"
    found = problems(write("r.yaml", text))
    assert found == [
        "r.yaml:11:11: data.steps[0].benchmarks: decontamination needs evaluation sets: list `benchmarks`, or add an `eval` section"
    ]


@pytest.mark.parametrize("override, field", [
    ("rl.data.chosen_key=", "rl.data.chosen_key"), ("rl.data.rejected_key=", "rl.data.rejected_key"),
    ("rl.data.prompt_key=", "rl.data.prompt_key"), ("data.sources.0.fields.prompt=", "data.sources[0].fields.prompt"),
    ("data.sources.0.fields.metadata=[a, '']", "data.sources[0].fields.metadata[1]"),
])
def test_an_empty_column_name_is_refused(cli, override, field):
    """A column is named by at least one character: an empty `chosen_key` crashed validate's dataset check
    (catalog/dataset_checks.py), and an empty `rejected_key` or `prompt_key` passed it."""
    recipe = "ultramedical-rm-llama3-8b" if override.startswith("rl.") else "quickstart"
    result = cli("validate", recipe, "--set", override)
    assert result.code == 2 and "Traceback" not in result.err
    assert f": {field}: String should have at least 1 character" in result.err, result.err


def test_an_empty_sft_dataset_list_is_refused(write, cli):
    """Found by review: `sft.datasets: []` validated and compiled an Axolotl config with no datasets, which only
    Axolotl's own validator (`compile --check`) refused. Leaving the key out still means the data stage's output."""
    found = problems(write("r.yaml", MINIMAL.replace("datasets: [{path: org/data}]", "datasets: []")))
    assert found == ["r.yaml:8:13: sft.datasets: List should have at least 1 item after validation, not 0"]
    result = cli("compile", "quickstart", "--set", "sft.datasets=[]", "--out", "build")
    assert result.code == 2 and "sft.datasets: List should have at least 1 item" in result.err


PUBLISHED = """
name: tiny
base_model: Qwen/Qwen3-8B
eval:
  benchmarks: [medmcqa, medqa]
  published:
    source: the card
    reproduces: X
    scores:
      X: {medmcqa: %s, medqa: 88.61}
    averages: {X: %s}
"""


@pytest.mark.parametrize("medmcqa, average, problem", [
    ("150", "80", "r.yaml:9:20: eval.published.scores.X.medmcqa: Input should be less than or equal to 100"),
    ("-5", "41.81", "r.yaml:9:20: eval.published.scores.X.medmcqa: Input should be greater than or equal to 0"),
    ("74.44", "181.53", "r.yaml:10:19: eval.published.averages.X: Input should be less than or equal to 100"),
])
def test_published_scores_are_percentages(write, medmcqa, average, problem):
    """Found by review: scores of 150 and -5 passed, and `compare` compared with them as they were."""
    assert problems(write("r.yaml", PUBLISHED % (medmcqa, average))) == [problem]


def test_a_published_table_of_fractions_is_refused_with_how_to_write_it(write):
    text = PUBLISHED.replace("88.61", "0.8861") % ("0.7444", "0.81525")
    assert problems(write("r.yaml", text)) == [
        "r.yaml:8:5: eval.published.scores: every score is at most 1, fractions rather than percentages: "
        "write each in percent (74.44 for 0.7444)"]
    # a row can be at most 1 %, a weak baseline's or a hard benchmark's (found by review: it was refused)
    low_row = PUBLISHED.replace("    averages:", "      Baseline: {medmcqa: 0.5, medqa: 0.8}\n    averages:") % ("74.44", "81.525")
    assert load_recipe(write("r.yaml", low_row)).recipe.eval.published.scores["Baseline"] == {"medmcqa": 0.5, "medqa": 0.8}
