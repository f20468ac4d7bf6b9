"""The training numbers of the other shipped reproductions, under the right key of what the shipped recipe itself
compiles to, and meaning there what they meant in the published run: Internist.ai 7b's model card (seed 003, Axolotl,
recipes/internist-7b.yaml) and UltraMedical's released 8B run (the seed 004 abstract names no hyperparameter: they
are the authors' repository's, github.com/TsinghuaC3I/UltraMedical sft_config_full.yaml, dpo_config_full.yaml and
run_sft.sh, as the recipe's comments cite them). Meanings are Axolotl 0.19.0's and OpenRLHF 0.11.2's, cited where
they are not the key's name."""

from __future__ import annotations

import json

import pytest
import yaml

from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe
from medrecipe.run.stages import RunOptions, run_stage

from .conftest import RECIPES


def compiled(tmp_path_factory, name: str, stages: list[str]):
    loaded = load_recipe(RECIPES / f"{name}.yaml")
    out = tmp_path_factory.mktemp(name).resolve()
    compile_recipe(loaded, out, stages)
    return loaded, out


@pytest.fixture(scope="module")
def internist(tmp_path_factory):
    loaded, out = compiled(tmp_path_factory, "internist-7b", ["sft"])
    return loaded, out, yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())


# "Training Hyperparameters" of the Internist.ai 7b card -> Axolotl key and value
INTERNIST_CARD = [
    ("bf16 true", "bf16", True),
    ("lr 6e-6", "learning_rate", 6e-6),
    ("eps 1e-5", "adam_epsilon", 1e-5),
    ("epochs 4", "num_epochs", 4),
    ("betas [0.9, 0.95]", "adam_beta1", 0.9),
    ("betas [0.9, 0.95]", "adam_beta2", 0.95),
    ("weight decay 0.1", "weight_decay", 0.1),
    ("seq length 4096", "sequence_len", 4096),
    ("lr scheduler cosine", "lr_scheduler", "cosine"),
    ("NEFT alpha 5", "neftune_noise_alpha", 5),
    ("warmup iteration 100", "warmup_steps", 100),  # optimizer steps, as HF's TrainingArguments counts them
    ("We used FlashAttention, NEFTune and sample packing", "sample_packing", True),
    ("We used FlashAttention", "attn_implementation", "flash_attention_2"),
    ("The model uses the Alpaca format", "chat_template", "alpaca"),
]


@pytest.mark.parametrize("card, key, value", INTERNIST_CARD)
def test_internist_number_in_axolotl_config(internist, card, key, value):
    assert internist[2][key] == value


def test_internist_minimum_learning_rate_is_the_schedule_floor(internist):
    # "min lr 1e-8": Axolotl's cosine schedule decays to cosine_min_lr_ratio x learning_rate
    # (axolotl 0.19.0 core/trainers/mixins/scheduler.py, get_cosine_schedule_with_min_lr)
    config = internist[2]
    assert config["cosine_min_lr_ratio"] * config["learning_rate"] == pytest.approx(1e-8)


def test_internist_token_batch_on_the_four_gpus_the_launch_starts(internist, tool_python, capsys):
    """"Batch size 192,000 tokens" on "a server with 4 NVIDIA A100 80GB GPUs": with sample packing, Axolotl fills each
    micro batch with up to micro_batch_size x sequence_len tokens, and its global batch is micro batch x accumulation
    x the processes started (axolotl 0.19.0 utils/config/__init__.py, world size): the launch starts 4. Whole packed
    sequences make it 196,608 tokens, 2.4 % above the card's figure, which the compile says."""
    loaded, out, config = internist
    tool_python("sft")  # the dry run names the environment's interpreter
    assert run_stage(loaded, Layout(out, loaded.recipe), "sft", RunOptions(dry_run=True)).status == "dry-run"
    assert "-m torch.distributed.run --nnodes 1 --nproc-per-node 4 -m axolotl.cli.train" in capsys.readouterr().out
    tokens = config["micro_batch_size"] * config["gradient_accumulation_steps"] * 4 * config["sequence_len"]
    assert tokens == 196_608 and abs(tokens / 192_000 - 1) < 0.025


@pytest.fixture(scope="module")
def ultramedical(tmp_path_factory):
    loaded, out = compiled(tmp_path_factory, "ultramedical-llama3-8b", ["sft", "rl"])
    axolotl = yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())
    return loaded, out, axolotl, json.loads((out / "rl" / "args.json").read_text())


# sft_config_full.yaml and run_sft.sh (the released 8B: "1e-5-length8192") -> Axolotl key and value
ULTRAMEDICAL_SFT = [
    ("learning_rate: 1.0e-05", "learning_rate", 1e-5),
    ("num_train_epochs: 3", "num_epochs", 3),
    ("max_seq_length: 8192", "sequence_len", 8192),
    ("lr_scheduler_type: cosine", "lr_scheduler", "cosine"),
    ("warmup_ratio: 0.1", "warmup_ratio", 0.1),
    ("packing: true", "sample_packing", True),
    ("bf16: true", "bf16", True),
    ("model_name_or_path: meta-llama/Meta-Llama-3-8B", "base_model", "meta-llama/Meta-Llama-3-8B"),
]


@pytest.mark.parametrize("source, key, value", ULTRAMEDICAL_SFT)
def test_ultramedical_sft_number_in_axolotl_config(ultramedical, source, key, value):
    assert ultramedical[2][key] == value


def test_ultramedical_sft_batch_of_2_per_device_on_8_gpus(ultramedical):
    # per_device_train_batch_size 2 on 8 GPUs, no accumulation: 16 packed sequences of 8,192 tokens a step
    config = ultramedical[2]
    assert (config["micro_batch_size"], config["gradient_accumulation_steps"]) == (2, 1)
    assert ultramedical[0].recipe.compute.gpus_per_node == 8


# dpo_config_full.yaml -> OpenRLHF train_dpo flag and value; what it leaves at HF's defaults (adamw_torch's betas,
# no weight decay, gradient clipping at 1.0) is written out, OpenRLHF's own defaults being other (betas 0.9, 0.95)
ULTRAMEDICAL_DPO = [
    ("beta: 0.1", "model.beta", 0.1),
    ("learning_rate: 3.0e-7", "adam.lr", 3e-7),
    ("num_train_epochs: 1", "train.max_epochs", 1),
    ("max_length: 2048", "data.max_len", 2048),
    ("optim: adamw_torch (HF's betas)", "adam.betas", [0.9, 0.999]),
    ("weight decay: HF's default", "adam.weight_decay", 0.0),
    ("max_grad_norm: HF's default", "max_norm", 1.0),
]


@pytest.mark.parametrize("source, flag, value", ULTRAMEDICAL_DPO)
def test_ultramedical_dpo_number_in_openrlhf_flags(ultramedical, source, flag, value):
    assert ultramedical[3]["module"] == "openrlhf.cli.train_dpo"
    assert ultramedical[3]["flags"][flag] == value


def test_ultramedical_dpo_batch_schedule_and_warmup_mean_what_the_repository_ran(ultramedical):
    """4 pairs per device on 8 GPUs, no accumulation: OpenRLHF's train.batch_size is the global batch (cli/train_dpo.py,
    an optimizer step every train.batch_size pairs). HF's `cosine` decays to 0: OpenRLHF's cosine_with_min_lr with a
    ratio of 0. warmup_ratio 0.1 of the steps, which OpenRLHF takes as ceil(max_steps x ratio) like HF."""
    flags = ultramedical[3]["flags"]
    assert (flags["train.batch_size"], flags["train.micro_batch_size"]) == (32, 4)
    assert (flags["lr_scheduler"], flags["min_lr_ratio"], flags["lr_warmup_ratio"]) == ("cosine_with_min_lr", 0.0, 0.1)
    assert "torch.distributed.run --nnodes 1 --nproc-per-node 8" in (ultramedical[1] / "rl" / "launch.sh").read_text()
