"""Every SFT and RL number of the II-Medical-8B-1706 model card (seed 000), under the right key of what
recipes/ii-medical-8b-1706.yaml compiles to: sft/axolotl.yaml (Axolotl) and rl/args.json (OpenRLHF)."""

from __future__ import annotations

import json

import pytest
import yaml

from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe
from medrecipe.run.stages import RunOptions, run_stage

from .conftest import RECIPES


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("ii-medical")
    compile_recipe(load_recipe(RECIPES / "ii-medical-8b-1706.yaml"), out, ["sft", "rl"])
    axolotl = yaml.safe_load((out / "sft" / "axolotl.yaml").read_text())
    args = json.loads((out / "rl" / "args.json").read_text())
    return axolotl, args, (out / "rl" / "launch.sh").read_text()


# "For SFT stage we using the hyperparameters:"
SFT_CARD = [
    ("Max Length: 16378", "sequence_len", 16378),
    ("Learning-Rate: 5e-5", "learning_rate", 5e-5),
    ("Number Of Epoch: 6", "num_epochs", 6),
]


@pytest.mark.parametrize("card, key, value", SFT_CARD)
def test_sft_number_in_axolotl_config(build, card, key, value):
    assert build[0][key] == value


def test_sft_batch_size_128(build, tool_python, tmp_path, capsys):
    # "Batch Size: 128" = micro batch x gradient accumulation x the processes the launch starts (Axolotl 0.19.0 scales
    # its batch by the world size: utils/config/__init__.py): 8, one per GPU of compute.gpus_per_node
    config = build[0]
    assert config["micro_batch_size"] * config["gradient_accumulation_steps"] * 8 == 128
    assert config["base_model"] == "Qwen/Qwen3-8B"  # "SFT fine-tuning on the Qwen/Qwen3-8B model"
    loaded = load_recipe(RECIPES / "ii-medical-8b-1706.yaml")
    compile_recipe(loaded, tmp_path, ["sft"])
    tool_python("sft")  # the dry run names the environment's interpreter
    run_stage(loaded, Layout(tmp_path, loaded.recipe), "sft", RunOptions(dry_run=True))
    assert "-m torch.distributed.run --nnodes 1 --nproc-per-node 8 -m axolotl.cli.train" in capsys.readouterr().out


# "For RL stage we setup training with:" -> OpenRLHF flag and value
RL_CARD = [
    ("Max response length: 12288 tokens", "rollout.max_new_tokens", 12288),
    ("Overlong buffer: Enabled, 4096 tokens", "reward.overlong_buffer_len", 4096),
    ("Overlong buffer: ... penalty factor 1.0", "reward.overlong_penalty_factor", 1.0),
    ("Clip ratios: Low 0.2, High 0.28", "actor.eps_clip_low_high", [0.2, 0.28]),
    ("Batch sizes: Train prompt 512", "rollout.batch_size", 512),
    ("Batch sizes: Mini-batch 32 (x 16 responses = samples per update)", "train.batch_size", 32 * 16),
    ("Responses per prompt: 16", "rollout.n_samples_per_prompt", 16),
    ("Temperature: 1.0", "rollout.temperature", 1.0),
    ("Top-p: 1.0", "rollout.top_p", 1.0),
    ("Learning rate: 1e-6", "actor.adam.lr", 1e-6),
    ("Weight decay: 0.1", "actor.adam.weight_decay", 0.1),
    ("Loss aggregation: Token-mean", "actor.loss_agg_mode", "token-mean"),
    ("Gradient clipping: 1.0", "actor.max_norm", 1.0),
    ("DAPO: group-normalized advantages", "algo.advantage.estimator", "group_norm"),
    ("DAPO: dynamic sampling", "algo.dynamic_filtering_enable", True),
    ("DAPO: no KL term", "algo.kl.init_coef", 0.0),
]


@pytest.mark.parametrize("card, flag, value", RL_CARD)
def test_rl_number_in_openrlhf_flags(build, card, flag, value):
    assert build[1]["flags"][flag] == value


def test_rl_max_prompt_length_2048(build):
    # "Max prompt length: 2048 tokens": OpenRLHF's budget is prompt + response
    flags = build[1]["flags"]
    assert flags["data.max_len"] - flags["rollout.max_new_tokens"] == 2048


def test_rl_top_k_minus_one(build):
    # "Top-k: -1 (vLLM rollout)": OpenRLHF has no top-k flag and samples with vLLM's top_k=-1
    assert not any("top_k" in flag for flag in build[1]["flags"])


def test_rl_warmup_steps_10(build):
    # "Warmup steps: 10": the card's RL settings are verl's DAPO recipe, whose scheduler steps once per training step
    # of 512 prompts. OpenRLHF's steps once per optimizer update (train batch 32 prompts x 16 samples), 16 per training
    # step; it takes a ratio of all updates, which launch.sh computes from the prompt count for 160 updates.
    computed = build[1]["computed_at_launch"]["actor.lr_warmup_ratio"]
    assert computed["warmup_optimizer_steps"] == 160 and computed["train_batch_size"] == 32 * 16
    assert '--actor.lr_warmup_ratio "$WARMUP_RATIO"' in build[2]


def test_rl_generation_prompt_1536_stays_on_policy(build):
    # "Generation prompt 1536": DAPO over-samples and trains each step on 512 fresh groups that survive dynamic
    # filtering. OpenRLHF does that by replacing filtered prompts within the step; a generate batch above the
    # rollout batch would buffer the surplus for later steps (off-policy), and async training adds staleness.
    args = build[1]
    flags = args["flags"]
    assert "rollout.vllm_generate_batch_size" not in flags and "train.async_enable" not in flags
    assert flags["train.colocate_all"] and flags["vllm.enable_sleep"] and flags["algo.dynamic_filtering_enable"]
    assert args["not_passed"]["rl.generation_batch_size"]["value"] == 1536


def test_rl_entropy_coefficient_0(build):
    # "Entropy coefficient: 0": no entropy term; unset is OpenRLHF's "off" (0 would compute entropy for logging)
    assert "actor.entropy_coef" not in build[1]["flags"]


def test_rl_checkpoints_are_saved_so_that_resume_works(build):
    flags = build[1]["flags"]
    assert flags["ckpt.load_enable"] and flags["ckpt.save_steps"] == 10
