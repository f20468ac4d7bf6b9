"""A model card's training tables: every hyperparameter of its SFT and RL stages as the run used it, and what a
recipe records that the tool was not given (said so, beside the value)."""

from __future__ import annotations

from typing import Any

from ...catalog import checks
from ...recipe import LoadedRecipe
from ...recipe.derive import sft_batch
from ...recipe.model import PolicyOptimization, PreferenceStage, Recipe
from .rendering import code_span, format_value, markdown_text, public_path

RL_TITLES = {"dapo": "DAPO", "grpo": "GRPO", "dpo": "DPO", "reward_model": "Reward model"}


def sft_rows(loaded: LoadedRecipe) -> list[tuple[str, Any]]:
    recipe = loaded.recipe
    sft = recipe.sft
    assert sft is not None
    batch = sft_batch(sft, recipe.compute)
    # as the run uses it: a token batch is a whole number of packed sequences, near the recipe's figure
    global_batch = f"{sft.batch.global_size} sequences" if sft.batch.global_size else (
        f"{batch.tokens_per_step:,} tokens ({batch.sequences_per_step} packed sequences of {batch.sequence_len:,}"
        + (f"; the recipe asks for {batch.requested_tokens:,})" if batch.tokens_per_step != batch.requested_tokens else ")"))
    if sft.warmup_steps is not None:
        warmup: Any = f"{sft.warmup_steps} steps"
    elif sft.warmup_ratio is not None:
        warmup = f"{format_value(sft.warmup_ratio)} of all steps"
    else:
        warmup = "none"
    schedule = sft.lr_scheduler + (f", min lr {format_value(sft.min_lr)}" if sft.min_lr is not None else "")
    rows: list[tuple[str, Any]] = [
        ("Base model", markdown_text(public_path(checks.sft_base_model(loaded)))),
        ("Chat template", markdown_text(checks.chat_template(loaded))),
        ("Max sequence length", sft.sequence_len),
        ("Longer records", "dropped" if sft.excess_length == "drop" else "truncated"),
        ("Sample packing", sft.sample_packing),
        ("Epochs", sft.epochs),
        ("Global batch", global_batch),
        ("Micro batch x accumulation x GPUs", f"{batch.micro_batch_size} x {batch.gradient_accumulation} x {batch.gpus}"),
        ("Learning rate", sft.learning_rate),
        ("LR schedule", schedule),
        ("Warmup", warmup),
        ("Optimizer", f"{markdown_text(sft.optimizer)} (betas {format_value(sft.adam_betas)}, epsilon {format_value(sft.adam_epsilon)})"),
        ("Weight decay", sft.weight_decay),
        ("Max grad norm", sft.max_grad_norm),
        ("NEFTune noise alpha", sft.neftune_noise_alpha if sft.neftune_noise_alpha is not None else "off"),
        ("Trained roles", markdown_text(format_value(sft.roles_to_train))),
        ("Precision", "bf16" if sft.bf16 else "fp32"),
        ("Attention", sft.attention),
        ("Gradient checkpointing", sft.gradient_checkpointing),
        ("DeepSpeed", sft.deepspeed or "off"),
        ("Seed", recipe.seed),
    ]
    if sft.val_set_size:
        rows.append(("Validation split", sft.val_set_size))
    if sft.max_steps:
        rows.append(("Max steps", sft.max_steps))
    rows += [(f"Axolotl {code_span(key)}", markdown_text(format_value(value))) for key, value in sft.axolotl.items()]
    return rows


def rl_section(recipe: Recipe) -> dict:
    rl = recipe.rl
    assert rl is not None
    start = "the SFT model above" if rl.init_from == "sft" else markdown_text(public_path(rl.init_from))
    rows: list[tuple[str, Any]] = [("Initialised from", start)]
    if isinstance(rl, PolicyOptimization):
        overlong = "off"
        if rl.overlong:
            overlong = f"{rl.overlong.buffer_length} tokens, penalty factor {format_value(rl.overlong.penalty_factor)}"
            overlong += ", truncated responses masked" if rl.overlong.filter else ""
        reward = f"{format_value(rl.reward.correct)} correct, {format_value(rl.reward.incorrect)} wrong"
        reward += " (an answer counts only inside `\\boxed{}`)" if rl.reward.require_box else ""
        rows += [
            ("Prompts", markdown_text(rl.data.hub or public_path(rl.data.path))),
            ("Max prompt length", f"{rl.max_prompt_length} tokens (a longer prompt is truncated from the left)"),
            ("Max response length", f"{rl.max_response_length} tokens"),
            ("Overlong buffer", overlong),
            ("Reward (rule-based verifier)", reward),
            ("Clip ratio low / high", f"{format_value(rl.clip_ratio_low)} / {format_value(rl.clip_ratio_high)}"),
            ("Rollout batch (train prompts)", rl.rollout_batch_size),
            ("Generation batch (prompts)", _generation_batch(rl)),
            ("Mini-batch (prompts)", rl.mini_batch_size),
            ("Responses per prompt", rl.samples_per_prompt),
            ("Rollout sampling", f"temperature {format_value(rl.temperature)}, top-p {format_value(rl.top_p)}, top-k {rl.top_k}"),
            ("Learning rate", rl.learning_rate),
            ("Warmup", _rl_warmup(rl)),
            ("Weight decay", rl.weight_decay),
            ("Loss aggregation", rl.loss_aggregation),
            ("Gradient clipping", rl.max_grad_norm),
            ("Entropy coefficient", rl.entropy_coef),
            ("KL coefficient", rl.kl_coef),
            ("Dynamic filtering", rl.dynamic_filtering),
        ]
    else:
        assert isinstance(rl, PreferenceStage)
        rows += [("Preference pairs", markdown_text(public_path(rl.data.path)))]
        if rl.algorithm == "dpo":
            rows.append(("Beta", rl.beta))
        rows += [
            ("Max length", f"{rl.max_len} tokens"),
            ("Train batch (pairs)", rl.train_batch_size),
            ("Learning rate", rl.learning_rate),
            ("Warmup", _rl_warmup(rl)),
            ("Weight decay", rl.weight_decay),
            ("Gradient clipping", rl.max_grad_norm),
        ]
    schedule = rl.lr_scheduler + (f", down to {format_value(rl.min_lr_ratio)} of the peak" if rl.lr_scheduler == "cosine" else "")
    rows += [
        ("LR schedule", schedule),
        ("Adam betas", rl.adam_betas),
        ("Epochs", rl.epochs),
        ("ZeRO stage", rl.zero_stage),
        ("Precision", "bf16" if rl.bf16 else "fp32"),
        ("Seed", recipe.seed),
    ]
    if rl.max_steps:
        rows.append(("Max steps", rl.max_steps))
    rows += [(f"OpenRLHF {code_span('--' + flag)}", markdown_text(format_value(value))) for flag, value in rl.openrlhf.items()]
    return {"title": RL_TITLES[rl.algorithm], "rows": rows}


def _generation_batch(rl: PolicyOptimization) -> str:
    """What each step generates. DAPO's generate batch (`generation_batch_size`) is recorded but not passed: OpenRLHF
    0.11 has no such batch (compile/openrlhf/policy.py), so the card says what the run did instead."""
    if not rl.generation_batch_size or rl.generation_batch_size == rl.rollout_batch_size:
        return str(rl.rollout_batch_size)
    how = ("each filtered prompt is replaced by a fresh one until that many groups pass dynamic filtering" if rl.dynamic_filtering
           else "nothing is filtered out")
    return (f"{rl.rollout_batch_size} (the recipe's {rl.generation_batch_size} is not an OpenRLHF 0.11 setting: each step "
            f"trains on {rl.rollout_batch_size} groups of the current policy; {how})")


def _rl_warmup(rl: PolicyOptimization | PreferenceStage) -> str:
    if rl.warmup_ratio is not None:
        return f"{format_value(rl.warmup_ratio)} of all steps"
    return f"{rl.warmup_steps or 0} steps"
