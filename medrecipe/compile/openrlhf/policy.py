"""DAPO and GRPO as `openrlhf.cli.train_ppo_ray` flags: rollouts, dynamic filtering, the verifier reward."""

from __future__ import annotations

from typing import Any

from ...recipe import LoadedRecipe
from ...recipe.derive import RolloutPlan, rollout_plan
from ...recipe.describe import describe_location, describe_mapping
from ...recipe.model import PolicyOptimization
from ..build import StageBuild
from ..layout import Layout
from .flags import checkpoint_flags, known_count, model_path, optimizer_flags, passes, precision_flags, reading_flags
from .launch import LABEL_COLUMN, LOSS_AGGREGATION, Launch, PROMPT_COLUMN, REWARD, merge_passthrough
from .warmup import warmup


def policy_launch(loaded: LoadedRecipe, layout: Layout, rl: PolicyOptimization, stage: StageBuild) -> Launch:
    recipe = loaded.recipe
    plan = rollout_plan(rl, recipe.compute)
    gpus_per_node = plan.gpus // plan.nodes
    work = layout.work_dir("rl")
    flags: dict[str, Any] = {
        "actor.model_name_or_path": model_path(loaded, layout),
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
    max_samples = reading_flags(rl, flags, rl.rollout_batch_size)
    episodes = passes(rl, rl.rollout_batch_size)
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
            "train.num_episodes": episodes,
            "train.seed": recipe.seed,
            **optimizer_flags(rl, "actor."),
        }
    )
    precision_flags(rl, flags, "actor.gradient_checkpointing_enable")
    if rl.flash_attention:
        flags["ds.packing_samples"] = True  # throughput only; OpenRLHF packs with FlashAttention and vLLM
    checkpoint_flags(rl, work, layout, flags)
    launch = Launch(rl.algorithm, flags, gpus_per_node, plan.nodes)

    prompts = known_count(rl.data.size, max_samples)
    per_step = f"prompts x {rl.samples_per_prompt} samples // train batch {plan.train_batch_samples} x {episodes} episode(s)"
    warmup(
        launch,
        rl,
        "actor.lr_warmup_ratio",
        None if prompts is None else prompts * rl.samples_per_prompt // plan.train_batch_samples * episodes,
        per_step,
        count={
            "dataset": flags["data.prompt_dataset"],
            "split": "train",
            "max_samples": max_samples or 100_000_000,
            "samples_per_prompt": rl.samples_per_prompt,
            "train_batch_size": plan.train_batch_samples,
            "episodes": episodes,
        },
        size_field="rl.data.size",
        stage=stage,
        updates_per_step=plan.updates_per_rollout,
    )
    merge_passthrough(loaded, flags, rl.openrlhf, rl.algorithm)
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
            f"rl.max_steps: OpenRLHF has no step limit; compiled as {flags['train.num_episodes']} episode(s) over at most "
            f"{flags.get('data.max_samples')} prompts (--train.num_episodes, --data.max_samples)"
            + ("" if rl.data.size else ", one episode as the number of prompts is unknown (set rl.data.size)")
            + "; dynamic filtering or over-sampling may use them up in fewer steps"
        )
    if not rl.bf16:
        warnings.append("rl.bf16: OpenRLHF trains in bf16 or fp16 only; compiled as fp16 (--ds.param_dtype fp16)")
