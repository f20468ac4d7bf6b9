"""Numbers derived from a recipe: batch split across GPUs, steps, rollout engines.

The global batch is a recipe fact; what a tool needs per device is derived here, once, for the rules,
the compilers and `plan` alike. An impossible combination raises `DerivationError` with a hint, never a
silent change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import Compute, Eval, PolicyOptimization, PreferenceStage, SFT


class DerivationError(ValueError):
    def __init__(self, field: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.field = field
        self.hint = hint

    def __reduce__(self):
        return type(self), (self.field, self.args[0], self.hint)


@dataclass(frozen=True)
class SFTBatch:
    nodes: int
    gpus: int
    micro_batch_size: int
    gradient_accumulation: int
    sequences_per_step: int
    sequence_len: int
    requested_tokens: int | None  # the recipe's token batch, when given in tokens

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step (upper bound without packing)."""
        return self.sequences_per_step * self.sequence_len

    @property
    def token_deviation(self) -> float | None:
        if self.requested_tokens is None:
            return None
        return self.tokens_per_step / self.requested_tokens - 1.0


def stage_gpus(nodes: int | None, gpus_per_node: int | None, compute: Compute) -> tuple[int, int]:
    """(nodes, GPUs in all) of a stage, falling back to the recipe's compute section."""
    n = nodes or compute.nodes
    return n, n * (gpus_per_node or compute.gpus_per_node)


def eval_gpus(ev: Eval, compute: Compute) -> tuple[int, int]:
    """(vLLM engines, GPUs in all) of the eval stage, which runs on one node: `eval.data_parallel_size` engines
    (default one) of `eval.tensor_parallel_size` GPUs each; the accelerate backend is one process on one GPU. What
    launch.sh passes lighteval, what the launchers ask for and what `plan` counts."""
    if ev.backend != "vllm":
        return 1, 1
    engines = ev.data_parallel_size or 1
    return engines, engines * ev.tensor_parallel_size


def _divisors(n: int) -> list[int]:
    """The divisors of n in increasing order, in O(sqrt(n)) steps (a recipe may ask for a batch of 2**31 - 1)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def sft_batch(sft: SFT, compute: Compute) -> SFTBatch:
    nodes, gpus = stage_gpus(sft.nodes, sft.gpus_per_node, compute)
    micro = sft.batch.micro_batch_size
    per_pass = gpus * micro
    if sft.batch.global_size is not None:
        size = sft.batch.global_size
        if size % per_pass:
            fits = _divisors(size // gpus)[:8] if size % gpus == 0 else []
            hint = (
                f"micro_batch_size values that divide it on {gpus} GPUs: {', '.join(map(str, fits[:8]))}"
                if fits
                else f"use a global batch that is a multiple of the {gpus} GPUs"
            )
            raise DerivationError(
                "sft.batch.global_size",
                f"global batch {size} is not divisible by {gpus} GPUs x micro batch {micro} = {per_pass}",
                hint,
            )
        return SFTBatch(nodes, gpus, micro, size // per_pass, size, sft.sequence_len, None)

    tokens = sft.batch.global_tokens
    assert tokens is not None
    if not sft.sample_packing:
        raise DerivationError(
            "sft.batch.global_tokens",
            "a batch in tokens needs sample_packing: without it sequences are padded and the token count is not fixed",
            "set sft.sample_packing: true, or give sft.batch.global_size",
        )
    per_pass_tokens = per_pass * sft.sequence_len
    accumulation = max(1, round(tokens / per_pass_tokens))
    batch = SFTBatch(nodes, gpus, micro, accumulation, accumulation * per_pass, sft.sequence_len, tokens)
    if abs(batch.token_deviation) > sft.batch.token_tolerance:
        raise DerivationError(
            "sft.batch.global_tokens",
            f"{tokens:,} tokens cannot be reached within {sft.batch.token_tolerance:.0%}: the nearest is "
            f"{batch.tokens_per_step:,} ({accumulation} x {micro} x {gpus} GPUs x {sft.sequence_len} tokens)",
            "change micro_batch_size, the GPUs, or raise sft.batch.token_tolerance",
        )
    return batch


def sft_steps_per_epoch(sft: SFT, compute: Compute, samples: int | None) -> int | None:
    """Optimizer steps per epoch, where knowable (unpacked training on a dataset of known size)."""
    if samples is None or sft.sample_packing:
        return None
    return math.ceil(samples / sft_batch(sft, compute).sequences_per_step)


@dataclass(frozen=True)
class RolloutPlan:
    nodes: int
    gpus: int
    engines: int
    tensor_parallel_size: int
    train_batch_samples: int  # samples per optimizer update (mini-batch prompts x group size)
    rollout_samples: int  # samples trained per step
    updates_per_rollout: int


def rollout_plan(rl: PolicyOptimization, compute: Compute) -> RolloutPlan:
    """vLLM and training share every GPU of the stage (vLLM sleeps while the actor trains): rollouts are always
    generated by the policy that is about to be trained on them."""
    nodes, gpus = stage_gpus(rl.nodes, rl.gpus_per_node, compute)
    tp = rl.rollout.tensor_parallel_size
    if gpus % tp:
        raise DerivationError(
            "rl.rollout.tensor_parallel_size",
            f"tensor parallel size {tp} does not divide the stage's {gpus} GPUs",
            "choose a tensor_parallel_size that divides nodes x gpus_per_node",
        )
    engines = rl.rollout.engines or gpus // tp
    if engines * tp != gpus:
        raise DerivationError(
            "rl.rollout.engines",
            f"vLLM and training share the GPUs, so engines x tensor parallel must use all {gpus}: {engines} x {tp} = {engines * tp}",
            "leave rollout.engines unset to derive it",
        )
    train_samples = rl.mini_batch_size * rl.samples_per_prompt
    if train_samples % (gpus * rl.micro_train_batch_size):
        raise DerivationError(
            "rl.mini_batch_size",
            f"a train batch of {train_samples} samples ({rl.mini_batch_size} prompts x {rl.samples_per_prompt}) "
            f"does not split over {gpus} training GPUs x micro batch {rl.micro_train_batch_size}",
        )
    return RolloutPlan(
        nodes=nodes,
        gpus=gpus,
        engines=engines,
        tensor_parallel_size=tp,
        train_batch_samples=train_samples,
        rollout_samples=rl.rollout_batch_size * rl.samples_per_prompt,
        updates_per_rollout=rl.rollout_batch_size // rl.mini_batch_size,
    )


def preference_gpus(rl: PreferenceStage, compute: Compute) -> tuple[int, int]:
    nodes, gpus = stage_gpus(rl.nodes, rl.gpus_per_node, compute)
    if rl.train_batch_size % (gpus * rl.micro_train_batch_size):
        raise DerivationError(
            "rl.train_batch_size",
            f"train batch {rl.train_batch_size} does not split over {gpus} GPUs x micro batch {rl.micro_train_batch_size}",
        )
    return nodes, gpus
