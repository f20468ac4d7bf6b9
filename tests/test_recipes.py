"""The recipe zoo: every shipped recipe validates and compiles; the Internist and UltraMedical numbers land where
their tools read them; a fork differs from its parent only where it should.

(Axolotl's, OpenRLHF's and lighteval's own validators check every shipped recipe in test_compile_axolotl.py,
test_compile_openrlhf.py and test_compile_lighteval.py.)"""

from __future__ import annotations

import json

import pytest
import yaml

from medrecipe.compile import data as data_compiler
from medrecipe.run.main_job import build
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

from .conftest import RECIPES

SHIPPED = sorted(RECIPES.glob("*.yaml"))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every shipped recipe compiled once: name -> build folder."""
    builds = {}
    for path in SHIPPED:
        out = tmp_path_factory.mktemp(path.stem)
        build(load_recipe(path), out)
        builds[path.stem] = out
    return builds


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates_and_its_data_plan_builds(cli, recipe, compiled):
    assert cli("validate", str(recipe), "--quiet").code == 0
    loaded = load_recipe(recipe)
    out = compiled[recipe.stem]
    lock = json.loads((out / "lock.json").read_text())
    assert lock["recipe"] == loaded.recipe.name and lock["files"]
    if loaded.recipe.data:
        assert data_compiler.check(loaded, Layout(out.resolve(), loaded.recipe)) == [], "datatrove builds every block"


def test_every_recipe_is_documented():
    index = (RECIPES / "README.md").read_text()
    for path in SHIPPED:
        assert f"`{path.stem}`" in index, f"{path.name} is missing from recipes/README.md"
    for path in SHIPPED:
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema=../schemas/recipe.schema.json")


def test_internist_numbers_land_under_axolotls_keys(compiled):
    out = compiled["internist-7b"]
    text = (out / "sft" / "axolotl.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["base_model"] == "mistralai/Mistral-7B-v0.1"
    assert config["bf16"] is True
    assert config["learning_rate"] == 6e-6
    assert config["adam_epsilon"] == 1e-5
    assert config["num_epochs"] == 4
    assert (config["adam_beta1"], config["adam_beta2"]) == (0.9, 0.95)
    assert config["weight_decay"] == 0.1
    assert config["sequence_len"] == 4096
    assert config["lr_scheduler"] == "cosine"
    assert config["learning_rate"] * config["cosine_min_lr_ratio"] == pytest.approx(1e-8)
    assert config["neftune_noise_alpha"] == 5
    assert config["warmup_steps"] == 100
    assert config["sample_packing"] is True
    assert config["attn_implementation"] == "flash_attention_2"
    assert config["chat_template"] == "alpaca"
    tokens = config["micro_batch_size"] * config["gradient_accumulation_steps"] * 4 * config["sequence_len"]
    assert abs(tokens / 192_000 - 1) < 0.05, "the 192,000-token batch on 4 GPUs"
    assert "192,000 tokens" in text


def test_internist_published_table_is_on_its_card(compiled):
    card = (compiled["internist-7b"] / "cards" / "model" / "README.md").read_text()
    for number in ("60.5", "55.8", "79.4", "76.1", "70.6", "65.9", "63.0", "71.0",  # Internist.ai 7b
                   "27.7", "32.2", "67.8", "19.5", "23.8", "18.5", "23.7", "32.0", "44.7", "51.4", "74.6",  # PMC LLaMA 7b
                   "48.7", "45.7", "75.8", "65.8", "61.1", "52.6", "55.5", "68.0",  # Mistral 7b
                   "52.0", "59.2", "74.4", "26.6", "35.5", "42.6", "28.9", "46.0"):  # Meditron 7b
        assert number in card, number


def test_internist_card_shows_the_token_batch_the_run_uses_beside_the_one_asked_for(compiled):
    card = (compiled["internist-7b"] / "cards" / "model" / "README.md").read_text()
    assert "| Global batch | 196,608 tokens (48 packed sequences of 4,096; the recipe asks for 192,000) |" in card


def test_ultramedical_numbers(compiled):
    out = compiled["ultramedical-llama3-8b"]
    sft = yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())
    assert (sft["base_model"], sft["sequence_len"], sft["learning_rate"], sft["num_epochs"]) == ("meta-llama/Meta-Llama-3-8B", 8192, 1e-5, 3)
    assert sft["micro_batch_size"] * sft["gradient_accumulation_steps"] * 8 == 16
    # [repo] run_sft.py: TRL's SFTTrainer packs (16 sequences of 8,192 tokens a step) and trains on the whole text
    assert sft["sample_packing"] and set(sft["datasets"][0]["roles_to_train"]) == {"system", "user", "assistant"}
    dpo = json.loads((out / "rl" / "args.json").read_text())
    assert dpo["module"] == "openrlhf.cli.train_dpo"
    flags = dpo["flags"]
    assert (flags["model.beta"], flags["adam.lr"], flags["train.batch_size"], flags["data.max_len"], flags["train.max_epochs"]) == (
        0.1, 3e-7, 32, 2048, 1)
    # [repo] dpo_config_full.yaml: warmup_ratio 0.1 (OpenRLHF's own form: the same ratio of all steps), cosine
    assert (flags["lr_warmup_ratio"], flags["lr_scheduler"]) == (0.1, "cosine_with_min_lr")
    # chosen/rejected are whole conversations: the prompt is chosen[:-1], as in the authors' trainer
    assert "data.prompt_key" not in flags and (flags["data.chosen_key"], flags["data.rejected_key"]) == ("chosen", "rejected")
    card = (out / "cards" / "model" / "README.md").read_text()
    # the seed's numbers name no model size and sit ten points above the 8B's own (the authors' README, greedy):
    # the card compares against the 8B's row; the seed's stay in the published table as the paper's best
    published = load_recipe(RECIPES / "ultramedical-llama3-8b.yaml").recipe.eval.published
    assert published.scores[published.reproduces] == {"medmcqa": 61.5, "medqa": 73.3, "pubmedqa": 77.0}
    assert published.scores["UltraMedical paper, best reported"] == {"medmcqa": 72.94, "medqa": 83.9, "pubmedqa": 80}
    assert "| Benchmark | Llama-3-8B-UltraMedical (greedy) (published) |" in card
    for number in ("61.50", "73.30", "77.00"):
        assert number in card
    rm = compiled["ultramedical-rm-llama3-8b"]
    args = json.loads((rm / "rl" / "args.json").read_text())
    assert args["module"] == "openrlhf.cli.train_rm"
    assert args["flags"]["model.model_name_or_path"] == "TsinghuaC3I/Llama-3-8B-UltraMedical"
    rm_card = (rm / "cards" / "model" / "README.md").read_text()
    assert "85.53" in rm_card and "94.12" in rm_card


def test_a_fork_compiles_to_its_parent_but_for_the_base_model(cli, tmp_path, monkeypatch):
    """`new` then `compile`: the two builds differ only in the base model and what is named after the recipe."""
    monkeypatch.chdir(tmp_path)
    assert cli("new", "fork", "--from", "ii-medical-8b-1706", "--set", "base_model=Qwen/Qwen3-4B").code == 0
    parent_out, fork_out = tmp_path / "parent", tmp_path / "fork"
    assert cli("compile", "ii-medical-8b-1706", "--out", str(parent_out)).code == 0
    assert cli("compile", "recipes/fork.yaml", "--out", str(fork_out)).code == 0

    def normalized(out, name):
        return lambda text: text.replace(str(out.resolve()), "BUILD").replace(name, "NAME")

    parent_axolotl = yaml.safe_load(normalized(parent_out, "ii-medical-8b-1706")((parent_out / "sft" / "axolotl.yaml").read_text()))
    fork_axolotl = yaml.safe_load(normalized(fork_out, "fork")((fork_out / "sft" / "axolotl.yaml").read_text()))
    changed = {k for k in parent_axolotl.keys() | fork_axolotl.keys() if parent_axolotl.get(k) != fork_axolotl.get(k)}
    # the base model, and the folders named by content keys (which include the base model)
    assert changed <= {"base_model", "output_dir", "dataset_prepared_path"}
    assert fork_axolotl["base_model"] == "Qwen/Qwen3-4B" and fork_axolotl["chat_template"] == "chatml"
    parent_rl = json.loads(normalized(parent_out, "ii-medical-8b-1706")((parent_out / "rl" / "args.json").read_text()))["flags"]
    fork_rl = json.loads(normalized(fork_out, "fork")((fork_out / "rl" / "args.json").read_text()))["flags"]
    differing = {k for k in parent_rl.keys() | fork_rl.keys() if parent_rl.get(k) != fork_rl.get(k)}
    # where the SFT model, the prepared prompts and the checkpoints live: folders named by content keys
    assert differing <= {"actor.model_name_or_path", "ckpt.output_dir", "ckpt.path", "data.prompt_dataset"}, differing
    assert json.loads((parent_out / "data" / "plan.json").read_text())["steps"] == json.loads((fork_out / "data" / "plan.json").read_text())["steps"]


def test_a_fork_to_a_shorter_context_model_is_flagged(cli):
    result = cli("validate", "ii-medical-8b-1706", "--set", "base_model=meta-llama/Meta-Llama-3-8B")
    assert result.code == 2
    assert "sft.sequence_len: 16378 tokens exceed meta-llama/Meta-Llama-3-8B's 8192 positions" in result.err
    assert "rl.max_response_length" in result.err
    # found by review: lighteval stops with "Context size is less than 0" when the answer budget leaves the prompt none
    assert "eval.sampling.max_new_tokens: 32768 answer tokens leave no room for the prompt in a context of 8192 tokens" in result.err


def test_a_local_models_limits_are_read_from_its_config(cli, tmp_path):
    """Found by review: the length and tensor-parallel checks read the catalog only, so a fork onto a local folder
    validated what vLLM and the model would refuse (Qwen2.5-7B-Instruct's published config.json)."""
    model = tmp_path / "q25"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "intermediate_size": 18944, "vocab_size": 152064,
        "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 32768}))
    result = cli("validate", "ii-medical-8b-1706", "--set", f"base_model={model}", "--set", "rl.rollout.tensor_parallel_size=8",
                 "--set", "sft.sequence_len=40000")
    assert result.code == 2
    assert f"tensor parallel size 8 does not divide {model}'s 28 attention heads" in result.err
    assert f"sft.sequence_len: 40000 tokens exceed {model}'s 32768 positions" in result.err


def test_every_model_a_recipe_serves_or_trains_is_held_to_its_limits(cli):
    """Found by review: DPO's max_len and the curation models' tensor-parallel sizes were never checked."""
    dpo = cli("validate", "ultramedical-llama3-8b", "--set", "rl.max_len=65536")
    assert dpo.code == 2 and "rl.max_len: 65536 tokens exceed meta-llama/Meta-Llama-3-8B's 8192 positions" in dpo.err
    served = cli("validate", "ii-medical-8b-1706", "--set", "data.steps.4.classifier.tensor_parallel_size=3")
    assert served.code == 2 and ("data.steps[4].classifier.tensor_parallel_size: tensor parallel size 3 does not divide "
                                 "Qwen/Qwen2.5-32B-Instruct's 40 attention heads") in served.err


def test_a_fork_onto_another_family_may_not_keep_its_parents_template(cli):
    """Found by review: UltraMedical's explicit llama3 template, kept on a Qwen2.5 base, validated and compiled, and
    Axolotl failed on the first record (the template writes a BOS token Qwen2.5's tokenizer does not have)."""
    result = cli("validate", "ultramedical-llama3-8b", "--set", "base_model=Qwen/Qwen2.5-7B-Instruct")
    assert result.code == 2
    assert ("sft.chat_template: llama3 is Llama 3's chat template, and Qwen/Qwen2.5-7B-Instruct is a Qwen2.5 model" in result.err
            and "chat_template: auto (qwen_25 for Qwen2.5)" in result.err)
    assert cli("validate", "ultramedical-llama3-8b", "--set", "base_model=Qwen/Qwen2.5-7B-Instruct", "--set", "sft.chat_template=auto").code == 0
    # the evaluated model's own limits: its attention heads, not the base model's
    other = cli("validate", "ultramedical-llama3-8b", "--set", "eval.model=Qwen/Qwen2.5-7B-Instruct", "--set", "eval.tensor_parallel_size=8")
    assert "eval.tensor_parallel_size: tensor parallel size 8 does not divide Qwen/Qwen2.5-7B-Instruct's 28 attention heads" in other.err


def test_a_fork_keeps_no_template_written_for_another_model_without_a_word(cli):
    """Found by review: llama3 kept on Gemma-2 (a family medrecipe does not know) and ChatML on Llama-3.2-Instruct
    validated without a word; Axolotl adds the template's turn tokens as new, untrained embeddings."""
    gemma = cli("validate", "ultramedical-llama3-8b", "--set", "base_model=google/gemma-2-9b")
    assert gemma.code == 0
    assert ("sft.chat_template: llama3 is Llama 3's chat template, and medrecipe does not know google/gemma-2-9b's family"
            in gemma.err)
    llama = cli("validate", "quickstart", "--set", "base_model=meta-llama/Llama-3.2-1B-Instruct")
    assert llama.code == 0
    assert ("sft.chat_template: meta-llama/Llama-3.2-1B-Instruct was tuned to chat in the llama3 format, and chatml "
            "writes another" in llama.err) and "chat_template: auto (llama3)" in llama.err
    # a base model has no format of its own to keep: Internist trains Mistral-7B-v0.1 with Alpaca, as its card says
    assert "chat_template" not in cli("validate", "internist-7b").err


def test_a_qwen35_base_is_warned_of_the_think_opener_its_auto_template_leaves_untrained(cli):
    """Found by review: `auto` is the tokenizer's own template for Qwen3.5, which (as Axolotl 0.19.0's qwen3_5.jinja,
    lines 96-103) writes the <think> opener itself, outside the loss; the check read the recipe's word `auto`, not the
    template it resolves to, and warned only with an explicit tokenizer_default."""
    result = cli("validate", "quickstart", "--set", "base_model=Qwen/Qwen3.5-9B", "--set", "sft.chat_template=auto")
    assert result.code == 0
    assert ("sft.chat_template: auto (tokenizer_default for Qwen/Qwen3.5-9B): with this template Axolotl leaves the <think> "
            "opener of the answer out of the loss") in result.err
    axolotl_own = cli("validate", "quickstart", "--set", "base_model=Qwen/Qwen3.5-9B", "--set", "sft.chat_template=qwen3_5")
    assert "sft.chat_template: qwen3_5: with this template Axolotl leaves the <think> opener" in axolotl_own.err
    # ChatML, which `auto` picks for Qwen3, trains the opener with the answer
    assert "<think>" not in cli("validate", "quickstart", "--set", "base_model=Qwen/Qwen3-4B", "--set", "sft.chat_template=auto").err


def test_the_tokenizers_own_template_is_the_format_a_chat_model_was_tuned_in(cli):
    """Found by review: tokenizer_default on SmolLM2-135M-Instruct was warned of as a format other than chatml, the
    one it was tuned in; the tokenizer's own template is the model's own format."""
    own = cli("validate", "quickstart", "--set", "sft.chat_template=tokenizer_default")
    assert own.code == 0 and "sft.chat_template" not in own.err
    # another format than the one it was tuned in is still said
    other = cli("validate", "quickstart", "--set", "sft.chat_template=alpaca")
    assert ("sft.chat_template: HuggingFaceTB/SmolLM2-135M-Instruct was tuned to chat in the chatml format, and alpaca writes "
            "another") in other.err


def test_a_chat_model_not_named_so_is_warned_of_a_kept_template(cli, tmp_path):
    """Found by review: chat-tuned-ness was read from the id (instruct, chat, -it), so a fork onto Qwen3-8B (the
    post-trained model) kept Internist's alpaca, and one onto Llama-3-8B-UltraMedical (SFT in Llama 3's format) kept
    ChatML, without a word. The catalog says which of its models are tuned to chat, from their cards."""
    qwen = cli("compile", "internist-7b", "--set", "base_model=Qwen/Qwen3-8B", "--stage", "sft", "--out", str(tmp_path / "q"))
    assert qwen.code == 0
    assert ("sft.chat_template: Qwen/Qwen3-8B was tuned to chat in the chatml format, and alpaca writes another" in qwen.err
            and "chat_template: auto (chatml)" in qwen.err)
    assert yaml.safe_load((tmp_path / "q" / "sft" / "axolotl.yaml").read_text())["chat_template"] == "alpaca"  # as asked
    ultra = cli("validate", "quickstart", "--set", "base_model=TsinghuaC3I/Llama-3-8B-UltraMedical")
    assert ("sft.chat_template: TsinghuaC3I/Llama-3-8B-UltraMedical was tuned to chat in the llama3 format, and chatml "
            "writes another") in ultra.err
    # Qwen3's own formats, Axolotl's qwen3 and the tokenizer's, are no other format (their <think> opener is another matter)
    for template in ("qwen3", "tokenizer_default"):
        own = cli("validate", "ii-medical-8b-1706", "--set", f"sft.chat_template={template}")
        assert "was tuned to chat" not in own.err and "leaves the <think> opener" in own.err, template
    # the base models of the shipped recipes have no format of their own to keep
    assert "was tuned to chat" not in cli("validate", "quickstart", "--set", "base_model=meta-llama/Llama-3.1-8B").err


def test_a_turn_end_the_base_models_vocabulary_lacks_is_warned_of(cli, tmp_path):
    """Found by review: a quickstart fork onto Mistral-7B-v0.1 or Meta-Llama-3-8B compiled ChatML with
    special_tokens.eos_token <|im_end|>, a token neither vocabulary has: Axolotl adds it, with a new embedding."""
    for model, hint in (("mistralai/Mistral-7B-v0.1", "auto (mistral_v1)"), ("meta-llama/Meta-Llama-3-8B", "auto (llama3)")):
        out = tmp_path / model.split("/")[1]
        result = cli("compile", "quickstart", "--set", f"base_model={model}", "--stage", "sft", "--out", str(out))
        assert result.code == 0
        assert yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())["special_tokens"] == {"eos_token": "<|im_end|>"}
        assert (f"sft.chat_template: chatml ends each turn with <|im_end|>, a token {model}'s vocabulary lacks: Axolotl adds "
                "it as a new token") in result.err and f"hint: chat_template: {hint}" in result.err, model
    # Llama 3's vocabulary has its own turn end, <|eot_id|>, base models' too (UltraMedical trains Meta-Llama-3-8B so)
    assert "vocabulary lacks" not in cli("validate", "ultramedical-llama3-8b").err
    # a model the catalog does not know is not guessed at: OpenHermes-2.5-Mistral-7B has ChatML's tokens
    assert "vocabulary lacks" not in cli("validate", "quickstart", "--set", "base_model=teknium/OpenHermes-2.5-Mistral-7B").err


def test_every_catalog_model_names_turn_ends_the_templates_write():
    from medrecipe.catalog.models import KNOWN, TURN_ENDS

    for name, facts in KNOWN.items():
        assert facts.turn_ends <= set(TURN_ENDS.values()), name


def test_model_families_are_matched_as_whole_names():
    """Found by review: `llama-?3` matched CodeLlama-34b and LLaMA-30b, which then trained with Llama 3's template
    and a new <|eot_id|> token."""
    from medrecipe.catalog.models import chat_template_for, family

    for model in ("codellama/CodeLlama-34b-Instruct-hf", "huggyllama/llama-30b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
                  "openlm-research/open_llama_3b"):
        assert family(model) is None and chat_template_for(model) is None, model
    for model, expected in (("meta-llama/Meta-Llama-3-8B", "Llama 3"), ("meta-llama/Llama-3.2-1B-Instruct", "Llama 3"),
                            ("nvidia/Llama3-ChatQA-1.5-8B", "Llama 3"), ("Qwen/Qwen3-30B-A3B", "Qwen3"),
                            ("google/gemma-3-4b-it", "Gemma 3"), ("microsoft/Phi-3-mini-4k-instruct", "Phi-3")):
        assert family(model) == expected, model


def test_a_fork_onto_another_base_names_the_models_its_parent_trains_instead(cli, tmp_path):
    """Found by review: the reward-model recipe trains its rl.init_from (the UltraMedical SFT model), so its fork onto
    Qwen3-8B trained Llama 3 while its description, summary and base_model said Qwen3-8B."""
    forked = cli("new", "rm-qwen", "--from", "ultramedical-rm-llama3-8b", "--set", "base_model=Qwen/Qwen3-8B", "--dir", str(tmp_path))
    assert forked.code == 2 and not (tmp_path / "rm-qwen.yaml").exists()
    assert ("the parent ultramedical-rm-llama3-8b also names the model a stage starts from or evaluates (rl.init_from: "
            "TsinghuaC3I/Llama-3-8B-UltraMedical), which base_model does not change") in forked.err
    said = cli("new", "rm-qwen", "--from", "ultramedical-rm-llama3-8b", "--set", "base_model=Qwen/Qwen3-8B",
               "--set", "rl.init_from=Qwen/Qwen3-8B", "--dir", str(tmp_path))
    assert said.code == 0
    assert "rl reward_model from Qwen/Qwen3-8B" in cli("validate", str(tmp_path / "rm-qwen.yaml")).out
    # kept on purpose and said: RL trains another family than base_model's
    mixed = cli("validate", "ultramedical-rm-llama3-8b", "--set", "base_model=Qwen/Qwen3-8B")
    assert "rl.init_from: RL trains TsinghuaC3I/Llama-3-8B-UltraMedical, a Llama 3 model, and base_model is Qwen/Qwen3-8B" in mixed.err


def test_the_evaluated_rl_model_has_the_architecture_rl_started_from(cli):
    """An RL stage started from a model of its own (`rl.init_from`) makes a model of that model's sizes: the eval
    checks held it to base_model's."""
    result = cli("validate", "ultramedical-llama3-8b", "--set", "rl.init_from=Qwen/Qwen2.5-7B-Instruct", "--set", "eval.model=rl",
                 "--set", "eval.tensor_parallel_size=8")
    assert "eval.tensor_parallel_size: tensor parallel size 8 does not divide Qwen/Qwen2.5-7B-Instruct's 28 attention heads" in result.err
