"""Flags every OpenRLHF launch shares: the model, the data, precision and checkpoints, and the checks OpenRLHF
makes only once training starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserError
from ...recipe import LoadedRecipe
from ...recipe.model import PolicyOptimization, PreferenceStage
from ..layout import Layout
from .launch import DATA_SUFFIXES, SCHEDULERS


def model_path(loaded: LoadedRecipe, layout: Layout) -> str:
    rl = loaded.recipe.rl
    assert rl is not None
    return str(layout.sft_output()) if rl.init_from == "sft" else rl.init_from


def data_path(loaded: LoadedRecipe, path: str) -> str:
    """A local file or folder (relative to the recipe that names it) as an absolute path; a Hub id as it is."""
    local = path.startswith((".", "/", "~")) or path.endswith(DATA_SUFFIXES)
    return str(loaded.local_path(("rl", "data", "path")).resolve()) if local else path


def optimizer_flags(rl: PolicyOptimization | PreferenceStage, prefix: str) -> dict[str, Any]:
    """Adam, clipping and the schedule under `prefix`: `actor.` for train_ppo_ray, none for train_dpo / train_rm."""
    flags = {
        f"{prefix}adam.lr": rl.learning_rate,
        f"{prefix}adam.betas": list(rl.adam_betas),
        f"{prefix}adam.weight_decay": rl.weight_decay,
        f"{prefix}max_norm": rl.max_grad_norm,
        f"{prefix}lr_scheduler": SCHEDULERS[rl.lr_scheduler],
    }
    if rl.lr_scheduler == "cosine":
        flags[f"{prefix}min_lr_ratio"] = rl.min_lr_ratio
    return flags


def sample_limit(rl: PolicyOptimization | PreferenceStage, per_step: int) -> int | None:
    """The samples read: the recipe's `max_samples`, or what `max_steps` steps of `per_step` samples use, whichever is
    smaller (None: all)."""
    limits = [n for n in (rl.data.max_samples, rl.max_steps * per_step if rl.max_steps else None) if n is not None]
    return min(limits) if limits else None


def reading_flags(rl: PolicyOptimization | PreferenceStage, flags: dict[str, Any], per_step: int) -> int | None:
    """The chat template and sample limit of the data flags; returns the limit (sample_limit)."""
    if rl.data.apply_chat_template:
        flags["data.apply_chat_template"] = True
    max_samples = sample_limit(rl, per_step)
    if max_samples is not None:
        flags["data.max_samples"] = max_samples
    return max_samples


def passes(rl: PolicyOptimization | PreferenceStage, per_step: int) -> int:
    """Epochs (episodes) OpenRLHF runs over the samples it reads (sample_limit): the recipe's, or fewer where
    `max_steps` binds. OpenRLHF has no step limit of its own: it runs passes x (samples // per_step) steps (found by
    review: max_steps 2 with 3 epochs ran 6 steps; and a limit that did not bind must leave the epochs as they are).
    Where the data's size is unknown, one pass over at most `max_steps` batches."""
    if not rl.max_steps:
        return rl.epochs
    known = known_count(rl.data.size, rl.data.max_samples)
    if known is None:
        return 1
    per_pass = known // per_step
    return rl.epochs if per_pass == 0 else max(1, min(rl.epochs, rl.max_steps // per_pass))


def known_count(size: int | None, max_samples: int | None) -> int | None:
    if size is None:
        return None
    return min(size, max_samples) if max_samples is not None else size


def precision_flags(rl: PolicyOptimization | PreferenceStage, flags: dict[str, Any], checkpointing_flag: str) -> None:
    flags.update(
        {
            "ds.zero_stage": rl.zero_stage,
            "ds.param_dtype": "bf16" if rl.bf16 else "fp16",
            "ds.attn_implementation": "flash_attention_2" if rl.flash_attention else "sdpa",
        }
    )
    if rl.gradient_checkpointing:
        flags[checkpointing_flag] = True


def checkpoint_flags(rl: PolicyOptimization | PreferenceStage, work: Path, layout: Layout, flags: dict[str, Any]) -> None:
    """Resumable checkpoints: a launch that loads the last checkpoint also saves them (OpenRLHF saves none by default)."""
    flags.update({"ckpt.output_dir": str(layout.rl_output()), "ckpt.path": str(work / "checkpoints"),
                  "ckpt.save_steps": rl.save_steps, "ckpt.load_enable": True})


def train_time_checks(flags: dict[str, Any]) -> None:
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
