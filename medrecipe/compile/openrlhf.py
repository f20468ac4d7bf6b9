"""The post-SFT stage as an OpenRLHF 0.11 launch: `rl/args.json`, `rl/launch.sh` and, for DAPO / GRPO, `rl/reward.py`.

- DAPO and GRPO run `openrlhf.cli.train_ppo_ray` (Ray, vLLM rollouts, a rule-based verifier loaded from
  `rl/reward.py`); DPO runs `openrlhf.cli.train_dpo` and reward models `openrlhf.cli.train_rm` (torchrun).
- The flags are OpenRLHF 0.11's dotted names. `args.json` holds them as {flag: value} (true for a switch,
  a list for a flag that takes several values); `launch.sh` passes the same flags.
- What OpenRLHF cannot express exactly becomes a warning naming the recipe field. Warmup is one: OpenRLHF
  takes a ratio of all optimizer steps, so the recipe's steps are converted, at compile time when the data
  size is known, else by `launch.sh` from the counted prompts just before it launches.
- `check` runs OpenRLHF's real argument parser and post-parse assertions (the statements of each CLI's
  `__main__` block, read from the installed package) in the rl environment. The three arithmetic checks
  OpenRLHF makes at the start of `train()` are made here, at compile time (`_train_time_checks`).
"""

from __future__ import annotations

import inspect
import json
import math
import shlex
import subprocess
from pathlib import Path
from typing import Any

from .. import __version__, grading
from ..errors import UserError
from ..recipe import LoadedRecipe
from ..recipe.derive import RolloutPlan, preference_gpus, rollout_plan
from ..recipe.describe import describe_location, describe_mapping
from ..recipe.model import PolicyOptimization, PreferenceStage
from .build import Artifact, StageBuild
from .layout import Layout, recipe_sha256

VERSION = "0.11.2"
TOOL = f"OpenRLHF {VERSION}"
ARGS = "rl/args.json"
LAUNCH = "rl/launch.sh"
REWARD = "rl/reward.py"

MODULES = {
    "dapo": "openrlhf.cli.train_ppo_ray",
    "grpo": "openrlhf.cli.train_ppo_ray",
    "dpo": "openrlhf.cli.train_dpo",
    "reward_model": "openrlhf.cli.train_rm",
}
LOSS_AGGREGATION = {"token_mean": "token-mean", "seq_mean_token_mean": "seq-mean-token-mean"}
SCHEDULERS = {"constant": "constant_with_warmup", "cosine": "cosine_with_min_lr"}
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow")
# The columns of the prompts file medrecipe writes for DAPO / GRPO (run/rl_prompts.py): the chat prompt and the
# reference answer reward.py grades against.
PROMPT_COLUMN = "prompt"
LABEL_COLUMN = "label"


def build(loaded: LoadedRecipe, layout: Layout) -> StageBuild:
    rl = loaded.recipe.rl
    assert rl is not None
    stage = StageBuild("rl", tool_versions={"openrlhf": VERSION})
    if isinstance(rl, PolicyOptimization):
        launch = _policy(loaded, layout, rl, stage)
    else:
        launch = _preference(loaded, layout, rl, stage)
    _train_time_checks(launch.flags)
    stage.artifacts.append(Artifact(ARGS, json.dumps(launch.args_json(), indent=2, allow_nan=False) + "\n"))
    stage.artifacts.append(Artifact(LAUNCH, launch.script(loaded), executable=True))
    if isinstance(rl, PolicyOptimization):
        stage.artifacts.append(Artifact(REWARD, reward_source(loaded)))
    stage.facts.append(("final model", str(layout.rl_output())))
    return stage


# ----------------------------------------------------------------------------------------- the launch


class Launch:
    """One OpenRLHF command: its module, its flags, and how `launch.sh` starts it."""

    def __init__(self, algorithm: str, flags: dict[str, Any], gpus_per_node: int, nodes: int):
        self.algorithm = algorithm
        self.module = MODULES[algorithm]
        self.flags = flags
        self.gpus_per_node = gpus_per_node
        self.nodes = nodes
        self.warmup_at_launch: dict[str, Any] | None = None  # how launch.sh computes the warmup ratio
        self.not_passed: dict[str, dict[str, Any]] = {}  # recipe field -> its value and why no flag carries it

    @property
    def uses_ray(self) -> bool:
        return self.module == MODULES["dapo"]

    def args_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tool": TOOL, "module": self.module, "flags": self.flags}
        if self.warmup_at_launch:
            data["computed_at_launch"] = {self.warmup_at_launch["flag"]: self.warmup_at_launch}
        if self.not_passed:
            data["not_passed"] = self.not_passed
        return data

    def script(self, loaded: LoadedRecipe) -> str:
        recipe = loaded.recipe
        lines = [
            "#!/usr/bin/env bash",
            f"# {TOOL} {self.algorithm} launch compiled by medrecipe {__version__} from recipe {recipe.name!r}",
            f"# (recipe sha256 {recipe_sha256(recipe)[:16]}); the same flags are in args.json. Edit the recipe, not this file.",
        ]
        if self.uses_ray:
            lines += [
                "#",
                "# With RAY_ADDRESS set, the job is submitted to that Ray cluster (one node or many: `ray start --head`",
                "# on one node, `ray start --address=HEAD:6379` on the others, from OpenRLHF's environment). Without it,",
                "# OpenRLHF starts a Ray instance on this node. Across nodes, the build folder must be on a shared",
                "# filesystem: the model, the prompts, reward.py and the checkpoints are read and written by path.",
            ]
        else:
            lines += [
                "#",
                f"# Run once per node ({self.nodes} node(s) x {self.gpus_per_node} GPUs): NODE_RANK (default: SLURM_NODEID, else 0),",
                "# MASTER_ADDR and MASTER_PORT name this node and the first node.",
            ]
        lines += ["set -euo pipefail", 'PYTHON="${OPENRLHF_PYTHON:-python3}"', ""]
        if self.warmup_at_launch:
            lines += _warmup_snippet(self.warmup_at_launch)
        argv = " \\\n  ".join(_argv_lines(self.flags, self.warmup_at_launch))
        if self.uses_ray:
            lines += [
                'if [ -n "${RAY_ADDRESS:-}" ]; then',
                '  set -- ray job submit --address="$RAY_ADDRESS" -- "$PYTHON"',
                "else",
                '  set -- "$PYTHON"',
                "fi",
                f'exec "$@" -m {self.module} \\\n  {argv}',
            ]
        else:
            lines += [
                f'exec "$PYTHON" -m torch.distributed.run --nnodes {self.nodes} --nproc-per-node {self.gpus_per_node} \\',
                '  --node-rank "${NODE_RANK:-${SLURM_NODEID:-0}}" --master-addr "${MASTER_ADDR:-127.0.0.1}" '
                '--master-port "${MASTER_PORT:-29500}" \\',
                f"  -m {self.module} \\\n  {argv}",
            ]
        return "\n".join(lines) + "\n"


def argv(flags: dict[str, Any]) -> list[str]:
    """Command-line arguments for `flags`: `--name value`, `--name` for a switch, `--name v1 v2` for a list."""
    result: list[str] = []
    for name, value in flags.items():
        if value is True:
            result.append(f"--{name}")
        elif isinstance(value, list):
            result += [f"--{name}", *(_text(item) for item in value)]
        else:
            result += [f"--{name}", _text(value)]
    return result


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _argv_lines(flags: dict[str, Any], warmup: dict[str, Any] | None) -> list[str]:
    """One shell-quoted line per flag, for launch.sh; the warmup ratio comes from the script's own count."""
    lines = [shlex.join(argv({name: value})) for name, value in flags.items()]
    if warmup:
        lines.append(f'--{warmup["flag"]} "$WARMUP_RATIO"')
    return lines


def _merge_passthrough(flags: dict[str, Any], extra: dict[str, Any]) -> None:
    """`rl.openrlhf` adds flags medrecipe does not map; it may not override one derived from the recipe."""
    taken = sorted(name for name in extra if name in flags)
    if taken:
        raise UserError(
            "rl.openrlhf sets flags medrecipe derives from the recipe: " + ", ".join(f"--{name}" for name in taken),
            "set the recipe field instead (see `medrecipe plan`); the passthrough is for flags medrecipe does not map",
        )
    for name, value in extra.items():
        if value is False or value is None:
            continue  # an unset switch
        flags[name] = list(value) if isinstance(value, (list, tuple)) else value


# ----------------------------------------------------------------------------------------- DAPO / GRPO


def _policy(loaded: LoadedRecipe, layout: Layout, rl: PolicyOptimization, stage: StageBuild) -> Launch:
    recipe = loaded.recipe
    plan = rollout_plan(rl, recipe.compute)
    gpus_per_node = plan.gpus // plan.nodes
    work = layout.work_dir("rl")
    flags: dict[str, Any] = {
        "actor.model_name_or_path": _model(loaded, layout),
        "actor.num_nodes": plan.nodes,
        "actor.num_gpus_per_node": gpus_per_node,
    }
    if rl.kl_coef > 0:
        flags.update({"ref.num_nodes": plan.nodes, "ref.num_gpus_per_node": gpus_per_node})
    flags.update(
        {
            "vllm.num_engines": plan.engines,
            "vllm.tensor_parallel_size": plan.tensor_parallel_size,
            "vllm.gpu_memory_utilization": rl.rollout.gpu_memory_utilization,
        }
    )
    if rl.rollout.enable_prefix_caching:
        flags["vllm.enable_prefix_caching"] = True
    # vLLM and training take turns on every GPU, synchronously: each step's groups come from the current policy.
    flags.update({"train.colocate_all": True, "vllm.enable_sleep": True, "ds.enable_sleep": True})
    flags.update(
        {
            "algo.advantage.estimator": "group_norm",
            "rollout.n_samples_per_prompt": rl.samples_per_prompt,
            "actor.eps_clip_low_high": [rl.clip_ratio_low, rl.clip_ratio_high],
            "actor.loss_agg_mode": LOSS_AGGREGATION.get(rl.loss_aggregation, "seq-mean-token-mean"),
            "algo.kl.init_coef": rl.kl_coef,
        }
    )
    if rl.entropy_coef > 0:
        # Unset, OpenRLHF computes no entropy at all; 0 would compute it every micro-batch for the logs only
        # (trainer/ray/ppo_actor.py: `entropy_coef is not None`).
        flags["actor.entropy_coef"] = rl.entropy_coef
    if rl.kl_coef > 0:
        flags.update({"algo.kl.use_loss": True, "algo.kl.estimator": "k3"})
    if rl.dynamic_filtering:
        flags.update({"algo.dynamic_filtering_enable": True, "algo.dynamic_filtering_range": [0.0, 1.0]})
    if rl.overlong is not None:
        flags.update(
            {
                "reward.overlong_buffer_len": rl.overlong.buffer_length,
                "reward.overlong_penalty_factor": rl.overlong.penalty_factor,
            }
        )
    flags["reward.remote_url"] = str(layout.root / REWARD)
    flags.update(
        {
            "data.prompt_dataset": str(layout.rl_prompts()),
            "data.input_key": PROMPT_COLUMN,
            "data.label_key": LABEL_COLUMN,
        }
    )
    max_samples = _reading_flags(rl, flags, rl.rollout_batch_size)
    flags.update(
        {
            "data.max_len": rl.max_prompt_length + rl.max_response_length,
            "rollout.max_new_tokens": rl.max_response_length,
            "rollout.batch_size": rl.rollout_batch_size,
        }
    )
    flags.update(
        {
            "rollout.micro_batch_size": rl.micro_rollout_batch_size,
            "rollout.temperature": rl.temperature,
            "rollout.top_p": rl.top_p,
            "train.batch_size": plan.train_batch_samples,
            "train.micro_batch_size": rl.micro_train_batch_size,
            "train.num_episodes": rl.epochs,
            "train.seed": recipe.seed,
            "actor.adam.lr": rl.learning_rate,
            "actor.adam.betas": list(rl.adam_betas),
            "actor.adam.weight_decay": rl.weight_decay,
            "actor.max_norm": rl.max_grad_norm,
            "actor.lr_scheduler": SCHEDULERS[rl.lr_scheduler],
        }
    )
    if rl.lr_scheduler == "cosine":
        flags["actor.min_lr_ratio"] = rl.min_lr_ratio
    _precision_flags(rl, flags, "actor.gradient_checkpointing_enable")
    if rl.flash_attention:
        flags["ds.packing_samples"] = True  # throughput only; OpenRLHF packs with FlashAttention and vLLM
    _checkpoint_flags(rl, work, layout, flags)
    launch = Launch(rl.algorithm, flags, gpus_per_node, plan.nodes)

    prompts = _known_count(rl.data.size, max_samples)
    per_step = f"prompts x {rl.samples_per_prompt} samples // train batch {plan.train_batch_samples} x {rl.epochs} episode(s)"
    _warmup(
        launch,
        rl,
        "actor.lr_warmup_ratio",
        None if prompts is None else prompts * rl.samples_per_prompt // plan.train_batch_samples * rl.epochs,
        per_step,
        count={
            "dataset": flags["data.prompt_dataset"],
            "split": "train",
            "max_samples": max_samples or 100_000_000,
            "samples_per_prompt": rl.samples_per_prompt,
            "train_batch_size": plan.train_batch_samples,
            "episodes": rl.epochs,
        },
        size_field="rl.data.size",
        stage=stage,
    )
    _merge_passthrough(flags, rl.openrlhf)
    _policy_notes(rl, plan, flags, stage)
    if rl.generation_batch_size and rl.generation_batch_size > rl.rollout_batch_size:
        launch.not_passed["rl.generation_batch_size"] = {
            "value": rl.generation_batch_size,
            "how": f"each step trains on {rl.rollout_batch_size} groups of the current policy that pass dynamic filtering "
                   "(each filtered prompt is replaced by a fresh one); --rollout.vllm_generate_batch_size above "
                   "--rollout.batch_size would train the surplus in later steps",
        }
    return launch


def _policy_notes(rl: PolicyOptimization, plan: RolloutPlan, flags: dict[str, Any], stage: StageBuild) -> None:
    facts = stage.facts
    facts += [
        ("algorithm", f"{rl.algorithm}: group-normalized advantages over {rl.samples_per_prompt} samples per prompt"),
        ("GPUs", f"{plan.gpus}: training (DeepSpeed ZeRO-{rl.zero_stage}) and {plan.engines} vLLM engine(s) x tensor "
                 f"parallel {plan.tensor_parallel_size} take turns on them (vLLM sleeps while training): on-policy"),
        ("train batch", f"{plan.train_batch_samples} samples = mini-batch {rl.mini_batch_size} prompts x {rl.samples_per_prompt}; "
                        f"{plan.updates_per_rollout} update(s) per step of {rl.rollout_batch_size} prompts"),
        ("lengths", f"--data.max_len {flags['data.max_len']} = prompt {rl.max_prompt_length} + response {rl.max_response_length}"),
        ("prompts", f"{describe_location(rl.data)}: {describe_mapping(rl.data.fields)}"
                    + (f", then the instruction {rl.data.instruction!r}" if rl.data.instruction else "")
                    + f" -> {flags['data.prompt_dataset']} (written by `medrecipe run --stage rl`)"),
        ("reward", f"rl/reward.py: {rl.reward.correct:g} correct, {rl.reward.incorrect:g} otherwise"
                   + (" (boxed answers only)" if rl.reward.require_box else "")),
        ("checkpoints", f"every {rl.save_steps} steps into {flags['ckpt.path']} (the last 3 kept); a rerun resumes"),
    ]
    warnings = stage.warnings
    warnings.append(
        f"rl.max_prompt_length: OpenRLHF has no prompt limit; it is --data.max_len {flags['data.max_len']} minus "
        f"--rollout.max_new_tokens {rl.max_response_length}, and longer prompts are truncated from the left, not dropped"
    )
    if rl.generation_batch_size and rl.generation_batch_size > rl.rollout_batch_size:
        what = ("dynamic filtering replaces each filtered prompt with a fresh one until that many groups are accepted, all "
                "from the current policy" if rl.dynamic_filtering else "without dynamic filtering nothing is filtered out")
        warnings.append(
            f"rl.generation_batch_size: DAPO samples {rl.generation_batch_size} prompts per step and trains on the first "
            f"{rl.rollout_batch_size} groups that survive filtering. OpenRLHF 0.11 trains each step on --rollout.batch_size "
            f"{rl.rollout_batch_size} groups, and {what}. The generate batch is not passed: above the rollout batch, OpenRLHF "
            "keeps the surplus groups and trains them in later steps, off-policy (trainer/ppo_utils/samples_generator.py)"
        )
    if rl.top_k != -1:
        warnings.append(f"rl.top_k: OpenRLHF's rollouts have no top-k; {rl.top_k} is not applied (vLLM samples with top_k=-1)")
    if rl.loss_aggregation not in LOSS_AGGREGATION:
        warnings.append(
            f"rl.loss_aggregation: OpenRLHF has no {rl.loss_aggregation!r}; compiled as seq-mean-token-mean (a length-weighted mean instead of a sum)"
        )
    if rl.overlong is not None and rl.overlong.filter:
        warnings.append(
            "rl.overlong.filter: OpenRLHF 0.11 cannot mask the loss of truncated responses (DAPO's overlong filtering); "
            "only the soft overlong penalty is applied"
        )
    if rl.max_steps is not None:
        warnings.append(
            f"rl.max_steps: OpenRLHF has no step limit; the prompts are capped at {rl.max_steps} x {rl.rollout_batch_size} "
            "(--data.max_samples), and dynamic filtering or over-sampling may use them up in fewer steps"
        )
    if not rl.bf16:
        warnings.append("rl.bf16: OpenRLHF trains in bf16 or fp16 only; compiled as fp16 (--ds.param_dtype fp16)")


# ------------------------------------------------------------------------------------ DPO / reward model


def _preference(loaded: LoadedRecipe, layout: Layout, rl: PreferenceStage, stage: StageBuild) -> Launch:
    recipe = loaded.recipe
    nodes, gpus = preference_gpus(rl, recipe.compute)
    work = layout.work_dir("rl")
    model = _model(loaded, layout)
    flags: dict[str, Any] = {"model.model_name_or_path": model}
    if rl.algorithm == "dpo":
        flags.update({"ref.model_name_or_path": model, "model.beta": rl.beta})
    flags.update(
        {
            "data.dataset": _data_path(loaded, rl.data.path),
            "data.dataset_split": rl.data.split,
            "data.chosen_key": rl.data.chosen_key,
            "data.rejected_key": rl.data.rejected_key,
        }
    )
    if rl.data.prompt_key:
        flags["data.prompt_key"] = rl.data.prompt_key
    max_samples = _reading_flags(rl, flags, rl.train_batch_size)
    flags.update(
        {
            "data.max_len": rl.max_len,
            "train.batch_size": rl.train_batch_size,
            "train.micro_batch_size": rl.micro_train_batch_size,
            "train.max_epochs": rl.epochs,
            "train.seed": recipe.seed,
            "adam.lr": rl.learning_rate,
            "adam.betas": list(rl.adam_betas),
            "adam.weight_decay": rl.weight_decay,
            "max_norm": rl.max_grad_norm,
            "lr_scheduler": SCHEDULERS[rl.lr_scheduler],
        }
    )
    if rl.lr_scheduler == "cosine":
        flags["min_lr_ratio"] = rl.min_lr_ratio
    _precision_flags(rl, flags, "model.gradient_checkpointing_enable")
    _checkpoint_flags(rl, work, layout, flags)
    launch = Launch(rl.algorithm, flags, gpus // nodes, nodes)

    pairs = _known_count(rl.data.size, max_samples)
    _warmup(
        launch,
        rl,
        "lr_warmup_ratio",
        None if pairs is None else math.ceil(rl.epochs * (pairs // rl.train_batch_size)),
        f"pairs // train batch {rl.train_batch_size} x {rl.epochs} epoch(s)",
        count={
            "dataset": flags["data.dataset"],
            "split": rl.data.split,
            "max_samples": max_samples or 1_000_000,
            "train_batch_size": rl.train_batch_size,
            "epochs": rl.epochs,
        },
        size_field="rl.data.size",
        stage=stage,
    )
    _merge_passthrough(flags, rl.openrlhf)

    what = f"DPO (beta {rl.beta:g})" if rl.algorithm == "dpo" else "a Bradley-Terry reward model"
    stage.facts += [
        ("algorithm", f"{what} on pairs {rl.data.chosen_key!r} > {rl.data.rejected_key!r}, prompt "
                      + (repr(rl.data.prompt_key) if rl.data.prompt_key else
                         f"{rl.data.chosen_key!r} without its last turn" if rl.algorithm == "dpo" else "none: whole conversations are scored")),
        ("checkpoints", f"every {rl.save_steps} steps into {flags['ckpt.path']} (the last 3 kept); a rerun resumes"),
        ("GPUs", f"{gpus} ({nodes} node(s)), DeepSpeed ZeRO-{rl.zero_stage}, launched with torchrun"),
        ("train batch", f"{rl.train_batch_size} pairs, {rl.micro_train_batch_size} per GPU per pass"),
        ("chat template", "the model's own (an SFT model keeps the template Axolotl trained it with)"
         if rl.data.apply_chat_template else "none: the columns are used as written"),
    ]
    if rl.warmup_steps:
        stage.warnings.append(
            "rl.warmup_steps: the warmup ratio assumes every pair is used; OpenRLHF drops pairs whose prompt is within "
            f"2 tokens of --data.max_len {rl.max_len}, which shortens the run and lengthens the warmup by that fraction"
        )
    if rl.max_steps is not None:
        stage.warnings.append(
            f"rl.max_steps: OpenRLHF has no step limit; the pairs are capped at {rl.max_steps} x {rl.train_batch_size} "
            "(--data.max_samples)"
        )
    if rl.algorithm == "reward_model" and rl.beta != PreferenceStage.model_fields["beta"].default:
        stage.warnings.append("rl.beta: reward-model training has no beta; it is ignored")
    if not rl.bf16:
        stage.warnings.append("rl.bf16: OpenRLHF trains in bf16 or fp16 only; compiled as fp16 (--ds.param_dtype fp16)")
    return launch


# --------------------------------------------------------------------------------------------- shared


def _model(loaded: LoadedRecipe, layout: Layout) -> str:
    rl = loaded.recipe.rl
    assert rl is not None
    return str(layout.sft_output()) if rl.init_from == "sft" else rl.init_from


def _data_path(loaded: LoadedRecipe, path: str) -> str:
    """A local file or folder (relative to the recipe that names it) as an absolute path; a Hub id as it is."""
    local = path.startswith((".", "/", "~")) or path.endswith(DATA_SUFFIXES)
    return str(loaded.local_path(("rl", "data", "path")).resolve()) if local else path


def _reading_flags(rl: PolicyOptimization | PreferenceStage, flags: dict[str, Any], per_step: int) -> int | None:
    """The chat template and sample limit of the data flags; returns the limit: the recipe's `max_samples`, or what
    `max_steps` steps of `per_step` samples use, whichever is smaller."""
    if rl.data.apply_chat_template:
        flags["data.apply_chat_template"] = True
    limits = [n for n in (rl.data.max_samples, rl.max_steps * per_step if rl.max_steps else None) if n is not None]
    max_samples = min(limits) if limits else None
    if max_samples is not None:
        flags["data.max_samples"] = max_samples
    return max_samples


def _known_count(size: int | None, max_samples: int | None) -> int | None:
    if size is None:
        return None
    return min(size, max_samples) if max_samples is not None else size


def _precision_flags(rl: PolicyOptimization | PreferenceStage, flags: dict[str, Any], checkpointing_flag: str) -> None:
    flags.update(
        {
            "ds.zero_stage": rl.zero_stage,
            "ds.param_dtype": "bf16" if rl.bf16 else "fp16",
            "ds.attn_implementation": "flash_attention_2" if rl.flash_attention else "sdpa",
        }
    )
    if rl.gradient_checkpointing:
        flags[checkpointing_flag] = True


def _checkpoint_flags(rl: PolicyOptimization | PreferenceStage, work: Path, layout: Layout, flags: dict[str, Any]) -> None:
    """Resumable checkpoints: a launch that loads the last checkpoint also saves them (OpenRLHF saves none by default)."""
    flags.update({"ckpt.output_dir": str(layout.rl_output()), "ckpt.path": str(work / "checkpoints"),
                  "ckpt.save_steps": rl.save_steps, "ckpt.load_enable": True})


def warmup_ratio(warmup_steps: int, total_steps: int) -> float:
    """The ratio OpenRLHF turns back into exactly `warmup_steps` (it takes ceil(total_steps x ratio))."""
    ratio = warmup_steps / total_steps
    while math.ceil(total_steps * ratio) > warmup_steps:
        ratio = math.nextafter(ratio, 0.0)
    return ratio


def _warmup(
    launch: Launch,
    rl: PolicyOptimization | PreferenceStage,
    flag: str,
    total_steps: int | None,
    formula: str,
    count: dict[str, Any],
    size_field: str,
    stage: StageBuild,
) -> None:
    if rl.warmup_ratio is not None or not rl.warmup_steps:
        launch.flags[flag] = rl.warmup_ratio or 0.0
        return
    if total_steps is not None:
        if rl.warmup_steps > total_steps:
            raise UserError(
                f"rl.warmup_steps: {rl.warmup_steps} warmup steps, but the run has {total_steps} optimizer steps ({formula})",
                "lower rl.warmup_steps",
            )
        ratio = warmup_ratio(rl.warmup_steps, total_steps)
        launch.flags[flag] = ratio
        stage.facts.append(("warmup", f"{rl.warmup_steps} steps = --{flag} {ratio!r} of {total_steps} optimizer steps ({formula})"))
        return
    launch.warmup_at_launch = {"flag": flag, "warmup_steps": rl.warmup_steps, "formula": formula, **count}
    stage.warnings.append(
        f"rl.warmup_steps: OpenRLHF takes warmup as a ratio of all optimizer steps ({formula}); with {size_field} unset, "
        f"launch.sh counts the data and computes --{flag} for {rl.warmup_steps} steps just before it launches"
    )
    stage.facts.append(("warmup", f"{rl.warmup_steps} steps; --{flag} computed by launch.sh from the counted data ({formula})"))


# Runs in OpenRLHF's environment from launch.sh: counts the data as OpenRLHF will load it (its own
# `blending_datasets`), then prints the warmup ratio.
_COUNT_AND_RATIO = """\
import json, math, sys, types
from openrlhf.datasets.utils import blending_datasets
spec = json.loads(sys.argv[1])
strategy = types.SimpleNamespace(print=lambda *args: None, is_rank_0=lambda: False, args=types.SimpleNamespace(use_ms=False))
data = blending_datasets(spec["dataset"], None, strategy, max_count=spec["max_samples"], dataset_split=spec["split"])
count = min(spec["max_samples"], len(data))
if "samples_per_prompt" in spec:
    total = count * spec["samples_per_prompt"] // spec["train_batch_size"] * spec["episodes"]
else:
    total = math.ceil(spec["epochs"] * (count // spec["train_batch_size"]))
if total < spec["warmup_steps"]:
    sys.exit(f"{spec['warmup_steps']} warmup steps, but {count} records give only {total} optimizer steps ({spec['formula']})")
print(warmup_ratio(spec["warmup_steps"], total))
print(f"warmup: {spec['warmup_steps']} of {total} optimizer steps ({count} records)", file=sys.stderr)
"""


def _warmup_snippet(spec: dict[str, Any]) -> list[str]:
    code = inspect.getsource(warmup_ratio) + "\n\n" + _COUNT_AND_RATIO
    return [
        "# OpenRLHF takes warmup as a ratio of all optimizer steps: count the data as OpenRLHF loads it.",
        f"WARMUP_RATIO=\"$(\"$PYTHON\" - {shlex.quote(json.dumps(spec, sort_keys=True))} <<'PY'",
        *code.rstrip("\n").splitlines(),
        "PY",
        ')"',
        "",
    ]


def _train_time_checks(flags: dict[str, Any]) -> None:
    """The arithmetic OpenRLHF checks at the start of `train()` (train_ppo_ray.py), here at compile time."""

    def get(name: str, default: Any = None) -> Any:
        return flags.get(name, default)

    colocated = get("train.colocate_all") or get("train.colocate_actor_ref")
    actor = (get("actor.num_nodes", 1), get("actor.num_gpus_per_node", 8))
    if colocated and get("algo.kl.init_coef", 0.01) > 0:
        ref = (get("ref.num_nodes", 1), get("ref.num_gpus_per_node", 8))
        if ref != actor:
            raise UserError(
                f"colocated actor and reference models need the same nodes x GPUs: actor {actor[0]} x {actor[1]}, "
                f"reference {ref[0]} x {ref[1]} (rl.kl_coef > 0 loads the reference model)",
                "remove --ref.* / colocation flags from rl.openrlhf",
            )
    engines = get("vllm.num_engines") or 0
    if engines > 0 and get("train.colocate_all") and not get("train.async_enable"):
        vllm_gpus = engines * get("vllm.tensor_parallel_size", 1)
        if actor[0] * actor[1] != vllm_gpus:
            raise UserError(
                f"with vLLM and training on the same GPUs, training's {actor[0]} x {actor[1]} GPUs must equal vLLM's "
                f"{engines} engines x tensor parallel {get('vllm.tensor_parallel_size', 1)} = {vllm_gpus}",
                "leave rl.rollout.engines unset, or set rl.generation_batch_size above the rollout batch (asynchronous)",
            )
    if get("critic.model_name_or_path") and get("train.colocate_critic_reward"):
        critic = (get("critic.num_nodes", 1), get("critic.num_gpus_per_node", 8))
        reward = (get("reward.num_nodes", 1), get("reward.num_gpus_per_node", 8))
        if critic != reward:
            raise UserError(
                f"colocated critic and reward models need the same nodes x GPUs: critic {critic}, reward {reward}",
                "fix the --critic.* / --reward.* flags in rl.openrlhf",
            )


# -------------------------------------------------------------------------------------------- reward.py

_REWARD_ENTRY = '''

# ---------------------------------------------------------------- OpenRLHF's entry point (medrecipe)

CORRECT_REWARD = {correct!r}
INCORRECT_REWARD = {incorrect!r}
REQUIRE_BOX = {require_box!r}

# Where a chat template's assistant turn starts, for when the prompt is not found verbatim in the query.
ASSISTANT_STARTS = (
    "<|im_start|>assistant\\n",
    "<|start_header_id|>assistant<|end_header_id|>\\n\\n",
    "<start_of_turn>model\\n",
    "<|assistant|>\\n",
    "[/INST]",
    "### Response:\\n",
)
# What ends a response when special tokens are decoded: the end-of-turn token, then padding.
RESPONSE_ENDS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>", "<|end|>", "</s>")


def response_text(query: str, prompt: str) -> str:
    """The response inside OpenRLHF's query: the chat-templated prompt followed by the generation, decoded
    with its special tokens."""
    if prompt and prompt in query:
        text = query[query.index(prompt) + len(prompt):]
    else:
        starts = [query.rfind(marker) + len(marker) for marker in ASSISTANT_STARTS if marker in query]
        text = query[max(starts):] if starts else query
    ends = [text.find(marker) for marker in RESPONSE_ENDS if marker in text]
    return text[: min(ends)] if ends else text


def reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF's custom reward: one sample per call (three lists of length 1). `scores` (1 correct, 0 not)
    drive dynamic filtering; `rewards` drive the advantages."""
    if len(queries) != 1:
        raise ValueError(f"expected one sample per call (OpenRLHF 0.11), got {{len(queries)}}")
    response = response_text(queries[0], prompts[0])
    gold = "" if labels[0] is None else str(labels[0])
    result = grade(response, gold) if gold.strip() else {{"correct": False, "extracted": None, "via": None}}
    correct = bool(result["correct"]) and (result["via"] == "boxed" or not REQUIRE_BOX)
    return {{
        "rewards": CORRECT_REWARD if correct else INCORRECT_REWARD,
        "scores": 1.0 if correct else 0.0,
        "extra_logs": {{
            "boxed": 1.0 if result["via"] == "boxed" else 0.0,
            "answered": 0.0 if result["extracted"] is None else 1.0,
        }},
    }}
'''


def reward_source(loaded: LoadedRecipe) -> str:
    """rl/reward.py: medrecipe's grading module, verbatim, plus the `reward_func` OpenRLHF calls."""
    rl = loaded.recipe.rl
    assert isinstance(rl, PolicyOptimization)
    header = (
        f"# The rule-based verifier OpenRLHF loads (--reward.remote_url), compiled by medrecipe {__version__} from recipe\n"
        f"# {loaded.recipe.name!r}. Up to `reward_func` this is medrecipe/grading.py, verbatim. Edit the recipe, not this file.\n"
    )
    entry = _REWARD_ENTRY.format(correct=rl.reward.correct, incorrect=rl.reward.incorrect, require_box=rl.reward.require_box)
    return header + inspect.getsource(grading).rstrip("\n") + "\n" + entry


# ------------------------------------------------------------------------------------------------ check

_PARSER = Path(__file__).with_name("openrlhf_parse.py")


def check(loaded: LoadedRecipe, layout: Layout) -> list[str]:
    """OpenRLHF's own argument parser and post-parse checks on the compiled flags, in the rl environment."""
    from ..envs import tools

    python = tools.require("rl")
    args_file = layout.root / ARGS
    if not args_file.is_file():
        return [f"{args_file} is missing: compile first"]
    spec = json.loads(args_file.read_text(encoding="utf-8"))
    flags = dict(spec["flags"])
    for flag in spec.get("computed_at_launch", {}):
        flags[flag] = 0.0  # any ratio parses alike; launch.sh supplies the real one
    module = spec["module"].rsplit(".", 1)[1]
    result = subprocess.run([str(python), "-I", str(_PARSER), module, json.dumps(argv(flags))], capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        return [f"OpenRLHF's parser did not run:\n{tail}"]
    return json.loads(result.stdout.strip().splitlines()[-1])["problems"]
