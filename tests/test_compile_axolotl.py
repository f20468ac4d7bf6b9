"""The SFT stage compiled into an Axolotl config, checked by Axolotl's own validation."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml  # PyYAML: how Axolotl reads its config

from medrecipe.catalog import models
from medrecipe.compile import axolotl
from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe
from medrecipe.recipe.model import SFT

from .conftest import RECIPES

# Internist.ai 7b's hyperparameters (seed card 003): a batch in tokens, packing, NEFTune, 4 GPUs.
INTERNIST_LIKE = """
name: internist-like
base_model: mistralai/Mistral-7B-v0.1
sft:
  datasets: [{path: org/medical-guidelines, format: alpaca}]
  chat_template: alpaca
  sequence_len: 4096
  sample_packing: true
  batch: {global_tokens: 192000, micro_batch_size: 1}
  epochs: 4
  learning_rate: 6.0e-6
  adam_epsilon: 1.0e-5
  adam_betas: [0.9, 0.95]
  weight_decay: 0.1
  lr_scheduler: cosine
  min_lr: 1.0e-8
  warmup_steps: 100
  neftune_noise_alpha: 5
  bf16: true
  attention: flash_attention
compute: {gpus_per_node: 4}
"""

# Every SFT field set away from its default, with where it must land in the Axolotl config.
EVERY_FIELD = """
name: every-field
base_model: Qwen/Qwen3-8B
hub: {namespace: my-org, sft_repo: every-field-sft}
data:
  sources: [{name: s, path: data.jsonl}]
sft:
  base_model: Qwen/Qwen3-4B
  chat_template: chatml
  roles_to_train: [assistant, tool]
  sequence_len: 2048
  excess_length: truncate
  sample_packing: true
  epochs: 2
  learning_rate: 3.0e-5
  lr_scheduler: cosine
  min_lr: 3.0e-6
  warmup_steps: 20
  optimizer: adamw_torch
  adam_betas: [0.85, 0.98]
  adam_epsilon: 1.0e-6
  weight_decay: 0.05
  max_grad_norm: 0.5
  neftune_noise_alpha: 3
  bf16: false
  attention: sdpa
  gradient_checkpointing: false
  deepspeed: zero2
  batch: {global_size: 96, micro_batch_size: 2}
  nodes: 2
  gpus_per_node: 4
  saves_per_epoch: 3
  logging_steps: 5
  val_set_size: 0.02
  max_steps: 40
  axolotl: {save_total_limit: 2}
"""


def compile_sft(path, *overrides):
    loaded = load_recipe(path, overrides)
    out = path.parent / "build"
    builds = compile_recipe(loaded, out, ["sft"])
    text = (out / "sft" / "axolotl.yaml").read_text()
    return yaml.safe_load(text), text, builds[0], Layout(out.resolve(), loaded.recipe)


def test_every_sft_field_maps_to_an_axolotl_key(write):
    config, _, build, layout = compile_sft(write("r.yaml", EVERY_FIELD))
    dataset = config["datasets"][0]
    expected = {
        "base_model": config["base_model"] == "Qwen/Qwen3-4B",
        "chat_template": config["chat_template"] == "chatml",
        "datasets": dataset["path"] == str(layout.data_output()) and dataset["type"] == "chat_template"
        and dataset["field_messages"] == "messages" and dataset["message_property_mappings"] == {"role": "role", "content": "content"},
        "roles_to_train": dataset["roles_to_train"] == ["assistant", "tool"],
        "sequence_len": config["sequence_len"] == 2048,
        "excess_length": config["excess_length_strategy"] == "truncate",
        "sample_packing": config["sample_packing"] is True,
        "epochs": config["num_epochs"] == 2,
        "learning_rate": config["learning_rate"] == 3e-5,
        "lr_scheduler": config["lr_scheduler"] == "cosine",
        "min_lr": config["cosine_min_lr_ratio"] * config["learning_rate"] == pytest.approx(3e-6),
        "warmup_steps": config["warmup_steps"] == 20 and "warmup_ratio" not in config,
        "warmup_ratio": True,  # the alternative to warmup_steps: test_the_warmup_axolotl_derives_is_the_recipes
        "optimizer": config["optimizer"] == "adamw_torch",
        "adam_betas": (config["adam_beta1"], config["adam_beta2"]) == (0.85, 0.98),
        "adam_epsilon": config["adam_epsilon"] == 1e-6,
        "weight_decay": config["weight_decay"] == 0.05,
        "max_grad_norm": config["max_grad_norm"] == 0.5,
        "neftune_noise_alpha": config["neftune_noise_alpha"] == 3,
        "bf16": config["bf16"] is False,
        "attention": config["attn_implementation"] == "sdpa",
        "gradient_checkpointing": config["gradient_checkpointing"] is False,
        "deepspeed": config["deepspeed"] == str(layout.stage_dir("sft") / "deepspeed" / "zero2.json"),
        # 96 = micro 2 x accumulation 6 x (2 nodes x 4 GPUs)
        "batch": (config["micro_batch_size"], config["gradient_accumulation_steps"]) == (2, 6),
        "nodes": "8 GPUs" in build.facts[0][1],
        "gpus_per_node": "(2 nodes x 4 GPUs)" in dict(build.facts)["launch"],
        "saves_per_epoch": config["saves_per_epoch"] == 3,
        "logging_steps": config["logging_steps"] == 5,
        "val_set_size": config["val_set_size"] == 0.02,
        "max_steps": config["max_steps"] == 40,
        "axolotl": config["save_total_limit"] == 2,
    }
    assert set(expected) == set(SFT.model_fields), "a new SFT field needs a mapping (and a line here)"
    assert [field for field, ok in expected.items() if not ok] == []
    assert config["output_dir"] == str(layout.sft_output().parent)
    assert config["seed"] == 42
    assert not any(key.startswith(("hub_", "push_")) for key in config)  # `publish` pushes; Axolotl pushes nothing



def test_numbers_are_floats_to_pyyaml(write):
    # PyYAML reads `5e-05` as a string, and Axolotl's learning_rate accepts strings: every float needs a dot.
    config, text, _, _ = compile_sft(write("r.yaml", INTERNIST_LIKE))
    for key in ("learning_rate", "adam_epsilon", "cosine_min_lr_ratio", "adam_beta2", "weight_decay"):
        assert isinstance(config[key], float), (key, config[key])
    assert "learning_rate: 6.0e-06" in text


def test_token_batch_is_derived_and_recorded(write):
    config, text, build, _ = compile_sft(write("r.yaml", INTERNIST_LIKE))
    # 192,000 tokens / (4 GPUs x 1 x 4096) = 11.7 -> 12 steps of accumulation = 196,608 tokens (+2.4 %)
    assert (config["micro_batch_size"], config["gradient_accumulation_steps"]) == (1, 12)
    assert config["sample_packing"] is True and config["sequence_len"] == 4096
    assert "# Token batch: requested 192,000 tokens per step; compiled 196,608" in text and "+2.4%" in text
    assert "# Minimum learning rate: 1e-08" in text
    assert any(w.startswith("sft.batch.global_tokens:") for w in build.warnings)
    assert config["datasets"] == [{"path": "org/medical-guidelines", "split": "train", "type": "alpaca"}]
    assert config["neftune_noise_alpha"] == 5 and config["warmup_steps"] == 100
    assert (config["adam_beta1"], config["adam_beta2"], config["adam_epsilon"]) == (0.9, 0.95, 1e-5)
    assert config["cosine_min_lr_ratio"] * config["learning_rate"] == pytest.approx(1e-8)


def test_impossible_batch_is_a_recipe_error_not_a_silent_change(write, cli):
    result = cli("validate", str(write("r.yaml", INTERNIST_LIKE)), "--set", "sft.batch={global_size: 100, micro_batch_size: 3}")
    assert result.code == 2
    assert "sft.batch.global_size" in result.err and "not divisible by 4 GPUs x micro batch 3" in result.err


def test_passthrough_may_not_override_a_derived_key(write, cli):
    """Refused by `validate` too, at the key's line (review: validate said ok, compile refused with no line)."""
    write("r.yaml", INTERNIST_LIKE.replace("  attention: flash_attention\n", "  attention: flash_attention\n  axolotl:\n    micro_batch_size: 4\n"))
    for command in ("validate", "compile"):
        result = cli(command, "r.yaml")
        assert result.code == 2
        assert re.search(r"r\.yaml:\d+:\d+: sft\.axolotl\.micro_batch_size: medrecipe writes micro_batch_size from "
                         r"sft\.batch\.micro_batch_size", result.err), result.err
        assert "set sft.batch.micro_batch_size instead" in result.err


def test_axolotl_pushes_nothing_while_training_and_a_recipe_that_makes_it_is_warned_of(write, cli):
    """Found by review: with hub.namespace set, the config's hub_model_id made Axolotl 0.19.0 push its output_dir
    (core/builders/base.py 495-503: push_to_hub, hub_private_repo, hub_always_push) at every save and at the end, the
    tokenized dataset (dataset_prepared_path is inside it) and the logs with it, to a private `<name>-sft` repository
    that `publish` never made, also for a recipe without RL. `publish` pushes the collected model alone."""
    path = write("r.yaml", EVERY_FIELD)
    assert "hub_model_id" not in compile_sft(path)[0]
    result = cli("validate", str(path), "--set", "sft.axolotl.hub_model_id=someone/else")
    assert result.code == 0, result.err
    assert "sft.axolotl.hub_model_id: hub_model_id: the tool pushes the training folder, the tokenized dataset and logs" in result.err


def test_a_local_dataset_is_named_where_axolotl_runs(tmp_path, monkeypatch):
    """Found by review: a dataset path relative to the recipe reached axolotl.yaml as written, and Axolotl, which runs in
    the stage's work folder, found nothing there (`misconfigured dataset path (train.jsonl)`, after validate, compile
    and the dry run had passed). A local dataset is named by its absolute path; a Hub id stays one."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    recipe = recipes / "r.yaml"
    recipe.write_text("name: local-sft\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n"
                      "sft: {datasets: [{path: train.jsonl}, {path: ./not-yet}, {path: org/hub-set}], sequence_len: 256}\n")
    monkeypatch.chdir(tmp_path)
    config = compile_sft(recipe)[0]
    assert [d["path"] for d in config["datasets"]] == [str((recipes / "train.jsonl").resolve()),
                                                       str((recipes / "not-yet").resolve()), "org/hub-set"]


def test_deepspeed_configs_ship_with_the_package(write):
    for name in ("zero1", "zero2", "zero3", "zero3_offload"):
        config = json.loads(axolotl.deepspeed_config(name))
        assert config["zero_optimization"]["stage"] == int(name[4])
        assert config["train_micro_batch_size_per_gpu"] == "auto"  # Axolotl fills it from the recipe's batch
    path = write("r.yaml", INTERNIST_LIKE)
    compile_sft(path, "sft.deepspeed=zero3_offload")
    assert (path.parent / "build/sft/deepspeed/zero3_offload.json").read_text() == axolotl.deepspeed_config("zero3_offload")


# ------------------------------------------------------------------------------- Axolotl's own validation


@pytest.fixture(scope="module")
def sft_env(tool_python):
    return tool_python("sft")


def compiled_for_check(path, *overrides, out="build"):
    loaded = load_recipe(path, overrides)
    out = path.parent / out
    compile_recipe(loaded, out, ["sft"])
    return loaded, Layout(out.resolve(), loaded.recipe)


def check(path, *overrides) -> list[str]:
    return axolotl.check(*compiled_for_check(path, *overrides))


@pytest.mark.parametrize("recipe", [INTERNIST_LIKE, EVERY_FIELD])
def test_axolotl_accepts_the_configs(write, sft_env, recipe):
    assert check(write("r.yaml", recipe)) == []


def test_axolotl_check_catches_unknown_and_invalid_keys(write, sft_env):
    path = write("r.yaml", INTERNIST_LIKE)
    keys, template = axolotl.check_many([
        compiled_for_check(path, "sft.axolotl={sample_packing_eff: 0.9, save_total_limit: two}", out="keys"),
        compiled_for_check(path, "sft.chat_template=alpacca", out="template"),
    ])
    assert "sample_packing_eff: not a key Axolotl knows (it would be ignored)" in keys
    assert any(p.startswith("save_total_limit: Input should be a valid integer") for p in keys)
    assert any(p.startswith("chat_template") for p in template)


# Axolotl's own derivation of the warmup from its config (core/builders/base.py), at 1,000 optimizer steps.
AXOLOTL_WARMUP = """
import json, sys, types
import yaml
from axolotl.core.builders.base import TrainerBuilderBase
from axolotl.utils.dict import DictDefault

found = {}
for path in sys.argv[1:]:
    kwargs = {}
    TrainerBuilderBase._configure_warmup_and_logging(types.SimpleNamespace(cfg=DictDefault(yaml.safe_load(open(path)))), 1000, kwargs)
    found[path] = kwargs["warmup_steps"]
print(json.dumps(found))
"""


def test_the_warmup_axolotl_derives_is_the_recipes(write, sft_env):
    """A recipe without warmup has none (Axolotl alone would warm up 3 % of the steps, at most 100)."""
    path = write("r.yaml", EVERY_FIELD)
    variants = {"none": ["sft.warmup_steps=null"], "steps": [], "ratio": ["sft.warmup_steps=null", "sft.warmup_ratio=0.05"]}
    configs = {}
    for name, overrides in variants.items():
        compiled_for_check(path, *overrides, out=name)
        configs[name] = str(path.parent / name / "sft" / "axolotl.yaml")
    result = subprocess.run([str(sft_env), "-c", AXOLOTL_WARMUP, *configs.values()], capture_output=True, text=True, check=True)
    warmup = json.loads(result.stdout.splitlines()[-1])
    assert {name: warmup[config] for name, config in configs.items()} == {"none": 0, "steps": 20, "ratio": 50}


def test_a_constant_schedule_takes_no_warmup(write):
    from medrecipe.errors import UserError

    with pytest.raises(UserError, match="the `constant` schedule has no warmup: use `constant_with_warmup`"):
        load_recipe(write("r.yaml", EVERY_FIELD), ["sft.lr_scheduler=constant"])
    assert load_recipe(write("r.yaml", EVERY_FIELD), ["sft.lr_scheduler=constant", "sft.warmup_steps=0"]).recipe.sft.warmup_steps == 0


SHIPPED_WITH_SFT = sorted(p.name for p in RECIPES.glob("*.yaml") if load_recipe(p).recipe.sft is not None)


@pytest.fixture(scope="module")
def shipped_problems(sft_env, tmp_path_factory):
    """Every shipped recipe with an SFT stage, compiled and checked by Axolotl in one process."""
    builds = {}
    for name in SHIPPED_WITH_SFT:
        loaded = load_recipe(RECIPES / name)
        out = tmp_path_factory.mktemp(name)
        compile_recipe(loaded, out, ["sft"])
        builds[name] = (loaded, Layout(out.resolve(), loaded.recipe))
    return dict(zip(builds, axolotl.check_many(list(builds.values()))))


@pytest.mark.parametrize("recipe", SHIPPED_WITH_SFT)
def test_every_shipped_recipe_compiles_to_a_config_axolotl_accepts(shipped_problems, recipe):
    assert shipped_problems[recipe] == []


def test_compiler_targets_the_pinned_axolotl():
    from medrecipe.envs import tools

    assert f"axolotl=={axolotl.VERSION}" in tools.ENVIRONMENTS["sft"].requirements(gpu=False)


# The end of an assistant turn in each template medrecipe chooses, read from Axolotl's own templates.
_TURN_ENDINGS = r"""
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
from axolotl.utils.chat_templates import get_chat_template

def raise_exception(message):
    raise ValueError(message)

found = {}
for name in json.loads(sys.argv[1]):
    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(get_chat_template(name))
    text = template.render(messages=[{"role": "user", "content": "QUESTION"}, {"role": "assistant", "content": "ANSWER"}],
                           bos_token="<BOS>", eos_token="<EOS>", raise_exception=raise_exception, add_generation_prompt=False)
    found[name] = text.split("ANSWER", 1)[1]
print(json.dumps(found))
"""


def test_each_templates_turn_end_is_the_token_axolotl_writes_after_an_answer(sft_env):
    """TURN_ENDS names the token each template ends an assistant turn with; the templates it leaves out end one with
    the tokenizer's EOS, which Axolotl trains and generation stops at already."""
    names = sorted({template for _, _, template in models._FAMILIES if template} | set(models.TURN_ENDS) | {"alpaca"})
    result = subprocess.run([str(sft_env), "-c", _TURN_ENDINGS, json.dumps(names)], capture_output=True, text=True, check=True)
    after_the_answer = json.loads(result.stdout.splitlines()[-1])
    for name in names:
        assert after_the_answer[name].startswith(models.TURN_ENDS.get(name, "<EOS>")), (name, after_the_answer[name])


def test_passed_through_special_tokens_join_the_turn_end_and_may_not_replace_it(write, cli, tmp_path):
    recipe = write("r.yaml", INTERNIST_LIKE)
    out = tmp_path / "b"
    compiled = cli("compile", str(recipe), "--stage", "sft", "--out", str(out), "--set", "base_model=meta-llama/Meta-Llama-3-8B", "--set", "sft.chat_template=llama3",
                   "--set", "sft.axolotl={special_tokens: {pad_token: <|end_of_text|>}}")
    assert compiled.code == 0, compiled.err
    config = yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())
    assert config["special_tokens"] == {"eos_token": "<|eot_id|>", "pad_token": "<|end_of_text|>"}
    for nothing in ("{}", "null"):  # an empty or null mapping adds nothing and removes nothing
        assert cli("compile", str(recipe), "--stage", "sft", "--out", str(out), "--set", "base_model=meta-llama/Meta-Llama-3-8B", "--set", "sft.chat_template=llama3",
                   "--set", f"sft.axolotl={{special_tokens: {nothing}}}").code == 0
        assert yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())["special_tokens"] == {"eos_token": "<|eot_id|>"}
    refused = cli("compile", str(recipe), "--stage", "sft", "--out", str(out), "--set", "base_model=meta-llama/Meta-Llama-3-8B", "--set", "sft.chat_template=llama3",
                  "--set", "sft.axolotl={special_tokens: {eos_token: <|end_of_text|>}}")
    assert refused.code == 2 and "sft.axolotl.special_tokens.eos_token: sft.chat_template sets it" in refused.err
