"""The RL stage compiled for OpenRLHF 0.11: flags, GPU layout, warmup, warnings, and OpenRLHF's own parser."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medrecipe.catalog import openrlhf_flags
from medrecipe.compile import openrlhf
from medrecipe.compile.build import compile_recipe
from medrecipe.compile.layout import Layout
from medrecipe.recipe import load_recipe

from .conftest import RECIPES

DAPO = """
name: tiny-dapo
base_model: Qwen/Qwen3-8B
rl:
  algorithm: dapo
  init_from: Qwen/Qwen3-8B
  data: {path: prompts.jsonl, fields: {prompt: question, answer: answer}}
  max_prompt_length: 1024
  max_response_length: 4096
  overlong: {buffer_length: 1024, penalty_factor: 0.5}
  clip_ratio_low: 0.2
  clip_ratio_high: 0.28
  rollout_batch_size: 64
  mini_batch_size: 16
  samples_per_prompt: 8
  learning_rate: 1.0e-6
  warmup_steps: 5
compute: {gpus_per_node: 8}
"""

PREFERENCE = """
name: tiny-{algorithm}
base_model: meta-llama/Meta-Llama-3-8B-Instruct
rl:
  algorithm: {algorithm}
  init_from: meta-llama/Meta-Llama-3-8B-Instruct
  data: {{path: TsinghuaC3I/UltraMedical-Preference, chosen_key: chosen, rejected_key: rejected}}
  beta: 0.1
  max_len: 4096
  train_batch_size: 128
  learning_rate: 5.0e-7
  lr_scheduler: cosine
  min_lr_ratio: 0.1
compute: {{gpus_per_node: 8}}
"""


def compiled(path: Path, *overrides: str):
    """(flags, launch.sh text, build) for a recipe file."""
    loaded = load_recipe(path, overrides)
    out = path.parent / "build"
    builds = compile_recipe(loaded, out, ["rl"])
    spec = json.loads((out / "rl" / "args.json").read_text())
    return spec, (out / "rl" / "launch.sh").read_text(), builds[0]


def check(path: Path, *overrides: str) -> list[str]:
    loaded = load_recipe(path, overrides)
    out = path.parent / "build"
    compile_recipe(loaded, out, ["rl"])
    return openrlhf.check(loaded, Layout(out.resolve(), loaded.recipe))


# ----------------------------------------------------------------------------------------------- DAPO


def test_dapo_flags(write):
    spec, launch, build = compiled(write("r.yaml", DAPO))
    flags = spec["flags"]
    assert spec["module"] == "openrlhf.cli.train_ppo_ray"
    assert flags["algo.advantage.estimator"] == "group_norm"
    assert flags["rollout.n_samples_per_prompt"] == 8
    assert flags["actor.eps_clip_low_high"] == [0.2, 0.28]
    assert flags["algo.dynamic_filtering_enable"] is True and flags["algo.dynamic_filtering_range"] == [0.0, 1.0]
    assert flags["reward.overlong_buffer_len"] == 1024 and flags["reward.overlong_penalty_factor"] == 0.5
    assert flags["actor.loss_agg_mode"] == "token-mean"
    assert flags["algo.kl.init_coef"] == 0.0 and "ref.num_nodes" not in flags  # no KL: no reference model
    assert flags["data.max_len"] == 1024 + 4096 and flags["rollout.max_new_tokens"] == 4096
    assert flags["rollout.batch_size"] == 64 and flags["train.batch_size"] == 16 * 8
    assert flags["reward.remote_url"].endswith("/rl/reward.py") and Path(flags["reward.remote_url"]).is_absolute()
    assert flags["actor.model_name_or_path"] == "Qwen/Qwen3-8B"
    # synchronous: vLLM shares all 8 GPUs with training and sleeps while it trains
    assert (flags["actor.num_gpus_per_node"], flags["vllm.num_engines"]) == (8, 8)
    assert flags["train.colocate_all"] and flags["vllm.enable_sleep"] and flags["ds.enable_sleep"]
    assert "train.async_enable" not in flags
    assert [a for a in build.artifacts if a.path == "rl/launch.sh"][0].executable
    assert launch.count("--") >= len(flags)
    assert subprocess.run(["bash", "-n"], input=launch, text=True).returncode == 0


def test_a_generation_batch_above_the_rollout_batch_stays_synchronous_and_on_policy(write):
    spec, _, build = compiled(write("r.yaml", DAPO), "rl.generation_batch_size=192")
    flags = spec["flags"]
    assert "train.async_enable" not in flags and "rollout.vllm_generate_batch_size" not in flags
    assert flags["train.colocate_all"] and flags["vllm.enable_sleep"] and flags["rollout.batch_size"] == 64
    assert spec["not_passed"]["rl.generation_batch_size"]["value"] == 192
    assert any(w.startswith("rl.generation_batch_size:") and "off-policy" in w for w in build.warnings)


def test_a_launch_that_loads_checkpoints_also_saves_them(write):
    flags = compiled(write("r.yaml", DAPO))[0]["flags"]
    assert flags["ckpt.load_enable"] and flags["ckpt.save_steps"] == 10
    flags = compiled(write("r.yaml", DAPO), "rl.save_steps=3")[0]["flags"]
    assert flags["ckpt.save_steps"] == 3
    flags = compiled(write("p.yaml", PREFERENCE.format(algorithm="dpo")))[0]["flags"]
    assert flags["ckpt.load_enable"] and flags["ckpt.save_steps"] == 200


def test_entropy_is_left_out_when_its_coefficient_is_zero(write):
    assert "actor.entropy_coef" not in compiled(write("r.yaml", DAPO))[0]["flags"]
    assert compiled(write("r.yaml", DAPO), "rl.entropy_coef=0.001")[0]["flags"]["actor.entropy_coef"] == 0.001


def test_rl_prompts_are_the_file_medrecipe_prepares(write):
    spec, _, build = compiled(write("r.yaml", DAPO))
    flags = spec["flags"]
    assert flags["data.prompt_dataset"].endswith("/prompts.jsonl") and (flags["data.input_key"], flags["data.label_key"]) == ("prompt", "label")
    assert any(name == "prompts" and "answer `answer` as written" in text for name, text in build.facts)


def test_the_prompt_file_leaves_out_rows_without_a_usable_answer_and_says_so(write, tmp_path):
    from medrecipe.errors import UserError
    from medrecipe.run import rl_prompts

    def prompt_file(rows: list[dict], fields: str, build: str) -> tuple[list[dict], list[str]]:
        write("prompts.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
        loaded = load_recipe(write("r.yaml", DAPO.replace("fields: {prompt: question, answer: answer}", fields)))
        said = []
        target = rl_prompts.write(loaded, Layout(tmp_path / build, loaded.recipe), log=said.append)
        return [json.loads(json.loads(line)["label"]) for line in target.read_text().splitlines()], said

    # a letter that names none of the options
    rows = [{"question": "Which one?", "options": ["first", "second"], "answer": answer} for answer in ("A", "Z", "B")]
    labels, said = prompt_file(rows, "fields: {prompt: question, options: options, answer: answer, answer_format: letter}", "mcq")
    options = {"A": "first", "B": "second"}
    assert labels == [{"answer": "A", "options": options}, {"answer": "B", "options": options}]
    assert said[0].startswith("rl: 2 prompts written to ") and said[0].endswith("; rows left out: answer_not_an_option 1")
    # no answer at all: every sample of the prompt would score 0
    rows = [{"question": "How many?", "answer": answer} for answer in ("4", None, "", "  ")]
    labels, said = prompt_file(rows, "fields: {prompt: question, answer: answer}", "free")
    assert labels == [{"answer": "4", "options": {}}]
    assert said[0].startswith("rl: 1 prompts written to ") and said[0].endswith("; rows left out: no_answer 3")
    # a conversation with a role the mapping left unmapped ("human"): the reader leaves it out, naming why
    rows = [{"conversation": [{"role": "human", "content": "How many?"}], "answer": "4"},
            {"conversation": [{"role": "user", "content": "How many now?"}], "answer": "5"}]
    labels, said = prompt_file(rows, "fields: {messages: conversation, answer: answer}", "turns")
    assert labels == [{"answer": "5", "options": {}}] and said[0].endswith("; rows left out: unknown_role 1")
    rows = [{"question": "How many?", "answer": answer} for answer in ("4", None, "", "  ")]
    # a mapping that finds no answer in any row writes nothing and says so
    with pytest.raises(UserError, match="no prompts with a usable answer"):
        prompt_file(rows[1:], "fields: {prompt: question, answer: answer}", "none")


def test_kl_loads_a_reference_model_beside_the_actor(write):
    flags = compiled(write("r.yaml", DAPO), "rl.kl_coef=0.001")[0]["flags"]
    assert flags["algo.kl.init_coef"] == 0.001 and flags["algo.kl.use_loss"] and flags["algo.kl.estimator"] == "k3"
    assert (flags["ref.num_nodes"], flags["ref.num_gpus_per_node"]) == (flags["actor.num_nodes"], flags["actor.num_gpus_per_node"])


def test_what_openrlhf_cannot_express_is_a_warning_naming_the_field(write):
    _, _, build = compiled(
        write("r.yaml", DAPO), "rl.top_k=50", "rl.overlong.filter=true", "rl.loss_aggregation=seq_mean_token_sum"
    )
    fields = [w.split(":")[0] for w in build.warnings]
    for field in ("rl.top_k", "rl.overlong.filter", "rl.loss_aggregation", "rl.max_prompt_length", "rl.warmup_steps"):
        assert field in fields


def test_passthrough_flags_and_collisions(write, cli):
    path = write("r.yaml", DAPO)
    flags = compiled(path, "rl.openrlhf={ckpt.save_hf: true, vllm.enforce_eager: true, eval.steps: 10}")[0]["flags"]
    assert flags["ckpt.save_hf"] is True and flags["eval.steps"] == 10
    result = cli("compile", str(path), "--stage", "rl", "--set", "rl.openrlhf={train.batch_size: 7}")
    assert result.code == 2
    assert "--train.batch_size" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("entry", ["data.max_samples: 100", "actor.entropy_coef: 0.01", "algo.dynamic_filtering_enable: true",
                                   "reward.overlong_buffer_len: 512"])
def test_a_passthrough_may_not_set_a_flag_the_recipe_leaves_at_its_default(write, cli, entry):
    # Left out of the launch, these flags still belong to a recipe field: `data.max_samples 100` made OpenRLHF read 100
    # prompts while launch.sh counted every prompt for the warmup ratio, so the warmup shrank with the run (found by
    # review); the others would override rl.entropy_coef 0, rl.dynamic_filtering false and rl.overlong unset.
    path = write("r.yaml", DAPO)
    result = cli("compile", str(path), "--stage", "rl", "--set", "rl.overlong=~", "--set", "rl.dynamic_filtering=false",
                 "--set", "rl.openrlhf={%s}" % entry)
    assert result.code == 2, result.out
    assert f"--{entry.split(':')[0]}" in result.err and "Traceback" not in result.err


def test_impossible_gpu_split_is_a_recipe_error(write, cli):
    result = cli("validate", str(write("r.yaml", DAPO)), "--set", "rl.rollout.engines=4")
    assert result.code == 2
    assert "rl.rollout.engines" in result.err and "must use all 8" in result.err


# --------------------------------------------------------------------------------------------- warmup


@given(st.integers(1, 500), st.integers(1, 100_000))
def test_warmup_ratio_gives_back_exactly_the_steps(warmup, total):
    if warmup > total:
        return
    ratio = openrlhf.warmup_ratio(warmup, total)
    assert math.ceil(total * ratio) == warmup  # what OpenRLHF computes (utils/deepspeed/deepspeed.py)


def test_warmup_is_exact_at_compile_time_when_the_data_size_is_known(write):
    spec, launch, build = compiled(write("r.yaml", DAPO), "rl.data.size=1000")
    # 1000 prompts x 8 samples // 128 samples per update = 62 optimizer steps; a training step of 64 prompts feeds
    # 64 // 16 = 4 of them, so 5 warmup steps are 20 optimizer steps
    ratio = spec["flags"]["actor.lr_warmup_ratio"]
    assert math.ceil(62 * ratio) == 20
    assert "computed_at_launch" not in spec and "WARMUP_RATIO" not in launch
    assert any(name == "warmup" and "5 steps x 4 updates = 20 optimizer steps" in text and "62 optimizer steps" in text
               for name, text in build.facts)


def test_warmup_is_computed_by_launch_sh_when_the_data_size_is_unknown(write):
    spec, launch, _ = compiled(write("r.yaml", DAPO))
    computed = spec["computed_at_launch"]["actor.lr_warmup_ratio"]
    assert computed["warmup_optimizer_steps"] == 20 and computed["samples_per_prompt"] == 8 and computed["train_batch_size"] == 128
    assert "actor.lr_warmup_ratio" not in spec["flags"]
    assert '--actor.lr_warmup_ratio "$WARMUP_RATIO"' in launch
    code = launch.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    compile(code, "launch.sh", "exec")  # the embedded counter is valid Python


def test_warmup_longer_than_the_run_is_an_error(write, cli):
    result = cli("compile", str(write("r.yaml", DAPO)), "--set", "rl.data.size=50")  # 50 x 8 // 128 = 3 steps
    assert result.code == 2
    assert "rl.warmup_steps" in result.err


# ----------------------------------------------------------------------------------- DPO / reward model


@pytest.mark.parametrize("algorithm, module", [("dpo", "openrlhf.cli.train_dpo"), ("reward_model", "openrlhf.cli.train_rm")])
def test_preference_training(write, algorithm, module):
    spec, launch, build = compiled(write("r.yaml", PREFERENCE.format(algorithm=algorithm)), "rl.data.size=12800", "rl.warmup_steps=10")
    flags = spec["flags"]
    assert spec["module"] == module
    assert (flags["data.chosen_key"], flags["data.rejected_key"]) == ("chosen", "rejected") and "data.prompt_key" not in flags
    assert flags["data.max_len"] == 4096 and flags["data.apply_chat_template"] is True
    assert flags["train.batch_size"] == 128 and flags["adam.lr"] == 5e-7
    assert (flags["lr_scheduler"], flags["min_lr_ratio"]) == ("cosine_with_min_lr", 0.1)
    assert math.ceil(100 * flags["lr_warmup_ratio"]) == 10  # 12,800 pairs // 128 = 100 steps
    # OpenRLHF counts the steps after dropping over-long prompts: the same ratio of 90 steps warms up for 9, not more
    assert math.ceil(90 * flags["lr_warmup_ratio"]) == 9
    assert any(w.startswith("rl.warmup_steps:") and "shortens the run and the warmup with it" in w for w in build.warnings)
    assert ("model.beta" in flags) == (algorithm == "dpo")
    assert "torch.distributed.run --nnodes 1 --nproc-per-node 8" in launch
    assert "reward.py" not in {a.path.split("/")[-1] for a in build.artifacts}


def test_max_steps_caps_the_steps_and_leaves_the_epochs_where_it_does_not_bind(write):
    """OpenRLHF has no step limit: it runs max_epochs x (pairs // batch) steps (cli/train_rm.py, train_dpo.py) and
    num_episodes x (prompts // rollout batch) rollouts (found by review: max_steps 2 with 3 epochs ran 6 steps; then
    a max_steps of 100 over 6 steps' worth cut the 3 epochs to 1)."""
    from medrecipe.compile import estimate

    path = write("r.yaml", PREFERENCE.format(algorithm="reward_model"))
    flags = compiled(path, "rl.max_steps=2", "rl.epochs=3")[0]["flags"]
    assert (flags["data.max_samples"], flags["train.batch_size"], flags["train.max_epochs"]) == (256, 128, 1)
    assert compiled(path, "rl.epochs=3")[0]["flags"]["train.max_epochs"] == 3
    for size, max_steps, epochs in ((256, 100, 3), (1280, 25, 2), (1280, 5, 1)):  # 2 or 10 steps an epoch
        flags = compiled(path, f"rl.data.size={size}", f"rl.max_steps={max_steps}", "rl.epochs=3")[0]["flags"]
        assert flags["train.max_epochs"] == epochs and epochs * min(size, flags["data.max_samples"]) // 128 <= max_steps
    flags = compiled(write("d.yaml", DAPO), "rl.max_steps=2", "rl.epochs=3")[0]["flags"]
    assert (flags["data.max_samples"], flags["rollout.batch_size"], flags["train.num_episodes"]) == (128, 64, 1)
    # plan counts what runs: 2 steps of 128 pairs, not the data set's 100,000 pairs 3 times
    loaded = load_recipe(path, ["rl.data.size=100000", "rl.max_steps=2", "rl.epochs=3"])
    [rl] = [stage for stage in estimate.estimate(loaded, Layout(path.parent, loaded.recipe)) if stage.stage == "rl"]
    assert rl.tokens == 2 * 256 * 4096 and "256 pairs x 2 sequences at max_len 4,096 x 1 epochs" in rl.basis[-1]
    loaded = load_recipe(write("d.yaml", DAPO), ["rl.data.size=1000", "rl.max_steps=2", "rl.epochs=3"])
    [rl] = [stage for stage in estimate.estimate(loaded, Layout(path.parent, loaded.recipe)) if stage.stage == "rl"]
    assert "2 steps (128 prompts / 64 per step x 1 epochs)" in rl.basis


def test_train_time_arithmetic_checks(write):
    from medrecipe.errors import UserError

    sync = {"train.colocate_all": True, "actor.num_nodes": 1, "actor.num_gpus_per_node": 8, "vllm.num_engines": 4,
            "vllm.tensor_parallel_size": 1, "algo.kl.init_coef": 0.0}
    with pytest.raises(UserError, match="must equal vLLM's 4 engines"):
        openrlhf.train_time_checks(sync)
    with pytest.raises(UserError, match="reference 1 x 4"):
        openrlhf.train_time_checks({**sync, "vllm.num_engines": 8, "algo.kl.init_coef": 0.01, "ref.num_gpus_per_node": 4})
    with pytest.raises(UserError, match="critic and reward"):
        openrlhf.train_time_checks({"critic.model_name_or_path": "m", "train.colocate_critic_reward": True, "critic.num_nodes": 2})
    openrlhf.train_time_checks({**sync, "vllm.num_engines": 8})


def test_compiling_twice_gives_the_same_files(write):
    path = write("r.yaml", DAPO)
    first = compiled(path)[1]
    assert compiled(path)[1] == first


# ------------------------------------------------------------------------------- OpenRLHF's own parser


@pytest.fixture(scope="module")
def rl_env(tool_python):
    return tool_python("rl")


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("rl.generation_batch_size=192",),
        ("rl.kl_coef=0.001", "rl.algorithm=grpo", "rl.dynamic_filtering=false", "rl.overlong=null"),
        ("rl.data.size=1000", "rl.flash_attention=false", "rl.bf16=false", "rl.lr_scheduler=cosine"),
    ],
)
def test_openrlhf_accepts_dapo_and_grpo(write, rl_env, overrides):
    assert check(write("r.yaml", DAPO), *overrides) == []


@pytest.mark.parametrize("algorithm", ["dpo", "reward_model"])
def test_openrlhf_accepts_preference_training(write, rl_env, algorithm):
    assert check(write("r.yaml", PREFERENCE.format(algorithm=algorithm)), "rl.warmup_steps=10") == []


def test_launch_sh_counts_the_prompts_as_openrlhf_loads_them_for_the_warmup(write, rl_env, tmp_path):
    """launch.sh's counter, run with OpenRLHF's own `blending_datasets`: 1,000 prompts x 8 samples // 128 = 62
    optimizer steps, of which 5 warmup steps of 4 updates are 20."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"question": f"q{i}", "answer": "A"}) + "\n" for i in range(1000)))
    spec, launch, _ = compiled(write("r.yaml", DAPO))
    computed = dict(spec["computed_at_launch"]["actor.lr_warmup_ratio"], dataset=str(prompts))
    code = launch.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    result = subprocess.run([str(rl_env), "-", json.dumps(computed)], input=code, capture_output=True, text=True, check=True)
    assert math.ceil(62 * float(result.stdout)) == 20
    assert "warmup: 20 of 62 optimizer steps (1000 records)" in result.stderr


def test_openrlhf_rejects_what_it_rejects(write, rl_env):
    path = write("r.yaml", DAPO)
    assert check(path, "rl.openrlhf={ckpt.max_num: many}") == ["argparse: argument --ckpt.max_num: invalid int value: 'many'"]
    assert check(path, "rl.openrlhf={actor.policy_loss_type: sum}")[0].startswith("argparse: argument --actor.policy_loss_type: invalid choice")
    # async generation with vLLM sleeping: OpenRLHF's own assertion
    assert check(path, "rl.openrlhf={train.async_enable: true}") == ["assertion: Async RLHF is not supported with --vllm.enable_sleep."]


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml") if load_recipe(p).recipe.rl is not None))
def test_every_shipped_recipe_compiles_to_flags_openrlhf_accepts(tmp_path, rl_env, recipe):
    loaded = load_recipe(RECIPES / recipe)
    compile_recipe(loaded, tmp_path, ["rl"])
    assert openrlhf.check(loaded, Layout(tmp_path.resolve(), loaded.recipe)) == []


def test_compiler_targets_the_pinned_openrlhf():
    from medrecipe.envs import tools

    assert f"openrlhf=={openrlhf.VERSION}" in tools.ENVIRONMENTS["rl"].without_dependencies(gpu=False)


# --------------------------------------------------------------------- the passthrough, as OpenRLHF reads it

PARSER = Path(openrlhf.__file__).with_name("parse.py")


def with_passthrough(openrlhf_yaml: str) -> str:
    """DAPO with `rl.openrlhf` written in the recipe file, on line 17."""
    return DAPO.replace("  warmup_steps: 5\n", f"  warmup_steps: 5\n  openrlhf: {openrlhf_yaml}\n")


def error_line(err: str, field: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("error: ") and f" {field}: " in line)


def test_openrlhfs_parser_reads_the_beginning_of_a_flag_as_the_flag(rl_env):
    """Why a passthrough name must be whole: argparse's abbreviations (allow_abbrev, its default)."""
    result = subprocess.run([str(rl_env), "-I", str(PARSER), "train_ppo_ray", json.dumps(["--train.agent_func_pat", "a.py"])],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["problems"] == []


@pytest.mark.parametrize("cli", sorted(set(openrlhf_flags.CLI.values())))
def test_the_flag_table_is_openrlhfs_own(rl_env, cli):
    result = subprocess.run([str(rl_env), "-I", str(PARSER), "--flags", cli], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["flags"] == sorted(openrlhf_flags.FLAGS[cli])


def test_an_abbreviated_passthrough_flag_is_refused_naming_the_flag_openrlhf_would_read(write, cli):
    from medrecipe.errors import UserError

    path = write("r.yaml", with_passthrough(
        "{train.agent_func_pat: /tmp/evil.py, reward.remote_ur: http://attacker.example/collect, logger.wandb.ke: attacker-key}"))
    for command in ("validate", "compile"):
        result = cli(command, str(path), "--out", "build") if command == "compile" else cli(command, str(path))
        assert result.code == 2 and "Traceback" not in result.err
        for name, flag, does in [("train.agent_func_pat", "train.agent_func_path", ", which runs the Python file it names"),
                                 ("reward.remote_ur", "reward.remote_url", ""),
                                 ("logger.wandb.ke", "logger.wandb.key", ", which logs the run to W&B with the key it holds")]:
            assert error_line(result.err, f"rl.openrlhf.{name}").startswith("error: r.yaml:17:"), (command, name)
            assert (f"rl.openrlhf.{name}: not a flag of OpenRLHF 0.11.2's train_ppo_ray; OpenRLHF would read it as --{flag}"
                    f"{does}\n  hint: write the whole name, {flag}, if you mean that flag") in result.err, (command, name)
    assert not (path.parent / "build" / "rl" / "launch.sh").exists()
    with pytest.raises(UserError, match="not flags of OpenRLHF 0.11.2's train_ppo_ray: --logger.wandb.ke, "
                                        "--reward.remote_ur, --train.agent_func_pat"):
        compiled(path)  # the compiler refuses them without the recipe checks


def test_a_passthrough_name_must_be_a_flag_of_the_cli_it_reaches(write, cli):
    from medrecipe.errors import UserError

    path = write("r.yaml", with_passthrough("{model.beta: 0.1, vllm.enforce_eagr: true, ckpt.save: 1}"))
    with pytest.raises(UserError, match="not flags of OpenRLHF 0.11.2's train_ppo_ray: --ckpt.save, --model.beta, "
                                        "--vllm.enforce_eagr"):
        compiled(path)  # model.beta is train_dpo's: train_ppo_ray would refuse it when the job starts
    result = cli("validate", str(path))
    assert result.code == 2
    assert "rl.openrlhf.model.beta: not a flag of OpenRLHF 0.11.2's train_ppo_ray" in result.err  # train_dpo's, not DAPO's
    assert ("rl.openrlhf.vllm.enforce_eagr: not a flag of OpenRLHF 0.11.2's train_ppo_ray\n"
            "  hint: did you mean 'vllm.enforce_eager'?") in result.err
    assert ("rl.openrlhf.ckpt.save: not a flag of OpenRLHF 0.11.2's train_ppo_ray, but the beginning of --ckpt.save_hf, "
            "--ckpt.save_steps\n  hint: write the whole name of the flag you mean") in result.err


def test_a_passthrough_value_that_begins_with_a_dash_is_refused(write, cli):
    from medrecipe.errors import UserError

    path = write("r.yaml", with_passthrough(
        '{logger.wandb.project: [medical, "--train.agent_func_path", /tmp/evil.py], ckpt.max_num: [3, "--logger.wandb.key=attacker"], '
        'logger.wandb.run_name: "-x"}'))
    result = cli("validate", str(path))
    assert result.code == 2
    for field, argument, flag in [("logger.wandb.project[1]", "--train.agent_func_path", "logger.wandb.project"),
                                  ("ckpt.max_num[1]", "--logger.wandb.key=attacker", "ckpt.max_num"),
                                  ("logger.wandb.run_name", "-x", "logger.wandb.run_name")]:
        assert error_line(result.err, f"rl.openrlhf.{field}").startswith("error: r.yaml:17:"), field
        assert (f"rl.openrlhf.{field}: {argument!r} begins with '-': OpenRLHF would read it as another flag, not as a value "
                f"of --{flag}\n  hint: a value may not begin with '-' (a negative number may)") in result.err, field
    assert result.err.endswith("3 errors in the recipe\n")  # /tmp/evil.py, after the flag it was meant for, is a value
    with pytest.raises(UserError, match="values that OpenRLHF would read as further flags: --logger.wandb.project "
                                        "'--train.agent_func_path', --ckpt.max_num '--logger.wandb.key=attacker', "
                                        "--logger.wandb.run_name '-x'"):
        compiled(path)


def test_whole_passthrough_flags_and_negative_numbers_compile_unchanged(write, cli):
    path = write("r.yaml", with_passthrough(
        "{ckpt.save_hf: true, vllm.enforce_eager: false, eval.steps: -1, algo.advantage.gamma: -0.5, "
        "ds.lora.target_modules: [q_proj, v_proj], logger.wandb.project: medical-rl}"))
    result = cli("validate", str(path))
    assert result.code == 0 and result.err == "", result.err
    spec, launch, _ = compiled(path)
    assert {name: spec["flags"][name] for name in ("ckpt.save_hf", "eval.steps", "algo.advantage.gamma",
                                                    "ds.lora.target_modules", "logger.wandb.project")} == {
        "ckpt.save_hf": True, "eval.steps": -1, "algo.advantage.gamma": -0.5, "ds.lora.target_modules": ["q_proj", "v_proj"],
        "logger.wandb.project": "medical-rl"}
    assert "vllm.enforce_eager" not in spec["flags"]  # false: the switch is left off
    assert launch.endswith("  --ckpt.save_hf \\\n  --eval.steps -1 \\\n  --algo.advantage.gamma -0.5 \\\n"
                           "  --ds.lora.target_modules q_proj v_proj \\\n  --logger.wandb.project medical-rl \\\n"
                           '  --actor.lr_warmup_ratio "$WARMUP_RATIO"\n')


def test_a_passthrough_flag_that_runs_code_is_warned_about_by_its_whole_name(write, cli):
    result = cli("validate", str(write("r.yaml", with_passthrough("{train.agent_func_path: agent.py}"))))
    assert result.code == 0
    assert "rl.openrlhf.train.agent_func_path: train.agent_func_path: the tool runs the Python file it names" in result.err


def test_a_multi_turn_prompt_keeps_its_earlier_answers_and_drops_the_last():
    """Found by review: every assistant turn was dropped, so the policy saw "Yes. Which organ system ..." answer a
    question it was never asked."""
    from medrecipe.run import rl_prompts

    messages = [{"role": "system", "content": "You are a clinician."},
                {"role": "user", "content": "I have a cough and fever for 3 days."},
                {"role": "assistant", "content": "Any shortness of breath?"},
                {"role": "user", "content": "Yes. Which organ system is most likely affected?"},
                {"role": "assistant", "content": "Respiratory."}]
    row = rl_prompts.prompt_row({"messages": messages, "answer": "B", "options": {}}, "r0", "Answer in a box.", chat=True)
    assert [turn["role"] for turn in row["prompt"]] == ["system", "user", "assistant", "user"]
    assert row["prompt"][2]["content"] == "Any shortness of breath?"
    assert row["prompt"][3]["content"] == "Yes. Which organ system is most likely affected?\n\nAnswer in a box."


def test_a_prompt_file_changed_since_its_prompts_were_written_is_refused(write, tmp_path):
    """Found by review: the prompt file is written once per content key, which holds the recipe but not the data, so a
    corrected answer key was never read and rollouts were graded against the old one."""
    from medrecipe.errors import UserError
    from medrecipe.run import rl_prompts

    write("prompts.jsonl", json.dumps({"question": "Which one?", "answer": "B"}) + "\n")
    loaded = load_recipe(write("r.yaml", DAPO))
    layout = Layout(tmp_path / "build", loaded.recipe)
    target = rl_prompts.write(loaded, layout, log=lambda line: None)
    assert rl_prompts.write(loaded, layout, log=lambda line: None) == target  # unchanged: reused
    write("prompts.jsonl", json.dumps({"question": "Which one?", "answer": "D"}) + "\n")  # the same size
    with pytest.raises(UserError, match="the data sources changed since .* holds other contents at the same size") as refused:
        rl_prompts.write(loaded, layout, log=lambda line: None)
    assert f"rm -rf {target.parent}" in refused.value.hint
