"""OpenRLHF 0.11.2's command-line flags, for each CLI medrecipe launches: one table, and what argparse makes of them.

A recipe's `rl.openrlhf` entries go onto OpenRLHF's command line, which argparse parses with abbreviations on (its
default): `--train.agent_func_pat` is read as `--train.agent_func_path`, and a value that begins with '-' as a further
flag. So a passthrough name must be one of these names exactly, which makes the flag it names the flag OpenRLHF reads;
catalog/passthrough_checks.py places each refusal at its line, and compile/openrlhf/launch.py refuses the same when it
merges them.

Evidence: the option strings of the parser each CLI's `__main__` block builds (openrlhf/cli/<cli>.py at 0.11.2), as
`python medrecipe/compile/openrlhf/parse.py --flags <cli>` prints them in the rl environment;
tests/test_compile_openrlhf.py holds this table to that output. No parser has a positional argument or an option that
looks like a negative number.
"""

from __future__ import annotations

import re

VERSION = "0.11.2"
# The CLI (the module openrlhf.cli.<cli>) that trains each algorithm.
CLI = {"dapo": "train_ppo_ray", "grpo": "train_ppo_ray", "dpo": "train_dpo", "reward_model": "train_rm"}
# The flags train_dpo and train_rm both take (both train on pairs of chosen and rejected answers); each adds its own.
_PAIRWISE = frozenset("""
    adam.betas adam.eps adam.lr adam.weight_decay ckpt.disable_ds ckpt.load_enable ckpt.max_mem ckpt.max_num
    ckpt.output_dir ckpt.path ckpt.save_hf ckpt.save_steps data.apply_chat_template data.chosen_key
    data.dataloader_num_workers data.dataset data.dataset_probs data.dataset_split data.disable_fast_tokenizer
    data.input_template data.max_len data.max_samples data.prompt_key data.rejected_key data.tokenizer_chat_template
    ds.adam_offload ds.attn_implementation ds.deepcompile ds.experts_implementation ds.grad_accum_dtype
    ds.load_in_4bit ds.lora.alpha ds.lora.dropout ds.lora.rank ds.lora.target_modules ds.overlap_comm
    ds.packing_samples ds.param_dtype ds.ring_attn_head_stride ds.ring_attn_size ds.tensor_parallel_size
    ds.use_universal_ckpt ds.zero_stage ds.zpg eval.dataset eval.split eval.steps local_rank logger.logging_steps
    logger.tensorboard_dir logger.wandb.group logger.wandb.key logger.wandb.org logger.wandb.project
    logger.wandb.run_name lr_scheduler lr_warmup_ratio max_norm min_lr_ratio model.aux_loss_coef
    model.gradient_checkpointing_enable model.gradient_checkpointing_reentrant model.model_name_or_path muon.lr
    muon.momentum muon.nesterov muon.no_nesterov muon.ns_steps optim train.batch_size train.full_determinism_enable
    train.max_epochs train.micro_batch_size train.seed use_ms
""".split())
# Flag names without `--`. argparse's own --help is left out: it prints the help and exits instead of training.
FLAGS: dict[str, frozenset[str]] = {
    "train_ppo_ray": frozenset("""
        actor.adam.betas actor.adam.eps actor.adam.lr actor.adam.weight_decay actor.aux_loss_coef actor.dual_clip
        actor.entropy_coef actor.eps_clip actor.eps_clip_low_high actor.freeze_visual_encoder
        actor.gradient_checkpointing_enable actor.gradient_checkpointing_reentrant actor.loss_agg_mode
        actor.lr_scheduler actor.lr_warmup_ratio actor.max_norm actor.min_lr_ratio actor.model_name_or_path
        actor.muon.lr actor.muon.momentum actor.muon.nesterov actor.muon.no_nesterov actor.muon.ns_steps
        actor.num_gpus_per_node actor.num_nodes actor.optim actor.policy_loss_type algo.advantage.estimator
        algo.advantage.gamma algo.advantage.is_correction_gating algo.advantage.is_correction_level
        algo.advantage.is_correction_mode algo.advantage.is_correction_threshold algo.advantage.lambd
        algo.advantage.no_std_norm algo.dynamic_filtering_enable algo.dynamic_filtering_range algo.kl.estimator
        algo.kl.horizon algo.kl.init_coef algo.kl.target algo.kl.unbiased_gradient algo.kl.use_loss
        ckpt.best_metric_key ckpt.disable_ds ckpt.load_enable ckpt.max_mem ckpt.max_num ckpt.output_dir ckpt.path
        ckpt.save_hf ckpt.save_steps critic.adam.betas critic.adam.eps critic.adam.lr critic.adam.weight_decay
        critic.freezing_steps critic.lr_scheduler critic.lr_warmup_ratio critic.max_norm critic.min_lr_ratio
        critic.model_name_or_path critic.muon.lr critic.muon.momentum critic.muon.nesterov critic.muon.no_nesterov
        critic.muon.ns_steps critic.num_gpus_per_node critic.num_nodes critic.optim critic.save_value_network
        critic.value_clip data.apply_chat_template data.dataloader_num_workers data.disable_fast_tokenizer
        data.image_key data.input_key data.input_template data.label_key data.max_images_per_prompt data.max_len
        data.max_samples data.prompt_dataset data.prompt_probs data.prompt_split ds.adam_offload
        ds.attn_implementation ds.deepcompile ds.enable_sleep ds.experts_implementation ds.grad_accum_dtype
        ds.load_in_4bit ds.lora.alpha ds.lora.dropout ds.lora.rank ds.lora.target_modules ds.overlap_comm
        ds.packing_samples ds.param_dtype ds.ring_attn_head_stride ds.ring_attn_size ds.tensor_parallel_size
        ds.use_liger_kernel ds.use_universal_ckpt ds.value_head_prefix ds.zero_stage ds.zpg eval.dataset
        eval.n_samples_per_prompt eval.split eval.steps eval.temperature local_rank logger.logging_steps
        logger.tensorboard_dir logger.wandb.group logger.wandb.key logger.wandb.org logger.wandb.project
        logger.wandb.run_name ref.num_gpus_per_node ref.num_nodes ref.offload reward.clip_range
        reward.model_name_or_path reward.normalize_enable reward.num_gpus_per_node reward.num_nodes reward.offload
        reward.overlong_buffer_len reward.overlong_penalty_factor reward.remote_url
        reward.stop_properly_penalty_coef rollout.batch_size rollout.max_new_tokens rollout.max_tokens_per_gpu
        rollout.micro_batch_size rollout.n_samples_per_prompt rollout.temperature rollout.top_p
        rollout.vllm_generate_batch_size train.agent_func_path train.async_enable train.async_queue_size
        train.batch_size train.colocate_actor_ref train.colocate_all train.colocate_critic_reward
        train.dynamic_batch_enable train.ema_beta train.enable_ema train.full_determinism_enable train.max_epochs
        train.max_tokens_per_gpu train.micro_batch_size train.num_episodes train.partial_rollout_enable train.seed
        use_ms vllm.enable_prefix_caching vllm.enable_sleep vllm.enforce_eager vllm.gpu_memory_utilization
        vllm.num_engines vllm.sync_backend vllm.sync_with_ray vllm.tensor_parallel_size
    """.split()),
    "train_dpo": _PAIRWISE | frozenset("""
        ds.use_liger_kernel model.beta model.ipo_enable model.label_smoothing model.nll_loss_coef
        ref.model_name_or_path ref.offload
    """.split()),
    "train_rm": _PAIRWISE | frozenset("""
        ds.value_head_prefix model.compute_fp32_loss_enable model.loss_type model.margin_loss_enable
    """.split()),
}

# Flags the compiler writes from a recipe field but leaves out where the field says "off" or "all" (OpenRLHF's
# default then means the same): a passthrough entry would contradict the field, and `data.max_samples` would change
# the prompt or pair count that the warmup ratio and the epochs are computed from (compile/openrlhf/warmup.py,
# flags.passes). Flags the compiler always writes are refused as they are (compile/openrlhf/launch.py).
LEFT_OUT_DEFAULTS = {
    "data.max_samples": "rl.data.max_samples (or rl.max_steps)",
    "actor.entropy_coef": "rl.entropy_coef",
    "algo.dynamic_filtering_enable": "rl.dynamic_filtering",
    "reward.overlong_buffer_len": "rl.overlong",
    "reward.overlong_penalty_factor": "rl.overlong",
}

# argparse reads an argument that begins with '-' as a flag, unless it looks like a negative number and the parser
# has no option that does: its `_negative_number_matcher`, here in its narrowest form (Python 3.11's).
_NEGATIVE_NUMBER = re.compile(r"-\d+|-\d*\.\d+")


def abbreviated_flags(cli: str, name: str) -> list[str]:
    """The flags of `cli` that `name` is the beginning of: argparse reads it as the one, or refuses it for several."""
    return sorted(flag for flag in FLAGS[cli] if flag.startswith(name) and flag != name)


def read_as_flag(argument: str) -> bool:
    """Whether argparse reads this command-line argument as a flag of its own rather than as a value."""
    return argument.startswith("-") and not _NEGATIVE_NUMBER.fullmatch(argument)
